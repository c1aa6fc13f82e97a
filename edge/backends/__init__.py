"""One protocol, several engines. ``open_backend`` picks one from the bundle and the request.

Every backend takes a preprocessed clip (1, T, C, H, W) float32 and returns logits (1, K).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from edge.bundle import Bundle
from edge.errors import EdgeError

BACKENDS = ("ort", "torch")


class Backend(Protocol):
    name: str
    precision: str

    def infer(self, clip: np.ndarray) -> np.ndarray: ...


def open_backend(bundle: Bundle, backend: str = "ort", precision: str = "fp32", device: str = "cpu") -> Backend:
    """Open ``backend`` ("ort" or "torch") for ``precision`` on ``device`` ("cpu" or "cuda")."""
    if backend == "ort":
        from edge.backends.ort import OrtBackend

        return OrtBackend(bundle.path(precision), precision=precision, device=device)
    if backend == "torch":
        if precision != "fp32":
            raise EdgeError(f"backend torch: runs fp32 only (asked for {precision}); use --backend ort")
        from edge.backends.torch import TorchBackend

        return TorchBackend(bundle.path("checkpoint"), device=device)
    raise EdgeError(f"--backend: unknown backend {backend!r} (expected one of: {', '.join(BACKENDS)})")
