"""CSR matrices: the storage a pruned fully-connected layer runs from (int32 indices, fp32/fp16 values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class CSRMatrix:
    row_ptr: np.ndarray
    col_idx: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]
    _device_cache: dict[Any, tuple] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.row_ptr = np.ascontiguousarray(self.row_ptr, dtype=np.int32)
        self.col_idx = np.ascontiguousarray(self.col_idx, dtype=np.int32)
        if self.values.dtype not in (np.float32, np.float16):
            self.values = self.values.astype(np.float32)
        self.values = np.ascontiguousarray(self.values)
        rows, cols = self.shape
        if len(self.row_ptr) != rows + 1 or self.row_ptr[0] != 0 or self.row_ptr[-1] != len(self.col_idx):
            raise ValueError(f"CSRMatrix: row_ptr does not describe {rows} rows of {len(self.col_idx)} nonzeros")
        if len(self.values) != len(self.col_idx):
            raise ValueError("CSRMatrix: values and col_idx differ in length")
        if len(self.col_idx) and (self.col_idx.min() < 0 or self.col_idx.max() >= cols):
            raise ValueError(f"CSRMatrix: a column index is outside [0, {cols})")

    @property
    def nnz(self) -> int:
        return len(self.values)

    @property
    def density(self) -> float:
        return self.nnz / max(1, self.shape[0] * self.shape[1])

    @property
    def mean_row_length(self) -> float:
        return self.nnz / max(1, self.shape[0])

    @classmethod
    def from_dense(cls, a: Any, threshold: float = 0.0, dtype: Any = None) -> CSRMatrix:
        """Keep entries with |a| > threshold. ``a`` is a numpy array or a torch tensor (any device)."""
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        a = np.asarray(a)
        if a.ndim != 2:
            raise ValueError(f"CSRMatrix.from_dense: expected a 2-D matrix, got shape {a.shape}")
        rows, cols = np.nonzero(np.abs(a) > threshold)
        row_ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=a.shape[0]))])
        values = a[rows, cols] if dtype is None else a[rows, cols].astype(dtype)  # else: kept, fp32 if neither
        return cls(row_ptr, cols, values, (int(a.shape[0]), int(a.shape[1])))

    @classmethod
    def from_scipy(cls, m: Any) -> CSRMatrix:
        m = m.tocsr()
        m.sort_indices()
        return cls(m.indptr, m.indices, m.data, (int(m.shape[0]), int(m.shape[1])))

    def to_scipy(self) -> Any:
        import scipy.sparse

        return scipy.sparse.csr_matrix((self.values, self.col_idx, self.row_ptr), shape=self.shape)

    def to_dense(self) -> np.ndarray:
        return self.to_scipy().toarray()

    def device_arrays(self, device: Any) -> tuple:
        """(row_ptr, col_idx, values) as torch tensors on ``device``, uploaded once."""
        import torch

        key = str(device)
        if key not in self._device_cache:
            self._device_cache[key] = tuple(torch.from_numpy(a).to(device)
                                            for a in (self.row_ptr, self.col_idx, self.values))
        return self._device_cache[key]
