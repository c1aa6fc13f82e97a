"""Loading the compiled kernels through ctypes.

The libraries are plain shared objects with extern "C" launchers taking raw device pointers and a CUDA
stream, so the same binary serves torch tensors (``data_ptr()``, the current stream) in training and
pycuda/TensorRT buffers on a Jetson (see docs/kernels.md for why ctypes rather than a torch extension).
A missing toolchain, library or GPU gives ``None`` here and the CPU reference upstream, with one notice.
"""

from __future__ import annotations

import ctypes
import logging
from functools import lru_cache

log = logging.getLogger("kernels")
# The extern "C" launchers of each library: i = int, p = pointer (device buffer or cudaStream_t). Checked
# against the .cu declarations by tests/kernels/test_build.py, since a mismatch would only show on a GPU.
SIGNATURES = {
    "temporal_shift": {"temporal_shift_forward": "ippppiiiiip", "temporal_shift_backward": "ipppppiiiiip",
                       "temporal_shift_inplace": "ippiiiip"},
    "csr_spmv": {"csr_spmm": "iiiipppppp"},
}
_noticed: set[str] = set()


def notice_once(key: str, message: str) -> None:
    if key not in _noticed:
        _noticed.add(key)
        log.warning(message)


@lru_cache(maxsize=None)
def library(name: str) -> ctypes.CDLL | None:
    """The kernel library ``lib{name}.so`` (rebuilt first if its source changed and nvcc is present), or
    None when it cannot be had."""
    from kernels.build import BuildError, build_all, library_path  # not at import: `python -m kernels.build`

    path = library_path(name)
    try:
        build_all(verbose=False)  # a no-op when up to date or without nvcc; never loads a stale library
    except (BuildError, OSError) as e:  # OSError: e.g. a read-only install; see EDGE_KERNELS_BUILD
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
    for fn, signature in SIGNATURES[name].items():
        getattr(lib, fn).argtypes = [ctypes.c_int if ch == "i" else ctypes.c_void_p for ch in signature]
        getattr(lib, fn).restype = ctypes.c_int
    return lib


def check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"kernels: {what} failed with CUDA error {status}")
