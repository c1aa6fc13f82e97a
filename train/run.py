"""Glue between datasets, models and the fit loop: what ``edge train`` / ``edge eval`` run."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from edge.bundle import ClipSpec, FlowInput
from edge.errors import EdgeError
from edge.motion import FlowParams, MotionSpec, best_flow_method
from edge.preprocess import FLOW_MEAN, FLOW_STD, Preprocess
from train.compress.qat import deployed
from train.data import ClipDataset, PairedClips, clip_dataset, dataset_from_dir
from train.distill.student import DistillConfig, distillation
from train.engine import Checkpoint, FitConfig, all_clips_accuracy, evaluate, fit
from train.models import accepts, build_model, clip_sampling, default_motion, factory_options, list_models


def train_run(model_name: str, data_root: Path, out: Path, *, epochs: int = 15, batch_size: int = 16,
              lr: float = 2e-3, segments: int = 8, width: float = 16.0, size: int = 64, seed: int = 0,
              resume: bool = False, progress: bool = True, options: dict[str, Any] | None = None,
              clip_step: int | None = None, motion: str = "auto", flow_method: str | None = None,
              teacher: Path | None = None, distill: DistillConfig | None = None,
              init: Path | None = None) -> Checkpoint:
    """``clip_step`` overrides a clip-fed model's frame step (its paper's by default); ``motion``: ``auto`` (the
    model's paper's input: MOMP images for momp_caffenet, RGB otherwise), ``none`` (RGB), ``flow`` (a flow
    stream: TSN-scaled flow fields by ``flow_method``, TV-L1 where OpenCV has it) or a motion kind.
    ``teacher``: train a Dual-action Stream student against that frozen flow stream (``distill``'s loss).
    ``init``: start from that checkpoint's weights (the same model and configuration), not from scratch."""
    spec = input_motion(model_name, motion, flow_method)
    flow_input = spec is not None and spec.kind == "stacked_flow"
    pre = Preprocess(size=size, resize=round(size * 1.125),
                     **({"mean": FLOW_MEAN, "std": FLOW_STD} if flow_input else {}))
    train_items, labels = dataset_from_dir(data_root, "train")
    test_items, _ = dataset_from_dir(data_root, "test")
    if model_name not in list_models():
        raise EdgeError(f"--model: unknown model {model_name!r}; available: {', '.join(list_models())}")
    config = model_config(model_name, len(labels), segments, width, size, options)
    if flow_input:
        if not accepts(model_name, "in_channels"):
            raise EdgeError(f"--input flow: {model_name} takes 3-channel images only; models with a flow input: "
                            f"{', '.join(m for m in list_models() if accepts(m, 'in_channels'))}")
        config["in_channels"] = pre.channels
    try:
        student = build_model(model_name, **config)  # a bad option value (an unknown aggregation, ...) fails here
    except (TypeError, ValueError) as e:
        raise EdgeError(f"--model {model_name}: {str(e).partition(chr(10))[0]}") from None
    sampling = ClipSpec(num_segments=segments, window_frames=segments, stride_frames=1,
                        **clip_sampling(model_name, config, clip_step))
    train_ds = ClipDataset(train_items, sampling, pre, train=True, motion=spec, root=data_root, progress=progress)
    val_ds = ClipDataset(test_items, sampling, pre, train=False, motion=spec, root=data_root, progress=progress)
    window = train_ds.median_frames()  # the runtime window spans what a training video spans
    clip = replace(sampling, window_frames=max(window, segments), stride_frames=max(1, window // 4))
    state: dict[str, Any] = {"data": str(Path(data_root).resolve())}
    fit_data, objective = train_ds, {}
    if teacher is not None:
        if spec is not None:
            raise EdgeError(f"--distill: the student takes RGB frames (--input none), not {motion}")
        fit_data, distiller, state["distill"] = distillation(teacher, distill or DistillConfig(), student, train_ds,
                                                             labels, data_root, progress)
        objective = {"objective": distiller}
    start = Checkpoint(model_name, config, initial_weights(init, model_name, config) if init else {}, labels,
                       {"preprocess": pre.to_dict(), "clip": clip.to_dict(),
                        "shape": [segments, pre.channels, size, size], **({"motion": spec.to_dict()} if spec else {})},
                       state)
    cfg = FitConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    best = fit(start, fit_data, val_ds, out, cfg, resume=resume, progress=progress, **objective)
    print(f"data: train {train_ds.summary()}; test {val_ds.summary()}", file=sys.stderr)
    return best


def initial_weights(path: Path, model_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """``--init``'s weights, refused unless they come from the same model built the same way."""
    src = Checkpoint.load(path)
    if src.model != model_name or src.config != config:
        raise EdgeError(f"--init {path}: a {src.model} {src.config}, not the {model_name} {config} being trained")
    return src.state_dict


INPUTS = ("auto", "none", "flow", "rgbf", "momp")  # edge train --input


def input_motion(model_name: str, motion: str, flow_method: str | None = None) -> MotionSpec | None:
    """The input ``--input`` asks for (``auto``: the model's paper's; ``none``: RGB frames; ``flow``: TSN-scaled
    flow fields, two channels, by ``flow_method`` (default ``best_flow_method``))."""
    if motion not in INPUTS:
        raise EdgeError(f"--input {motion}: expected one of {', '.join(INPUTS)}")
    if flow_method is not None and motion != "flow":
        raise EdgeError(f"--flow-method {flow_method}: only a flow input (--input flow) takes it")
    if motion == "flow":
        return MotionSpec("stacked_flow", flow=FlowParams(method=flow_method or best_flow_method()))
    kind = default_motion(model_name) if motion == "auto" else None if motion == "none" else motion
    return MotionSpec(kind) if kind else None


# set by their own options (or by structured pruning), never by --model-opt
_RESERVED = {"num_classes": "the data", "num_segments": "--segments", "width": "--width", "size": "--size",
             "inner_widths": "edge compress", "stream_widths": "edge compress", "in_channels": "--input"}


def model_config(model_name: str, num_classes: int, segments: int, width: float, size: int,
                 options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint config ``build_model(model_name, **config)`` rebuilds from; models whose layers depend
    on the input side (the 3D CNNs' FC input) also get ``size``. ``options``: the model's own keywords
    (``edge train --model-opt``, e.g. T-C3D's ``aggregation``), each checked against its factory."""
    config: dict[str, Any] = {"num_classes": num_classes, "num_segments": segments, "width": width}
    if model_name in list_models() and accepts(model_name, "size"):
        config["size"] = size
    for key, value in (options or {}).items():
        if key in _RESERVED:
            raise EdgeError(f"--model-opt {key}: set by {_RESERVED[key]}, not by --model-opt")
        if not accepts(model_name, key):
            raise EdgeError(f"--model-opt {key}: {model_name} takes no option {key!r} (it takes: "
                            f"{', '.join(sorted(set(factory_options(model_name)) - set(_RESERVED)))})")
        config[key] = value
    return config


def load_test_dataset(ckpt: Checkpoint, data_root: Path) -> ClipDataset | PairedClips:
    """The test clips as ``ckpt`` takes them; a two-stream model's paired with their flow fields."""
    items, labels = dataset_from_dir(data_root, "test")
    if labels != ckpt.labels:
        raise EdgeError(f"--data {data_root}: its classes {labels[:3]}... differ from the model's "
                        f"{ckpt.labels[:3]}...")
    return clip_dataset(items, ckpt.clip, ckpt.preprocess, train=False, motion=ckpt.motion, flow=ckpt.flow,
                        root=data_root)


def evaluate_checkpoint(path: Path, data_root: Path) -> dict[str, Any]:
    ckpt = Checkpoint.load(path)
    ds = load_test_dataset(ckpt, data_root)
    model = deployed(ckpt)
    result = evaluate(model, DataLoader(ds, batch_size=16), len(ckpt.labels), progress=True)
    if ckpt.clip.num_clips > 1:  # T-C3D: its S clips (above) and every clip of the video, as Table IV
        result["all_clips_accuracy"] = all_clips_accuracy(model, ds, progress=True)
    print(f"data: test {ds.summary()}", file=sys.stderr)
    result["labels"] = ckpt.labels
    result["per_class"] = per_class_accuracy(np.asarray(result["confusion"]), ckpt.labels)
    result["order_accuracy"] = order_accuracy(np.asarray(result["confusion"]), ckpt.labels)
    return result


def order_accuracy(confusion: np.ndarray, labels: list[str]) -> float | None:
    """Accuracy within time-reversal pairs of the synthetic set: of the clips predicted as their class or
    its time-reversed partner, the fraction predicted right. An order-blind model scores 0.5 here."""
    from train.data.synth import CLASSES

    index = {lab: i for i, lab in enumerate(labels)}
    right = pair_total = 0
    for i, lab in enumerate(labels):
        if lab not in CLASSES:
            return None
        k = CLASSES.index(lab)
        j = index.get(CLASSES[k ^ 1])
        if j is None:
            continue
        right += int(confusion[i, i])
        pair_total += int(confusion[i, i] + confusion[i, j])
    return right / pair_total if pair_total else None


def per_class_accuracy(confusion: np.ndarray, labels: list[str]) -> dict[str, float]:
    rows = confusion.sum(1)
    return {lab: float(confusion[i, i] / rows[i]) if rows[i] else float("nan") for i, lab in enumerate(labels)}


def eval_clips(data_root: str | Path, preprocess: Preprocess, clip: ClipSpec, labels: list[str],
               motion: MotionSpec | None = None,
               flow: FlowInput | None = None) -> Iterator[tuple[np.ndarray | tuple[np.ndarray, np.ndarray], int]]:
    """Test-split clips as numpy (T, C, H, W) float32 with their label: what ``edge bench`` and INT8
    calibration consume (the runtime finds this through the ``edge.datasets`` entry point). ``flow``: a
    two-stream model's second input; each clip is then the pair (RGB clip, flow clip)."""
    items, found = dataset_from_dir(Path(data_root), "test")
    if found != labels:
        raise EdgeError(f"--data {data_root}: its classes differ from the model's labels")
    ds = clip_dataset(items, clip, preprocess, train=False, motion=motion, flow=flow, root=Path(data_root))
    for i in range(len(ds)):
        x, y = ds[i]
        yield (tuple(a.numpy() for a in x) if isinstance(x, tuple) else x.numpy()), int(y)


def calibration_clips(data_root: str | Path, preprocess: Preprocess, clip: ClipSpec, labels: list[str],
                      limit: int = 64, seed: int = 0, motion: MotionSpec | None = None) -> list[np.ndarray]:
    """Clips from the TRAIN split for INT8 calibration (never the split accuracy is measured on)."""
    items, found = dataset_from_dir(Path(data_root), "train")
    if found != labels:
        raise EdgeError(f"--calib {data_root}: its classes differ from the model's labels")
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(items), size=min(limit, len(items)), replace=False).tolist())
    ds = ClipDataset([items[i] for i in pick], clip, preprocess, train=False, motion=motion, root=Path(data_root))
    return [ds[i][0].numpy() for i in range(len(ds))]
