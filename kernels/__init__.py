"""CUDA kernels with CPU references. Importing this package needs only numpy (torch is imported lazily).

``from kernels import temporal_shift, csr_spmv, CSRMatrix`` is the stable API the rest builds on.
"""

from kernels.csr import CSRMatrix
from kernels.ops import csr_spmv, temporal_shift
from kernels.reference import shift_step_torch as temporal_shift_step  # one frame of the causal shift

__all__ = ["CSRMatrix", "csr_spmv", "temporal_shift", "temporal_shift_step"]
