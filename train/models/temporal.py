"""Temporal modules that give a 2D CNN a sense of time at zero FLOPs: the temporal shift (TSM).

The shift is delegated to ``kernels.temporal_shift`` (CUDA kernel on GPU tensors, slicing + concat
reference elsewhere, which is also what ONNX export traces). State is never hidden in attributes.
"""

from __future__ import annotations

import torch
from torch import nn

from kernels import temporal_shift


class TemporalShift(nn.Module):
    """TSM residual shift (Lin et al., 2019): 1/fold_div of the channels from t+1, 1/fold_div from t-1,
    zero padded at the clip ends. Input (N*T, C, H, W) with T = ``n_segments``."""

    def __init__(self, n_segments: int, fold_div: int = 8) -> None:
        super().__init__()
        self.n_segments = n_segments
        self.fold_div = fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_shift(x, self.n_segments, self.fold_div)

    def extra_repr(self) -> str:
        return f"n_segments={self.n_segments}, fold_div={self.fold_div}"
