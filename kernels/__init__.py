"""CUDA kernels with CPU references. Importing this package needs only numpy (torch is imported lazily)."""

from kernels.ops import temporal_shift

__all__ = ["temporal_shift"]
