"""Reference semantics of our kernels, in numpy and torch. The CUDA kernels must compute exactly these.

Temporal shift. On an (N*T, C, H, W) tensor viewed as (N, T, C, H, W), output channel ``oc`` of frame t
takes input channel ``src[oc]`` of frame ``t + off[oc]``, zero when that frame is outside the clip:

- TSM (Lin et al., 2019), ``fold_div=8``: the first C//8 channels of frame t take frame t+1's, the next
  C//8 take frame t-1's, the rest are unchanged.
- MSTSM (Wu & Chiu, 2021), ``two_unit_div=16``: the TSM one-unit shift *replaces* channels as above; a
  two-unit shift of C//16 channels from t+2 and C//16 from t-2 is *concatenated* as extra output channels
  (C + 2*(C//16) outputs), so no original channel is lost. The two-unit channels are taken from the block
  right after the one-unit folds (channels [2f1, 2f1 + 2f2)).
- ``causal=True``, the TSM paper's online (uni-directional) shift: the first C//8 channels of frame t take
  frame t-1's, nothing comes from the future. With ``two_unit_div`` the C//16 channels after the fold
  (channels [f1, f1 + f2)) of frame t-2 are concatenated (C + C//16 outputs). Frame by frame this needs only
  a buffer of past channels (``shift_step_torch``), which is what makes the online model possible.

The torch version uses slicing + concat (never slice assignment), so it traces into ONNX/TensorRT correctly
(temporal-shift-module issues #77, #103, #181).

CSR SpMM: Y = A X with A (rows x cols) CSR, X (cols x k); accumulation in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ShiftSpec:
    """Per-output-channel (source channel, frame offset) of a temporal shift on ``channels`` inputs."""

    channels: int
    fold_div: int = 8
    two_unit_div: int | None = None
    causal: bool = False

    def __post_init__(self) -> None:
        if self.fold_div < 2 or (self.two_unit_div is not None and self.two_unit_div < 2):
            raise ValueError("temporal_shift: fold_div and two_unit_div must be >= 2")
        if self.two_unit_div and self.ways * (self.fold1 + self.fold2) > self.channels:
            raise ValueError(f"temporal_shift: {self.channels} channels cannot hold the two-unit folds")

    @property
    def ways(self) -> int:
        """How many directions channels come from: 2 (past and future), 1 when causal (past only)."""
        return 1 if self.causal else 2

    @property
    def fold1(self) -> int:
        return self.channels // self.fold_div

    @property
    def fold2(self) -> int:
        return self.channels // self.two_unit_div if self.two_unit_div else 0

    @property
    def out_channels(self) -> int:
        return self.channels + self.ways * self.fold2

    @property
    def buffer_channels(self) -> int:
        """Channels of past frames a causal shift keeps between frames: the fold of frame t-1, and the
        two-unit channels of frames t-1 and t-2."""
        return self.fold1 + 2 * self.fold2

    @cached_property
    def src_off(self) -> tuple[np.ndarray, np.ndarray]:
        c, f1, f2 = self.channels, self.fold1, self.fold2
        src = np.arange(self.out_channels, dtype=np.int32)
        off = np.zeros(self.out_channels, dtype=np.int32)
        if self.causal:
            off[:f1] = -1
            src[c:], off[c:] = np.arange(f1, f1 + f2), -2
            return src, off
        off[:f1], off[f1 : 2 * f1] = 1, -1
        base = 2 * f1
        src[c : c + 2 * f2] = np.arange(base, base + 2 * f2)
        off[c : c + f2], off[c + f2 : c + 2 * f2] = 2, -2
        return src, off

    @cached_property
    def inverse(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ptr, oc, off) CSR map: for input channel c, the outputs that read it (for the backward pass)."""
        src, off = self.src_off
        order = np.argsort(src, kind="stable")
        ptr = np.zeros(self.channels + 1, dtype=np.int32)
        np.add.at(ptr, src + 1, 1)
        return np.cumsum(ptr).astype(np.int32), order.astype(np.int32), off[order].astype(np.int32)

    @property
    def in_place_ok(self) -> bool:
        """In place is safe when no channel moves or is added: each one only shifts along time."""
        return self.out_channels == self.channels

    def bands(self) -> list[tuple[int, int, int]]:
        """Maximal runs of output channels (src_start, length, off) with consecutive sources, one offset."""
        return self._bands

    @cached_property
    def _bands(self) -> list[tuple[int, int, int]]:
        src, off = self.src_off
        runs: list[tuple[int, int, int]] = []
        for s, o in zip(src.tolist(), off.tolist()):
            if runs and runs[-1][2] == o and runs[-1][0] + runs[-1][1] == s:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1, o)
            else:
                runs.append((s, 1, o))
        return runs


@lru_cache(maxsize=None)
def shift_spec(channels: int, fold_div: int = 8, two_unit_div: int | None = None, causal: bool = False) -> ShiftSpec:
    """The (immutable) spec for a layer shape, built once: its tables and bands are then reused on every
    forward instead of being recomputed per call."""
    return ShiftSpec(channels, fold_div, two_unit_div, causal)


