"""Checkpoint -> bundle: ONNX, parity against torch, optional INT8 Q/DQ, measured accuracy, manifest."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from edge.atomic import atomic_dir
from edge.backends.ort import OrtBackend
from edge.bench import accuracy
from edge.bundle import Bundle, sha256_file
from edge.errors import EdgeError
from export.int8 import quantize_int8
from export.onnx import OPSET, export_onnx, parity_error
from export.qdq import export_qdq
from train.compress.masks import sparsity_summary
from train.compress.qat import deployed
from train.engine import Checkpoint
from train.run import calibration_clips, eval_clips

PARITY_TOL = 1e-4
console = Console(stderr=True)


@dataclass
class ExportReport:
    bundle: Path
    parity_max_abs_diff: float
    accuracy: dict[str, float] = field(default_factory=dict)


def export_bundle(ckpt_path: Path, out: Path, data: Path | None = None, int8: bool = False,
                  calib: Path | None = None, calib_clips: int = 64, name: str | None = None) -> ExportReport:
    """Write a bundle for ``ckpt_path`` into ``out`` (atomically: a failed export leaves nothing).

    ``data`` (default: the dataset the checkpoint was trained on) gives the real clip for the parity
    check and the test split for the accuracy recorded in the manifest; ``calib`` the INT8 calibration set;
    ``name`` the bundle's display name (default: the model's registry name).
    """
    ckpt = Checkpoint.load(ckpt_path)
    data = data or _recorded_data(ckpt, ckpt_path)
    if int8 and calib is None:
        calib = data
    model = ckpt.build()
    test = list(eval_clips(data, ckpt.preprocess, ckpt.clip, ckpt.labels, ckpt.motion))
    if not test:
        raise EdgeError(f"--data {data}: its test split has no readable videos")
    with atomic_dir(out) as tmp:
        bundle = Bundle(root=tmp, name=name or ckpt.model, labels=ckpt.labels, preprocess=ckpt.preprocess,
                        clip=ckpt.clip, files={}, motion=ckpt.motion)
        console.print(f"[bold]export[/] {ckpt.model}: ONNX opset {OPSET}")
        export_onnx(model, torch.from_numpy(test[0][0][None]), tmp / "model.onnx")
        bundle.add_file("fp32", "model.onnx")
        diff = parity_error(model, tmp / "model.onnx", test[0][0][None])
        console.print(f"parity torch vs ONNX Runtime on a real clip: max logit diff / max(1, max |logit|) "
                      f"{diff:.2e} (tolerance {PARITY_TOL:.0e})")
        if not diff <= PARITY_TOL:
            raise EdgeError(f"export {ckpt_path}: ONNX output differs from torch by {diff:.2e} "
                            f"(> {PARITY_TOL:.0e}); refusing to write a bundle")
        report = ExportReport(out, diff)
        report.accuracy["fp32"] = accuracy(OrtBackend(tmp / "model.onnx"), test)
        if int8 and "qat" in ckpt.train_state:  # trained for INT8 (edge compress): its own scales
            console.print("INT8: the checkpoint's quantization-aware training scales (Q/DQ)")
            export_qdq(deployed(ckpt), torch.from_numpy(test[0][0][None]), tmp / "model.int8.onnx")
        elif int8:
            clips = calibration_clips(calib, ckpt.preprocess, ckpt.clip, ckpt.labels, motion=ckpt.motion,
                                      limit=calib_clips)
            console.print(f"INT8: calibrating on {len(clips)} clips from {calib}")
            quantize_int8(tmp / "model.onnx", tmp / "model.int8.onnx", clips)
        if int8:
            bundle.add_file("int8", "model.int8.onnx")
            report.accuracy["int8"] = accuracy(OrtBackend(tmp / "model.int8.onnx", "int8"), test)
        if Path(ckpt_path).suffix == ".edgez":  # the torch backend loads a .pt: the decoded one
            ckpt.save(tmp / "checkpoint.pt")
        else:
            shutil.copyfile(ckpt_path, tmp / "checkpoint.pt")
        bundle.add_file("checkpoint", "checkpoint.pt")
        bundle.extra = _extra(ckpt, ckpt_path, data, diff, report.accuracy, len(test), calib if int8 else None,
                              sparsity_summary(model))
        bundle.save()
    for k, v in report.accuracy.items():
        console.print(f"test clip accuracy ({k}, ONNX Runtime): {v:.3f} on {len(test)} clips")
    return report


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
        "int8": None if calib is None else (
            {"format": "QDQ", "method": "qat", "weights": "int8 per-channel symmetric",
             "activations": "int8 per-tensor symmetric"} if "qat" in ckpt.train_state else
            {"format": "QDQ", "calibration": str(calib), "method": "minmax", "weights": "int8 per-channel symmetric",
             "activations": "uint8 per-tensor"}),
    }


__all__ = ["export_bundle", "ExportReport"]
