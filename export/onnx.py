"""torch -> ONNX (opset 17, simplified) and the parity check against torch.

We use the TorchScript-based exporter (``dynamo=False``): our graphs are static CNNs, it needs no extra
package (the dynamo exporter needs onnxscript) and it is what TensorRT/Jetson users have exercised for
years. The temporal shift traces as slice + concat (kernels.reference), never slice assignment, so the
exported graph is correct (temporal-shift-module issues #77, #103, #181); parity is checked on a real clip.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxsim import simplify
from torch import nn

from edge.atomic import atomic_path

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "clip", "logits"


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Export ``model`` (eval mode) with a dynamic batch axis, simplify with onnxsim, write atomically."""
    model = model.eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(model, (example,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        simplified, ok = simplify(onnx.load(str(tmp)))
        if not ok:
            raise RuntimeError("onnxsim could not validate the simplified model")
        onnx.checker.check_model(simplified)
        onnx.save(simplified, str(tmp))
    return Path(path)


def _logits(model: nn.Module, onnx_path: str | Path, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torch's and ONNX Runtime's (CPU) logits on ``clip`` (N,T,C,H,W)."""
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(clip)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return ref, sess.run([OUTPUT_NAME], {INPUT_NAME: clip})[0]


def max_abs_diff(model: nn.Module, onnx_path: str | Path, clip: np.ndarray) -> float:
    """Largest absolute logit difference between torch and ONNX Runtime (CPU) on ``clip`` (N,T,C,H,W)."""
    ref, got = _logits(model, onnx_path, clip)
    return float(np.max(np.abs(ref - got)))


def parity_error(model: nn.Module, onnx_path: str | Path, clip: np.ndarray) -> float:
    """``max_abs_diff`` over max(1, largest |torch logit|): the absolute difference while logits stay within
    +-1, relative beyond. Float32 rounding grows with the logits (a tiny ResNet-50 whose logits reach 3.7
    differs by 1.0e-4 absolute), so a fixed absolute bound would refuse deep or confident models for
    rounding alone."""
    ref, got = _logits(model, onnx_path, clip)
    return float(np.max(np.abs(ref - got)) / max(1.0, float(np.max(np.abs(ref)))))