def _check(nt: int, n_segments: int) -> None:
    if n_segments < 1 or nt % n_segments:
        raise ValueError(f"temporal_shift: leading dim {nt} is not a multiple of n_segments={n_segments}")


def temporal_shift_numpy(x: np.ndarray, n_segments: int, fold_div: int = 8,
                         two_unit_div: int | None = None, causal: bool = False) -> np.ndarray:
    nt, c = x.shape[:2]
    _check(nt, n_segments)
    spec = shift_spec(c, fold_div, two_unit_div, causal)
    src, off = spec.src_off
    v = x.reshape(nt // n_segments, n_segments, c, *x.shape[2:])
    out = np.zeros((v.shape[0], n_segments, spec.out_channels, *x.shape[2:]), dtype=x.dtype)
    for oc in range(spec.out_channels):
        d = int(off[oc])
        lo, hi = max(0, -d), min(n_segments, n_segments - d)
        out[:, lo:hi, oc] = v[:, lo + d : hi + d, src[oc]]
    return out.reshape(nt, spec.out_channels, *x.shape[2:])


def temporal_shift_torch(x: torch.Tensor, n_segments: int, fold_div: int = 8,
                         two_unit_div: int | None = None, causal: bool = False) -> torch.Tensor:
    """Slicing + concat only: exports to ONNX as Slice/Concat, differentiable by autograd."""
    import torch

    c = int(x.shape[1])  # static; the batch dim stays symbolic when traced for ONNX export
    if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
        _check(x.shape[0], n_segments)
    spec = shift_spec(c, fold_div, two_unit_div, causal)
    v = x.reshape(-1, n_segments, c, *x.shape[2:])
    parts = []
    for s, n, d in spec.bands():
        band = v[:, :, s : s + n]
        if d == 0:
            parts.append(band)
            continue
        k = min(abs(d), n_segments)
        zero = torch.zeros_like(band[:, :k])
        kept = band[:, k:] if d > 0 else band[:, : n_segments - k]
        parts.append(torch.cat([kept, zero] if d > 0 else [zero, kept], dim=1))
    return torch.cat(parts, dim=2).reshape(-1, spec.out_channels, *x.shape[2:])


def shift_step_torch(x: torch.Tensor, buffer: torch.Tensor, fold_div: int = 8,
                     two_unit_div: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame of the causal shift: ``x`` (N, C, H, W) is frame t, ``buffer`` (N, buffer_channels, H, W)
    holds [fold of t-1 | two-unit channels of t-1 | of t-2] (zeros before the first frame). Returns the
    shifted frame, equal to frame t of the causal clip shift, and the buffer for frame t+1. Slices and
    concats only, so the per-frame ONNX model carries its state as explicit inputs and outputs."""
    import torch

    spec = shift_spec(int(x.shape[1]), fold_div, two_unit_div, causal=True)
    f1, f2 = spec.fold1, spec.fold2
    if not f2:  # TSM: the buffer is the whole fold; no empty or whole-tensor slices, each an ONNX op per frame
        return torch.cat([buffer, x[:, f1:]], dim=1), x[:, :f1]
    y = torch.cat([buffer[:, :f1], x[:, f1:], buffer[:, f1 + f2 :]], dim=1)
    return y, torch.cat([x[:, : f1 + f2], buffer[:, f1 : f1 + f2]], dim=1)


def csr_spmm_numpy(row_ptr: np.ndarray, col_idx: np.ndarray, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Y = A X row by row, accumulating in float32 (as the kernels do); x is (cols,) or (cols, k)."""
    vec = x.ndim == 1
    xm = (x[:, None] if vec else x).astype(np.float32)
    rows = len(row_ptr) - 1
    counts = np.diff(row_ptr)
    row_of = np.repeat(np.arange(rows), counts)
    y = np.zeros((rows, xm.shape[1]), dtype=np.float32)
    np.add.at(y, row_of, values.astype(np.float32)[:, None] * xm[col_idx])
    y = y.astype(values.dtype)
    return y[:, 0] if vec else y


def csr_spmm_torch(row_ptr: torch.Tensor, col_idx: torch.Tensor, values: torch.Tensor,
                   x: torch.Tensor) -> torch.Tensor:
    """The same product in torch (any device, differentiable in x): gather, scale, scatter-add per row."""
    import torch

    vec = x.ndim == 1
    xm = (x[:, None] if vec else x).to(torch.float32)
    rows = row_ptr.numel() - 1
    row_of = torch.repeat_interleave((row_ptr[1:] - row_ptr[:-1]).long())  # row r repeated nnz(r) times
    y = torch.zeros((rows, xm.shape[1]), dtype=torch.float32, device=x.device)
    y = y.index_add(0, row_of, values.to(torch.float32)[:, None] * xm[col_idx.long()]).to(values.dtype)
    return y[:, 0] if vec else y
