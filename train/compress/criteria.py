"""Filter-importance criteria for structured pruning, as the papers define them.

Every criterion takes one layer's weight of shape (out_filters, ...): a Conv2d/Conv3d weight
(out, in, *k) or a Linear weight (out, in), whose rows are the FC "filters" (MOMP Sec. III-B,
Algorithm 2: an output neuron's p incoming weights are its filter). Each filter is flattened to a row.
Inputs may be numpy arrays or torch tensors (detached and copied to CPU); the maths is numpy float64, so
scores are reproducible and ties are exact. Every criterion returns per-filter scores where LOWER means
pruned first; ``select_pruned`` turns scores and a ratio into the indices to remove.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

# A filter whose spread is below this fraction of its largest |weight| is constant: float64 rounding of
# the mean leaves ~1e-16 relative noise there, while a real float32 weight varies by >= ~6e-8 relative.
_CONSTANT_TOL = 1e-12


def _rows(weight: Any) -> np.ndarray:
    """(out_filters, fan_in) float64 copy of a weight tensor."""
    if hasattr(weight, "detach"):  # torch.Tensor, without importing torch here
        weight = weight.detach().cpu().double().numpy()
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim < 2:
        raise ValueError(f"criteria: expected a weight of shape (out_filters, ...), got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("criteria: weight has NaN or inf values")
    return w.reshape(w.shape[0], -1)


def l1(weight: Any) -> np.ndarray:
    """Sum of |w| per filter (Li et al., 2017; MOMP's reference [26]): the smallest filters go first."""
    return np.abs(_rows(weight)).sum(axis=1)


def _covariance_matrix(rows: np.ndarray) -> np.ndarray:
    """K[i, j] = cov(F_i, F_j), each filter's weights being the samples of one variable.

    Normalised by the fan-in (population covariance): the paper does not say, and the 1/d factor is the
    same for every entry of a layer, so the ranking is unchanged while d = 1 stays defined. Constant
    filters are centred to exactly zero, so their whole row and column (diagonal too) is 0.
    """
    x = rows - rows.mean(axis=1, keepdims=True)
    spread = np.sqrt((x * x).mean(axis=1))
    x[spread <= _CONSTANT_TOL * np.abs(rows).max(axis=1)] = 0.0
    return x @ x.T / rows.shape[1]


def _dependence_scores(k: np.ndarray) -> np.ndarray:
    """MOMP Sec. III-B, Algorithm 1 step 2: m_i = (1/N) sum_{k=1..N} K[i, k] (all N columns, the diagonal
    included, as the formula is written). A filter is pruned when |m_i| > tau, so the score is -|m_i|."""
    return -np.abs(k.mean(axis=1))


def covariance(weight: Any) -> np.ndarray:
    """MOMP covariance criterion: the most dependent filters (largest |mean covariance|) go first."""
    return _dependence_scores(_covariance_matrix(_rows(weight)))


def correlation(weight: Any) -> np.ndarray:
    """MOMP correlation criterion, K[i, j] = cov(F_i, F_j) / (sigma_i sigma_j), the paper's alternative.

    A constant filter (sigma = 0, e.g. all zeros) has no defined correlation: its row and column are set to
    0, diagonal included, the same as its covariance row, so m = 0 and it is pruned last, as under the
    covariance criterion. (``l1`` is the criterion that removes zero filters first.)
    """
    k = _covariance_matrix(_rows(weight))
    sigma = np.sqrt(np.diag(k))
    inv = np.divide(1.0, sigma, out=np.zeros_like(sigma), where=sigma > 0)
    r = k * inv[:, None] * inv[None, :]
    np.fill_diagonal(r, sigma > 0)  # exactly 1 (not 1 +- an ulp), so equal rows tie exactly
    return _dependence_scores(r)


def geometric_median(weight: Any) -> np.ndarray:
    """MSTSM Sec. 3.5.1, Eqs. 5-7: td_i = sum_j ||K_i - K_j||_2 (Eq. 5); K_GM is the kernel with the least
    td (Eq. 6; the first one on ties), i.e. a medoid chosen among the layer's own kernels, not FPGM's
    continuous geometric median; the score is d_i = ||K_i - K_GM||_2 (Eq. 7), sorted ascending, so K_GM
    itself (d = 0) and its nearest kernels, the "similar kernels", are pruned first."""
    rows = _rows(weight)
    dist = cdist(rows, rows)
    gm = int(np.argmin(dist.sum(axis=1)))
    return dist[gm]


CRITERIA: dict[str, Callable[[Any], np.ndarray]] = {
    "l1": l1,
    "covariance": covariance,
    "correlation": correlation,
    "geometric_median": geometric_median,
}


def select_pruned(scores: Any, ratio: float) -> np.ndarray:
    """Indices (ascending) of the floor(ratio * n) lowest-scoring filters, never all n: at least one stays.

    Ties go to the lower index (stable sort). The floor tolerates float rounding, so 0.29 of 100 is 29.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"select_pruned: ratio {ratio} is outside [0, 1)")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    k = min(math.floor(ratio * s.size + 1e-9), max(s.size - 1, 0))
    return np.sort(np.argsort(s, kind="stable")[:k])
