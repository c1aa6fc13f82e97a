"""torch -> ONNX (opset 17, simplified) and the parity check against torch.

We use the TorchScript-based exporter (``dynamo=False``): our graphs are static CNNs, it needs no extra
package (the dynamo exporter needs onnxscript) and it is what TensorRT/Jetson users have exercised for
years. The temporal shift traces as slice + concat (kernels.reference), never slice assignment, so the
exported graph is correct (temporal-shift-module issues #77, #103, #181); parity is checked on a real clip.
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
from edge.bundle import CLIP_INPUT as INPUT_NAME
from edge.bundle import FLOW_INPUT
from edge.bundle import LOGITS as OUTPUT_NAME

OPSET = 17

Example = torch.Tensor | tuple[torch.Tensor, ...]


def _inputs(example: Any) -> tuple[tuple[Any, ...], list[str]]:
    """The example as a tuple of inputs and their names: ``clip``, and ``flow`` for a two-stream model."""
    examples = example if isinstance(example, tuple) else (example,)
    return examples, [INPUT_NAME, FLOW_INPUT][: len(examples)]


def export_onnx(model: nn.Module, example: Example, path: str | Path) -> Path:
    """Export ``model`` (eval mode) with a dynamic batch axis, simplify with onnxsim, write atomically.
    ``example``: a clip, or a two-stream model's (RGB clip, flow clip)."""
    model = model.eval()
    examples, names = _inputs(example)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(model, examples, str(tmp), input_names=names, output_names=[OUTPUT_NAME],
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes={**{n: {0: "batch"} for n in names}, OUTPUT_NAME: {0: "batch"}})
        simplified, ok = simplify(onnx.load(str(tmp)))
        if not ok:
            raise RuntimeError("onnxsim could not validate the simplified model")
        onnx.checker.check_model(simplified)
        onnx.save(simplified, str(tmp))
    return Path(path)


Clip = np.ndarray | tuple[np.ndarray, ...]


def _logits(model: nn.Module, onnx_path: str | Path, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """torch's and ONNX Runtime's (CPU) logits on ``clip`` (N,T,C,H,W; a two-stream model's pair)."""
    arrays, names = _inputs(clip)
    with torch.no_grad():
        ref = model.eval()(*(torch.from_numpy(a) for a in arrays)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return ref, sess.run([OUTPUT_NAME], dict(zip(names, arrays, strict=True)))[0]


def max_abs_diff(model: nn.Module, onnx_path: str | Path, clip: Clip) -> float:
    """Largest absolute logit difference between torch and ONNX Runtime (CPU) on ``clip`` (N,T,C,H,W)."""
    ref, got = _logits(model, onnx_path, clip)
    return float(np.max(np.abs(ref - got)))


def parity_error(model: nn.Module, onnx_path: str | Path, clip: Clip) -> float:
    """``max_abs_diff`` over max(1, largest |torch logit|): the absolute difference while logits stay within
    +-1, relative beyond. Float32 rounding grows with the logits (a tiny ResNet-50 whose logits reach 3.7
    differs by 1.0e-4 absolute), so a fixed absolute bound would refuse deep or confident models for
    rounding alone."""
    ref, got = _logits(model, onnx_path, clip)
    return float(np.max(np.abs(ref - got)) / max(1.0, float(np.max(np.abs(ref)))))
