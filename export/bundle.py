"""Checkpoint -> bundle: ONNX, parity against torch, optional INT8 Q/DQ, measured accuracy, manifest."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from edge.atomic import atomic_dir
from edge.backends.ort import OrtBackend
from edge.bench import accuracy, one_batch
from edge.bundle import Bundle, sha256_file
from edge.errors import EdgeError
from export.int8 import quantize_int8
from export.online import FRAME_INPUT, calibration_feeds, export_online, online_parity_error
from export.onnx import OPSET, export_onnx, parity_error
from export.qat_ort import qat_for_ort
from export.qdq import export_qdq
from export.trt_qdq import quantize_for_tensorrt
from train.compress.masks import sparsity_summary
from train.compress.qat import deployed
from train.engine import Checkpoint
from train.models import list_models
from train.models.online import is_online
from train.run import calibration_clips, eval_clips

PARITY_TOL = 1e-4
TRT_INT8 = "model.int8.trt.onnx"  # Q/DQ placed for TensorRT (export/trt_qdq.py, or a QAT graph): what `edge build` compiles
ONLINE = "model.online.onnx"  # the per-frame model of a causal model (export/online.py)
console = Console(stderr=True)


@dataclass
class ExportReport:
    bundle: Path
    parity_max_abs_diff: float
    accuracy: dict[str, float] = field(default_factory=dict)


def export_bundle(ckpt_path: Path, out: Path, data: Path | None = None, int8: bool = False,
                  calib: Path | None = None, calib_clips: int = 64, name: str | None = None,
                  online: bool = False) -> ExportReport:
    """Write a bundle for ``ckpt_path`` into ``out`` (atomically: a failed export leaves nothing).

    ``data`` (default: the dataset the checkpoint was trained on) gives the real clip for the parity
    check and the test split for the accuracy recorded in the manifest; ``calib`` the INT8 calibration set;
    ``name`` the bundle's display name (default: the model's registry name); ``online``: also the per-frame
    model of a causal (``*_online_*``) model, checked against the clip model frame by frame.
    """
    ckpt = Checkpoint.load(ckpt_path)
    data = data or _recorded_data(ckpt, ckpt_path)
    if int8 and calib is None:
        calib = data
    model = ckpt.build()
    if online and (not is_online(model) or ckpt.motion is not None):
        causal = ", ".join(m for m in list_models() if "_online_" in m)
        raise EdgeError(f"--online: {ckpt.model} has no per-frame form (it needs a causal shift on RGB frames: "
                        f"{causal})")
    flow = ckpt.flow
    if flow is not None and int8:
        raise EdgeError(f"--int8: {ckpt_path} is a two-stream model; its bundle is fp32 only (its optical flow, "
                        "not the networks, is what costs: docs/distillation.md)")
    test = list(eval_clips(data, ckpt.preprocess, ckpt.clip, ckpt.labels, ckpt.motion, flow))
    if not test:
        raise EdgeError(f"--data {data}: its test split has no readable videos")
    first = one_batch(test[0][0])
    example = tuple(torch.from_numpy(a) for a in first) if isinstance(first, tuple) else torch.from_numpy(first)
    with atomic_dir(out) as tmp:
        bundle = Bundle(root=tmp, name=name or ckpt.model, labels=ckpt.labels, preprocess=ckpt.preprocess,
                        clip=ckpt.clip, files={}, motion=ckpt.motion, flow=flow)
        console.print(f"[bold]export[/] {ckpt.model}: ONNX opset {OPSET}")
        export_onnx(model, example, tmp / "model.onnx")
        bundle.add_file("fp32", "model.onnx")
        diff = parity_error(model, tmp / "model.onnx", first)
        console.print(f"parity torch vs ONNX Runtime on a real clip: max logit diff / max(1, max |logit|) "
                      f"{diff:.2e} (tolerance {PARITY_TOL:.0e})")
        if not diff <= PARITY_TOL:
            raise EdgeError(f"export {ckpt_path}: ONNX output differs from torch by {diff:.2e} "
                            f"(> {PARITY_TOL:.0e}); refusing to write a bundle")
        report = ExportReport(out, diff)
        report.accuracy["fp32"] = accuracy(OrtBackend(tmp / "model.onnx"), test)
        clips = calibration_clips(calib, ckpt.preprocess, ckpt.clip, ckpt.labels, motion=ckpt.motion,
                                  limit=calib_clips) if int8 else []
        if int8 and "qat" in ckpt.train_state:  # trained for INT8 (edge compress): its own scales
            console.print("INT8: the checkpoint's quantization-aware training scales: its Q/DQ graph for "
                          f"TensorRT, and ONNX Runtime's layout of it (additions and concatenations calibrated "
                          f"on {len(clips)} clips from {calib})")
            export_qdq(deployed(ckpt), example, tmp / TRT_INT8)
            qat_for_ort(tmp / TRT_INT8, tmp / "model.int8.onnx", clips)
        elif int8:
            console.print(f"INT8: calibrating on {len(clips)} clips from {calib}")
            quantize_int8(tmp / "model.onnx", tmp / "model.int8.onnx", clips)
            quantize_for_tensorrt(tmp / "model.onnx", tmp / TRT_INT8, clips)
        if int8:
            for role, file in (("int8", "model.int8.onnx"), ("int8-trt", TRT_INT8)):
                bundle.add_file(role, file)
                report.accuracy[role] = accuracy(OrtBackend(tmp / file, "int8"), test)
        if online:
            bundle.extra["online"] = _add_online(bundle, model, first, clips)
        if Path(ckpt_path).suffix == ".edgez":  # the torch backend loads a .pt: the decoded one
            ckpt.save(tmp / "checkpoint.pt")
        else:
            shutil.copyfile(ckpt_path, tmp / "checkpoint.pt")
        bundle.add_file("checkpoint", "checkpoint.pt")
        bundle.extra = _extra(ckpt, ckpt_path, data, diff, report.accuracy, len(test), calib if int8 else None,
                              sparsity_summary(model)) | {k: v for k, v in bundle.extra.items() if k == "online"}
        bundle.save()
    for k, v in report.accuracy.items():
        console.print(f"test clip accuracy ({k}, ONNX Runtime): {v:.3f} on {len(test)} clips")
    return report


def _add_online(bundle: Bundle, model: torch.nn.Module, clip: np.ndarray, clips: list[np.ndarray]) -> dict[str, Any]:
    """Write the per-frame model (and, with calibration ``clips``, its two INT8 Q/DQ forms) into the bundle
    being built; returns the manifest's ``online`` entry. Parity: the clip model's per-frame scores against
    the online model fed ``clip``'s frames one by one."""
    path = bundle.root / ONLINE
    buffers = export_online(model, tuple(clip.shape[2:]), path)
    diff = online_parity_error(model, path, buffers, clip)
    console.print(f"online model: {len(buffers)} shift buffers; per-frame parity against the clip model "
                  f"{diff:.2e} (tolerance {PARITY_TOL:.0e})")
    if not diff <= PARITY_TOL:
        raise EdgeError(f"export --online: the per-frame model differs from the clip model by {diff:.2e} "
                        f"(> {PARITY_TOL:.0e}); refusing to write a bundle")
    bundle.add_file("online", ONLINE)
    if clips:
        feeds = calibration_feeds(path, buffers, clips)
        console.print(f"online INT8: calibrating on the {len(feeds)} frames of {len(clips)} clips")
        for role, quantize in (("online-int8", quantize_int8), ("online-int8-trt", quantize_for_tensorrt)):
            quantize(path, bundle.root / f"model.{role.replace('-', '.')}.onnx", feeds)
            bundle.add_file(role, f"model.{role.replace('-', '.')}.onnx")
    spec = bundle.clip
    return {"input": FRAME_INPUT, "output": "logits", "buffers": buffers,
            "frame_step": max(1, round(spec.window_frames / spec.num_segments)),
            "parity": {"max_abs_diff": diff, "scaled_by": "max(1, max |torch logit|)", "tolerance": PARITY_TOL,
                       "reference": "the clip model's per-frame logits on the first test clip"}}


