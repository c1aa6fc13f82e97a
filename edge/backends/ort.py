"""ONNX Runtime backend: CPU everywhere, CUDA / TensorRT execution providers where installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.errors import EdgeError

_PROVIDERS = {"cpu": ["CPUExecutionProvider"],
              "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
              "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}


class OrtBackend:
    def __init__(self, path: str | Path, precision: str = "fp32", device: str = "cpu", threads: int = 0) -> None:
        if device not in _PROVIDERS:
            raise EdgeError(f"--device: unknown device {device!r} (expected one of: {', '.join(_PROVIDERS)})")
        wanted = _PROVIDERS[device]
        available = ort.get_available_providers()
        if wanted[0] not in available:
            raise EdgeError(f"--device {device}: onnxruntime here has no {wanted[0]} "
                            f"(available: {', '.join(available)})")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=[p for p in wanted if p in available])
        except Exception as e:  # ORT raises its own exception types for corrupt/incompatible models
            raise EdgeError(f"model {path}: onnxruntime cannot load it ({str(e).splitlines()[0]})") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_name = self.input_names[0]
        self.output_name = self.session.get_outputs()[0].name
        self.precision = precision
        self.name = f"ort-{device}"

    def infer(self, clip: np.ndarray | tuple[np.ndarray, ...]) -> np.ndarray:
        """One clip batch, or a two-input model's arrays in its inputs' order."""
        feed = dict(zip(self.input_names, clip)) if isinstance(clip, tuple) else {self.input_name: clip}
        return self.session.run([self.output_name], feed)[0]
