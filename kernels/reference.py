"""Reference semantics of our kernels, in numpy and torch. These define what the CUDA kernels must compute.

temporal shift (TSM, Lin et al. 2019): on an (N*T, C, H, W) tensor viewed as (N, T, C, H, W), the first
C // fold_div channels of frame t take frame t+1's values, the next C // fold_div take frame t-1's, zeros
at the clip ends, the rest are unchanged. The torch version uses slicing + concat (never slice
assignment), so it traces into ONNX/TensorRT correctly (temporal-shift-module issues #77, #103, #181).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def temporal_shift_numpy(x: np.ndarray, n_segments: int, fold_div: int = 8) -> np.ndarray:
    nt, c = x.shape[:2]
    if nt % n_segments:
        raise ValueError(f"temporal_shift: leading dim {nt} is not a multiple of n_segments={n_segments}")
    v = x.reshape(nt // n_segments, n_segments, c, *x.shape[2:])
    fold = c // fold_div
    out = np.zeros_like(v)
    out[:, :-1, :fold] = v[:, 1:, :fold]  # shift left: frame t sees t+1
    out[:, 1:, fold : 2 * fold] = v[:, :-1, fold : 2 * fold]  # shift right: frame t sees t-1
    out[:, :, 2 * fold :] = v[:, :, 2 * fold :]
    return out.reshape(x.shape)


def temporal_shift_torch(x: torch.Tensor, n_segments: int, fold_div: int = 8) -> torch.Tensor:
    import torch

    nt, c = x.shape[0], x.shape[1]
    v = x.reshape(nt // n_segments, n_segments, c, *x.shape[2:])
    fold = c // fold_div
    zero = torch.zeros_like(v[:, :1, :fold])
    left = torch.cat([v[:, 1:, :fold], zero], dim=1)
    right = torch.cat([zero, v[:, :-1, fold : 2 * fold]], dim=1)
    return torch.cat([left, right, v[:, :, 2 * fold :]], dim=2).reshape(x.shape)
