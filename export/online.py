"""The online model as ONNX (`edge export --online`): the per-frame form of a causal TSM/MSTSM model.

Inputs: ``frame`` (N, C, H, W) and ``shift_buffer_<i>`` (N, *shape) per shift point; outputs: ``logits``
(N, classes) and ``shift_buffer_<i>_next``. The runtime starts every stream from zero buffers and feeds each
frame's ``_next`` buffers back with the following frame, so the graph itself holds no state and batches
streams like any model (the batch axis is dynamic on every input and output).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxsim import simplify
from torch import nn

from edge.atomic import atomic_path
from edge.backends.ort import OrtBackend
from export.onnx import OPSET, OUTPUT_NAME
from train.models.online import OnlineStep

FRAME_INPUT = "frame"


def export_online(model: nn.Module, frame_shape: tuple[int, int, int], path: str | Path) -> list[dict[str, Any]]:
    """Write ``model``'s per-frame ONNX model for frames of ``frame_shape`` (C, H, W); returns its buffers as
    the manifest records them: ``[{"name", "output", "shape"}]`` (shape without the batch axis)."""
    step = OnlineStep(model.eval()).eval()
    shapes = step.buffer_shapes(frame_shape)
    buffers = [{"name": f"shift_buffer_{i}", "output": f"shift_buffer_{i}_next", "shape": list(s)}
               for i, s in enumerate(shapes)]
    inputs = [FRAME_INPUT] + [b["name"] for b in buffers]
    outputs = [OUTPUT_NAME] + [b["output"] for b in buffers]
    example = (torch.zeros(1, *frame_shape), *step.zero_buffers(frame_shape))
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(step, example, str(tmp), input_names=inputs, output_names=outputs, opset_version=OPSET,
                          dynamo=False, dynamic_axes={n: {0: "batch"} for n in inputs + outputs})
        simplified, ok = simplify(onnx.load(str(tmp)))
        if not ok:
            raise RuntimeError("onnxsim could not validate the simplified online model")
        onnx.checker.check_model(simplified)
        onnx.save(simplified, str(tmp))
    return buffers


def zero_feed(buffers: list[dict[str, Any]], batch: int = 1) -> dict[str, np.ndarray]:
    return {b["name"]: np.zeros((batch, *b["shape"]), np.float32) for b in buffers}


def run_frames(session: ort.InferenceSession, buffers: list[dict[str, Any]], clip: np.ndarray,
               record: list[dict[str, np.ndarray]] | None = None) -> np.ndarray:
    """Per-frame logits (N, T, classes) of ``clip`` (N, T, C, H, W) through the online model, from zero
    buffers; ``record`` collects every feed (frame and buffers): the online model's INT8 calibration data."""
    state = zero_feed(buffers, clip.shape[0])
    names = [OUTPUT_NAME] + [b["output"] for b in buffers]
    out = []
    for t in range(clip.shape[1]):
        feed = {FRAME_INPUT: np.ascontiguousarray(clip[:, t], dtype=np.float32), **state}
        if record is not None:
            record.append(feed)
        logits, *nxt = session.run(names, feed)
        state = {b["name"]: v for b, v in zip(buffers, nxt, strict=True)}
        out.append(logits)
    return np.stack(out, axis=1)


def online_parity_error(model: nn.Module, path: str | Path, buffers: list[dict[str, Any]], clip: np.ndarray) -> float:
    """The clip model's per-frame logits (torch) against the online ONNX model fed frame by frame, as
    ``export.onnx.parity_error`` scales it: max |diff| / max(1, max |torch logit|)."""
    with torch.no_grad():
        ref = model.eval().frame_logits(torch.from_numpy(clip)).numpy()
    got = run_frames(OrtBackend(path).session, buffers, clip)
    return float(np.max(np.abs(ref - got)) / max(1.0, float(np.max(np.abs(ref)))))


def calibration_feeds(path: str | Path, buffers: list[dict[str, Any]], clips: list[np.ndarray]) -> list[dict]:
    """Every (frame, buffers) feed the float online model sees on ``clips`` ((T, C, H, W) each)."""
    sess, record = OrtBackend(path).session, []
    for clip in clips:
        run_frames(sess, buffers, clip[None], record)
    return record


__all__ = ["FRAME_INPUT", "calibration_feeds", "export_online", "online_parity_error", "run_frames", "zero_feed"]
