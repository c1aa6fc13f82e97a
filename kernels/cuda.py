"""Loading the compiled kernels through ctypes.

The libraries are plain shared objects with extern "C" launchers taking raw device pointers and a CUDA
stream, so the same binary serves torch tensors (``data_ptr()``, the current stream) in training and
pycuda/TensorRT buffers on a Jetson (see docs/kernels.md for why ctypes rather than a torch extension).
A missing toolchain, library or GPU gives ``None`` here and the CPU reference upstream, with one notice.
"""

from __future__ import annotations

import ctypes
import logging
from functools import cache

log = logging.getLogger("kernels")
_noticed: set[str] = set()


def notice_once(key: str, message: str) -> None:
    if key not in _noticed:
        _noticed.add(key)
        log.warning(message)


@cache
def library(name: str) -> ctypes.CDLL | None:
    """The kernel library ``lib{name}.so``, built on first use if nvcc is present; None if unavailable."""
    from kernels.build import BuildError, build_all, library_path  # not at import: `python -m kernels.build`

    path = library_path(name)
    if not path.is_file():
        try:
            build_all(verbose=False)
        except BuildError as e:
            notice_once(name, f"kernels: building {name} failed, using the reference ({str(e).splitlines()[0]})")
            return None
    if not path.is_file():
        notice_once(name, f"kernels: {path.name} not built (no nvcc); using the reference implementation")
        return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        notice_once(name, f"kernels: cannot load {path} ({e}); using the reference implementation")
        return None
    vp, i = ctypes.c_void_p, ctypes.c_int
    if name == "temporal_shift":
        lib.temporal_shift_forward.argtypes = [i, vp, vp, vp, vp, i, i, i, i, i, vp]
        lib.temporal_shift_backward.argtypes = [i, vp, vp, vp, vp, vp, i, i, i, i, i, vp]
        lib.temporal_shift_inplace.argtypes = [i, vp, vp, i, i, i, i, vp]
    elif name == "csr_spmv":
        lib.csr_spmm.argtypes = [i, i, i, i, vp, vp, vp, vp, vp, vp]
    return lib


def check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"kernels: {what} failed with CUDA error {status}")
