"""PyTorch eager backend (CPU or CUDA): the reference the exported engines are compared against.

The runtime may not import ``train`` (ARCHITECTURE.md), so the model factory is found through the
``edge.models`` entry point that the training package registers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import EdgeError
from edge.plugins import plugins
from kernels.sparse_linear import swap_sparse_linears


def _build_model_factory():
    eps = plugins("edge.models", "build_model")
    if not eps:
        raise EdgeError("backend torch: no model factory installed (pip install -e . with the train package)")
    return next(iter(eps)).load()


class TorchBackend:
    """``sparse``: run every mostly-zero ``nn.Linear`` (pruned FC layers) from CSR storage on our kernel
    (kernels.sparse_linear); by default on CUDA only, where the kernel runs (the CPU path is its
    reference). ``sparse_layers`` names the layers swapped."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu", sparse: bool | None = None) -> None:
        try:
            import torch
        except ImportError:
            raise EdgeError("backend torch: PyTorch is not installed (pip install torch)") from None
        if device == "cuda" and not torch.cuda.is_available():
            raise EdgeError("--device cuda: PyTorch sees no CUDA device")
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model = _build_model_factory()(ckpt["model"], **ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
        self._torch = torch
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        use_csr = device == "cuda" if sparse is None else sparse
        self.sparse_layers = swap_sparse_linears(self.model) if use_csr else []
        self.precision = "fp32"
        self.name = f"torch-{device}"

    def infer(self, clip: np.ndarray | tuple[np.ndarray, ...]) -> np.ndarray:
        arrays = clip if isinstance(clip, tuple) else (clip,)
        with self._torch.inference_mode():
            return self.model(*(self._torch.from_numpy(a).to(self.device) for a in arrays)).cpu().numpy()
