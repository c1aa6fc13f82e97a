"""Temporal modules that give a 2D CNN a sense of time at (nearly) zero FLOPs: TSM's shift and MSTSM's
multi-scale shift.

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

    def out_channels(self, channels: int) -> int:
        return channels

    def extra_repr(self) -> str:
        return f"n_segments={self.n_segments}, fold_div={self.fold_div}"


class MultiScaleTemporalShift(TemporalShift):
    """MSTSM (Wu & Chiu, 2021, Sec. 3.2.1): the one-unit shift *replaces* C//fold_div channels each way
    (R_one = 1/8), and a two-unit shift of C//two_unit_div channels each way (R_two = 1/16, the paper's
    chosen ratios) is *concatenated*, so the next convolution sees C + 2*(C//16) channels."""

    def __init__(self, n_segments: int, fold_div: int = 8, two_unit_div: int = 16) -> None:
        super().__init__(n_segments, fold_div)
        self.two_unit_div = two_unit_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_shift(x, self.n_segments, self.fold_div, two_unit_div=self.two_unit_div)

    def out_channels(self, channels: int) -> int:
        return channels + 2 * (channels // self.two_unit_div)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, two_unit_div={self.two_unit_div}"