def _recorded_data(ckpt: Checkpoint, ckpt_path: Path) -> Path:
    recorded = ckpt.train_state.get("data")
    if not recorded or not Path(recorded).is_dir():
        raise EdgeError(f"{ckpt_path}: no dataset recorded in the checkpoint (or it moved); pass --data DIR")
    return Path(recorded)


def _extra(ckpt: Checkpoint, ckpt_path: Path, data: Path, diff: float, acc: dict[str, float], n: int,
           calib: Path | None, sparsity: dict[str, Any]) -> dict[str, Any]:
    return {
        "precision": ["fp32"] + (["int8"] if "int8" in acc else []),
        "sparsity": sparsity,
        "source_checkpoint": {"path": str(ckpt_path), "sha256": sha256_file(ckpt_path),
                              "model": ckpt.model, "config": ckpt.config},
        "opset": OPSET,
        "parity": {"max_abs_diff": diff, "scaled_by": "max(1, max |torch logit|)", "tolerance": PARITY_TOL,
                   "input": "first test clip"},
        "accuracy": {"split": "test", "data": str(data), "clips": n, "metric": "clip accuracy",
                     **{k: round(v, 4) for k, v in acc.items()}},
        "int8": None if calib is None else (_qat_info(calib) if "qat" in ckpt.train_state else _ptq_info(calib)),
    }


