"""One protocol, several engines. ``open_backend`` picks one from the bundle and the request.

Every backend takes a preprocessed clip (N, T, C, H, W) float32 and returns logits (N, K); a two-stream
bundle's (``bundle.flow``) take the pair (RGB clips, flow clips), its model's two inputs in order.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from edge.bundle import Bundle
from edge.errors import EdgeError

BACKENDS = ("ort", "torch", "tensorrt")


class Backend(Protocol):
    name: str
    precision: str

    def infer(self, clip: np.ndarray | tuple[np.ndarray, ...]) -> np.ndarray: ...


def open_backend(bundle: Bundle, backend: str = "ort", precision: str = "fp32", device: str = "cpu") -> Backend:
    """Open ``backend`` ("ort", "torch" or "tensorrt") for ``precision`` on ``device`` ("cpu" or "cuda";
    TensorRT runs the engine `edge build` wrote for ``precision``, on the GPU)."""
    if backend == "ort":
        from edge.backends.ort import OrtBackend

        return OrtBackend(bundle.path(precision), precision=precision, device=device)
    if backend == "torch":
        if precision != "fp32":
            raise EdgeError(f"backend torch: runs fp32 only (asked for {precision}); use --backend ort")
        from edge.backends.torch import TorchBackend

        return TorchBackend(bundle.path("checkpoint"), device=device)
    if backend in ("tensorrt", "trt"):  # `edge bench --rows trt:int8`
        if bundle.flow is not None:
            raise EdgeError(f"bundle {bundle.root}: a two-stream model (RGB and flow inputs); the TensorRT backend "
                            "binds one input - use --backend ort")
        meta = bundle.extra.get("engines", {}).get(precision)
        if meta is None:
            raise EdgeError(f"bundle {bundle.root}: no TensorRT {precision} engine; build one with "
                            f"`edge build --bundle {bundle.root} --precision {precision}`")
        from edge.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(bundle.path(f"engine-{precision}"), meta, precision)
    raise EdgeError(f"--backend: unknown backend {backend!r} (expected one of: {', '.join(BACKENDS)})")
