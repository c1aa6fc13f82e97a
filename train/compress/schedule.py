"""Sparsity schedules and the 2:4 pattern.

``progressive_sparsity`` is T-C3D's "Sparsification" schedule (Liu et al., Sec. III-F, after DSD): the
sparsity starts at 0 and grows by a fixed step each epoch until it reaches the target (their example:
0.8 in steps of 0.1, done at the 8th epoch).

2:4 (NVIDIA's semi-structured sparsity, what TensorRT's sparse tensor cores run): at most 2 non-zeros in
every group of 4 consecutive INPUT-channel weights. A conv weight (out, in, *k) is grouped along ``in``
for each output channel and kernel position, a Linear weight (out, in) along ``in``. A layer whose input
channels are not a multiple of 4 has no such grouping and never meets the pattern (TensorRT would not
pick a sparse kernel for it as it stands). Weights may be numpy arrays or torch tensors; results are numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np


def progressive_sparsity(target: float, step: float = 0.1) -> list[float]:
    """The sparsity to prune to at the end of epochs 1, 2, ...: min(e * step, target), ending on target.

    Rounded to 12 decimals so 3 steps of 0.1 read 0.3; a target of 0 needs no epoch (empty list).
    """
    if not 0.0 <= target < 1.0 or not 0.0 < step <= 1.0:
        raise ValueError(f"progressive_sparsity: target {target} must be in [0, 1) and step {step} in (0, 1]")
    epochs = math.ceil(target / step - 1e-9)
    return [round(min(e * step, target), 12) for e in range(1, epochs + 1)]


def _array(weight: Any) -> np.ndarray:
    if hasattr(weight, "detach"):  # torch.Tensor, without importing torch here
        weight = weight.detach().cpu().numpy()
    w = np.asarray(weight)
    if w.ndim < 2:
        raise ValueError(f"2:4: expected a weight of shape (out, in, ...), got shape {w.shape}")
    return w


def _groups(w: np.ndarray) -> np.ndarray:
    """(groups, 4) view: input channels moved last, then cut into runs of 4 consecutive ones."""
    return np.moveaxis(w, 1, -1).reshape(-1, 4)


def meets_2_4(weight: Any) -> bool:
    w = _array(weight)
    return w.shape[1] % 4 == 0 and bool((np.count_nonzero(_groups(w), axis=1) <= 2).all())


def mask_2_4(weight: Any) -> np.ndarray:
    """Boolean mask of ``weight``'s shape keeping the 2 largest |w| of every 4 (the lower index on ties)."""
    w = _array(weight)
    if w.shape[1] % 4:
        raise ValueError(f"2:4: {w.shape[1]} input channels are not a multiple of 4")
    order = np.argsort(-np.abs(_groups(w)), axis=1, kind="stable")
    keep = np.zeros(order.shape, dtype=bool)
    np.put_along_axis(keep, order[:, :2], True, axis=1)
    moved = np.moveaxis(w, 1, -1).shape
    return np.moveaxis(keep.reshape(moved), -1, 1)


class TwoFourRow(NamedTuple):
    name: str
    shape: tuple[int, ...]
    met: bool
    density: float  # fraction of non-zero weights


def two_four_report(named_weights: Iterable[tuple[str, Any]]) -> list[TwoFourRow]:
    """One row per (name, weight), in order: whether it meets 2:4, and how dense it is."""
    rows = []
    for name, weight in named_weights:
        w = _array(weight)
        rows.append(TwoFourRow(name, tuple(w.shape), meets_2_4(w), np.count_nonzero(w) / w.size))
    return rows