def _qat_info(calib: Path) -> dict[str, Any]:
    return {"format": "QDQ", "method": "qat", "weights": "int8 per-channel symmetric",
            "activations": "uint8 per-tensor: the QAT scales (zero point 128, 0 after a ReLU); additions' and "
                           "concatenations' outputs min/max calibrated",
            "calibration": str(calib), "placement": "ONNX Runtime's (export/qat_ort.py)",
            "tensorrt": {"file": TRT_INT8, "placement": "the QAT graph's (export/qdq.py)", "method": "qat",
                         "weights": "int8 per-channel symmetric", "activations": "int8 per-tensor symmetric"}}


def _ptq_info(calib: Path) -> dict[str, Any]:
    return {"format": "QDQ", "calibration": str(calib), "method": "minmax", "weights": "int8 per-channel symmetric",
            "activations": "uint8 per-tensor",
            "tensorrt": {"file": TRT_INT8, "placement": "TensorRT's (nvidia-modelopt's rules, export/trt_qdq.py)",
                         "method": "max |x|", "weights": "int8 per-channel symmetric",
                         "activations": "int8 per-tensor symmetric"}}


def add_int8(bundle_dir: Path, calib: Path, calib_clips: int = 64) -> Bundle:
    """Calibrate the INT8 Q/DQ models a bundle lacks (``edge build --calib``): the same post-training
    min/max as ``edge export --int8`` on ``calib``'s train split, for ONNX Runtime and for TensorRT; an INT8
    model already there (a QAT one) is kept. Accuracy is measured on the test split the fp32 model's was,
    when that dataset is still where the manifest says."""
    if not Path(calib).is_dir():
        raise EdgeError(f"--calib {calib}: no such directory (expected a dataset root with a train split)")
    bundle = Bundle.load(bundle_dir)
    clips = calibration_clips(calib, bundle.preprocess, bundle.clip, bundle.labels, motion=bundle.motion,
                              limit=calib_clips)
    if not clips:
        raise EdgeError(f"--calib {calib}: its train split has no readable videos")
    console.print(f"INT8: calibrating on {len(clips)} clips from {calib}")
    made = {}
    if "int8" not in bundle.files:
        made["int8"] = quantize_int8(bundle.path("fp32"), bundle.root / "model.int8.onnx", clips)
    made["int8-trt"] = quantize_for_tensorrt(bundle.path("fp32"), bundle.root / TRT_INT8, clips)
    bundle.extra["int8"] = bundle.extra.get("int8") or _ptq_info(calib)
    bundle.extra["int8"]["tensorrt"] = _ptq_info(calib)["tensorrt"]
    bundle.extra["precision"] = ["fp32", "int8"]
    measured = bundle.extra.get("accuracy", {})
    test_data = Path(measured["data"]) if measured.get("data") else None
    test = list(eval_clips(test_data, bundle.preprocess, bundle.clip, bundle.labels, bundle.motion)) \
        if test_data is not None and test_data.is_dir() else []
    for role, path in made.items():
        bundle.add_file(role, path.name)
        if test:
            measured[role] = round(accuracy(OrtBackend(path, "int8"), test), 4)
            console.print(f"test clip accuracy ({role}, ONNX Runtime): {measured[role]:.3f} on {len(test)} clips")
    bundle.save()
    return bundle


__all__ = ["add_int8", "export_bundle", "ExportReport"]
