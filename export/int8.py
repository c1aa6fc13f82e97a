"""Post-training INT8: calibrate on real clips, write a Q/DQ ONNX model.

Q/DQ (QuantizeLinear/DequantizeLinear pairs) is the format both ONNX Runtime and TensorRT consume: ORT
fuses it into integer kernels on CPU, TensorRT reads the scales directly (no calibration cache needed on
the device). Weights are symmetric per-channel int8, activations uint8 (ORT's fast U8S8 path on x86);
the calibrator is min/max over the calibration clips.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Dict, Iterable, Iterator, Union

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from edge.atomic import atomic_path
from edge.bundle import CLIP_INPUT as INPUT_NAME

# typing's generics, not PEP 585/604: this alias is evaluated at import, and `edge build` runs on Python 3.8
Calibration = Union[Iterable[np.ndarray], Iterable[Dict[str, np.ndarray]]]


def feeds(samples: Calibration) -> Iterator[dict[str, np.ndarray]]:
    """ONNX Runtime feeds for calibration: a (T, C, H, W) clip becomes the clip model's batch of one; a dict
    (the per-frame online model's frame and shift buffers, batch axis included) is fed as it is."""
    for s in samples:
        yield s if isinstance(s, dict) else {INPUT_NAME: np.ascontiguousarray(s[None], dtype=np.float32)}


class ClipReader(CalibrationDataReader):
    """Feeds calibration samples (``feeds``) one at a time."""

    def __init__(self, samples: Calibration) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = feeds(samples)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_int8(fp32_path: str | Path, out_path: str | Path, clips: Calibration,
                  pinned: dict[str, tuple[float, int]] | None = None) -> Path:
    """Write a Q/DQ INT8 model calibrated on ``clips`` (each (T, C, H, W) float32, preprocessed, or the
    online model's feed dicts); ``pinned`` tensors get the given (scale, uint8 zero point) instead of a
    calibrated one (export/qat_ort.py: a QAT model's scales)."""
    overrides = {name: [{"scale": np.array(s, np.float32), "zero_point": np.array(z, np.uint8)}]
                 for name, (s, z) in (pinned or {}).items()}
    with tempfile.TemporaryDirectory() as tmp, atomic_path(out_path) as out:
        prepped = Path(tmp) / "prep.onnx"
        quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=True)
        quantize_static(str(prepped), str(out), ClipReader(clips), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                                       "TensorQuantOverrides": overrides})
    return Path(out_path)
