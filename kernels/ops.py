"""Public ops: the CUDA kernel for CUDA tensors when it is built, the reference everywhere else.

Dispatch rules (the same for both ops):
- numpy arrays -> numpy reference; CPU torch tensors -> torch reference;
- CUDA torch tensors -> our kernel through ctypes, unless the library is missing (no nvcc when it was
  built), the dtype is not fp32/fp16, or the graph is being traced for ONNX export (export must see plain
  Slice/Concat ops, not an opaque call). Each fallback prints one notice per process, never an error.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from kernels.csr import CSRMatrix
from kernels.cuda import check, library, notice_once
from kernels.reference import (
    csr_spmm_numpy,
    csr_spmm_torch,
    shift_spec,
    temporal_shift_numpy,
    temporal_shift_torch,
)

MAX_K = 16
_K_BUCKETS = (1, 2, 4, 8, 16)
# Mean nonzeros per row from which a warp (32 lanes) per row beats a thread per row; benchmarks/kernels.py
# measures both variants so this can be checked per GPU.
WARP_PER_ROW_MIN_NNZ = 16


def _dtype_code(t: Any) -> int | None:
    import torch

    return {torch.float32: 0, torch.float16: 1}.get(t.dtype)


def _tracing() -> bool:
    import torch

    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


def _use_cuda_kernel(x: Any, name: str, check_dtype: bool = True) -> bool:
    if not x.is_cuda or _tracing():
        return False
    if check_dtype and _dtype_code(x) is None:
        notice_once(f"{name}-dtype", f"kernels: {name} has no CUDA kernel for {x.dtype}; using the reference")
        return False
    return library(name) is not None


def _stream(device: Any) -> int:
    import torch

    return torch.cuda.current_stream(device).cuda_stream


# ---------------------------------------------------------------------------------------------- temporal shift


@lru_cache(maxsize=None)
def _shift_tables(channels: int, fold_div: int, two_unit_div: int | None, causal: bool, device: str) -> tuple:
    """(spec, src, off, inv_ptr, inv_oc, inv_off) with the int32 tables on ``device``, uploaded once."""
    import torch

    spec = shift_spec(channels, fold_div, two_unit_div, causal)
    arrays = (*spec.src_off, *spec.inverse)
    return (spec, *(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays))


@lru_cache(maxsize=None)
def _shift_function() -> Any:
    import torch

    class TemporalShiftFunction(torch.autograd.Function):
        """Forward and backward are both gathers (the backward through the inverse channel map)."""

        @staticmethod
        def forward(ctx: Any, x: torch.Tensor, n_segments: int, fold_div: int,
                    two_unit_div: int | None, causal: bool) -> torch.Tensor:
            x = x.contiguous()
            nt, c = x.shape[0], x.shape[1]
            spec, src, off, *_ = _shift_tables(c, fold_div, two_unit_div, causal, str(x.device))
            y = x.new_empty((nt, spec.out_channels, *x.shape[2:]))
            hw = x[0, 0].numel()
            check(library("temporal_shift").temporal_shift_forward(
                _dtype_code(x), x.data_ptr(), y.data_ptr(), src.data_ptr(), off.data_ptr(),
                nt // n_segments, n_segments, c, spec.out_channels, hw, _stream(x.device)), "temporal_shift forward")
            ctx.shape, ctx.args = x.shape, (n_segments, fold_div, two_unit_div, causal)
            return y

        @staticmethod
        def backward(ctx: Any, gy: torch.Tensor) -> tuple:
            n_segments, fold_div, two_unit_div, causal = ctx.args
            gy = gy.contiguous()
            nt, c = ctx.shape[0], ctx.shape[1]
            spec, _, _, inv_ptr, inv_oc, inv_off = _shift_tables(c, fold_div, two_unit_div, causal, str(gy.device))
            gx = gy.new_empty(ctx.shape)
            check(library("temporal_shift").temporal_shift_backward(
                _dtype_code(gy), gy.data_ptr(), gx.data_ptr(), inv_ptr.data_ptr(), inv_oc.data_ptr(),
                inv_off.data_ptr(), nt // n_segments, n_segments, c, spec.out_channels, gx[0, 0].numel(),
                _stream(gy.device)), "temporal_shift backward")
            return gx, None, None, None, None

    return TemporalShiftFunction



def _check_shape(x: Any, n_segments: int) -> None:
    if x.ndim < 2:
        raise ValueError(f"temporal_shift: expected an (N*T, C, ...) tensor, got shape {tuple(x.shape)}")
    if n_segments < 1 or x.shape[0] % n_segments:
        raise ValueError(f"temporal_shift: leading dim {x.shape[0]} is not a multiple of n_segments={n_segments}")


def temporal_shift(x: Any, n_segments: int, fold_div: int = 8, *, two_unit_div: int | None = None,
                   causal: bool = False, inplace: bool = False) -> Any:
    """Temporal shift of an (N*T, C, H, W) numpy array or torch tensor (see kernels.reference).

    Defaults are the TSM paper's: C//8 channels from t+1, C//8 from t-1, zeros at the clip ends.
    ``two_unit_div=16`` adds MSTSM's concatenated two-unit shift (C + 2*(C//16) output channels).
    ``causal=True`` is the online (uni-directional) variant: channels come from the past only.
    ``inplace=True`` overwrites ``x`` (only for variants that add no channels, and not for tensors that
    need a gradient) and returns it.
    """
    if isinstance(x, np.ndarray) or not _tracing():
        _check_shape(x, n_segments)
    spec = shift_spec(int(x.shape[1]), fold_div, two_unit_div, causal)
    if inplace and not spec.in_place_ok:
        raise ValueError("temporal_shift: in place is only possible when no channels are added (two_unit_div=None)")
    if isinstance(x, np.ndarray):
        y = temporal_shift_numpy(x, n_segments, fold_div, two_unit_div, causal)
        if inplace:
            x[...] = y
            return x
        return y
    if inplace and x.requires_grad:
        raise ValueError("temporal_shift: in place on a tensor that requires grad would break autograd")
    if not _use_cuda_kernel(x, "temporal_shift"):
        y = temporal_shift_torch(x, n_segments, fold_div, two_unit_div, causal)
        return x.copy_(y) if inplace else y
    if inplace:
        if not x.is_contiguous():
            raise ValueError("temporal_shift: in place needs a contiguous tensor")
        _, _, off, *_ = _shift_tables(spec.channels, fold_div, two_unit_div, causal, str(x.device))
        check(library("temporal_shift").temporal_shift_inplace(
            _dtype_code(x), x.data_ptr(), off.data_ptr(), x.shape[0] // n_segments, n_segments, spec.channels,
            x[0, 0].numel(), _stream(x.device)), "temporal_shift in place")
        return x
    return _shift_function().apply(x, n_segments, fold_div, two_unit_div, causal)


# ---------------------------------------------------------------------------------------------- CSR SpMV / SpMM


def k_chunks(k: int) -> list[tuple[int, int, int]]:
    """(first column, width, padded width) of each kernel launch for k right-hand sides: at most 16 columns
    per launch, each padded up to the next compiled width (1, 2, 4, 8 or 16)."""
    chunks = []
    for start in range(0, k, MAX_K):
        width = min(MAX_K, k - start)
        chunks.append((start, width, next(b for b in _K_BUCKETS if b >= width)))
    return chunks


def _spmm_cuda(a: CSRMatrix, x: Any) -> Any:
    """Y = A X on the GPU, one launch per chunk of ``k_chunks``."""
    import torch

    row_ptr, col_idx, values = a.device_arrays(x.device)
    x = x.to(values.dtype)
    rows = a.shape[0]
    variant = int(a.mean_row_length >= WARP_PER_ROW_MIN_NNZ)
    lib = library("csr_spmv")
    outs = [torch.empty((rows, 0), dtype=values.dtype, device=x.device)]
    for start, width, padded in k_chunks(x.shape[1]):
        chunk = torch.nn.functional.pad(x[:, start : start + width], (0, padded - width)).contiguous()
        y = torch.empty((rows, padded), dtype=values.dtype, device=x.device)
        check(lib.csr_spmm(_dtype_code(values), variant, rows, padded, row_ptr.data_ptr(), col_idx.data_ptr(),
                           values.data_ptr(), chunk.data_ptr(), y.data_ptr(), _stream(x.device)), "csr_spmm")
        outs.append(y[:, :width])
    return torch.cat(outs, dim=1)


def csr_spmv(a: CSRMatrix, x: Any) -> Any:
    """y = A x for a vector x (cols,), or Y = A X for X (cols, k): several clips' features at once.

    ``x`` is a numpy array or a torch tensor (CPU or CUDA); the result is the same kind, on the same
    device, in A's value dtype (x is cast to it), accumulated in fp32.
    """
    if x.ndim not in (1, 2) or x.shape[0] != a.shape[1]:
        raise ValueError(f"csr_spmv: x has shape {tuple(x.shape)}, expected ({a.shape[1]},) or ({a.shape[1]}, k)")
    if isinstance(x, np.ndarray):
        return csr_spmm_numpy(a.row_ptr, a.col_idx, a.values, x)
    if not _use_cuda_kernel(x, "csr_spmv", check_dtype=False):
        return csr_spmm_torch(*a.device_arrays(x.device), x)
    y = _spmm_cuda(a, x[:, None] if x.ndim == 1 else x)
    return y[:, 0] if x.ndim == 1 else y
