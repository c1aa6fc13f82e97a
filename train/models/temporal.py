"""Temporal modules that give a 2D CNN a sense of time at (nearly) zero FLOPs: TSM's shift and MSTSM's
multi-scale shift, each bi-directional (offline) or causal (online: the TSM paper's uni-directional shift).

The shift is delegated to ``kernels.temporal_shift`` (CUDA kernel on GPU tensors, slicing + concat
reference elsewhere, which is also what ONNX export traces). State is never hidden in attributes: a causal
shift runs frame by frame only inside ``train.models.online.OnlineStep``, which hands each shift its buffer
for the one call and returns the new buffers as outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from kernels import temporal_shift, temporal_shift_step
from kernels.reference import shift_spec


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


class CausalShift(TemporalShift):
    """Online TSM (Lin et al., 2019, Sec. 4): C//fold_div channels from t-1 only, so frame t's features
    depend on frames <= t and a per-frame model only has to carry the past channels (``buffer_channels``)."""

    two_unit_div: int | None = None

    def __init__(self, n_segments: int, fold_div: int = 8) -> None:
        super().__init__(n_segments, fold_div)
        self.feed: dict[str, list[torch.Tensor]] | None = None  # OnlineStep's, set only during its call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.feed is None:
            return temporal_shift(x, self.n_segments, self.fold_div, two_unit_div=self.two_unit_div, causal=True)
        y, new = temporal_shift_step(x, self.feed["in"].pop(0), self.fold_div, self.two_unit_div)
        self.feed["out"].append(new)
        return y

    def buffer_channels(self, channels: int) -> int:
        return shift_spec(channels, self.fold_div, self.two_unit_div, causal=True).buffer_channels

    def out_channels(self, channels: int) -> int:
        return shift_spec(channels, self.fold_div, self.two_unit_div, causal=True).out_channels


class CausalMultiScaleShift(CausalShift):
    """MSTSM's two scales, causal: the one-unit fold from t-1 replaces C//fold_div channels, C//two_unit_div
    channels from t-2 are concatenated (C + C//16 channels; the offline MSTSM adds 2*(C//16), one per
    direction)."""

    def __init__(self, n_segments: int, fold_div: int = 8, two_unit_div: int = 16) -> None:
        super().__init__(n_segments, fold_div)
        self.two_unit_div = two_unit_div

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, two_unit_div={self.two_unit_div}"
