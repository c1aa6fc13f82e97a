"""k-means weight sharing (T-C3D Sec. III-F "Quantization", after Han et al.'s Deep Compression).

Per layer, the non-zero weights are clustered into 2^bits - 1 centroids with linear initialisation (evenly
spaced between the smallest and largest weight, the initialisation Deep Compression found best) by
``scipy.cluster.vq.kmeans2``; code 0 is reserved for the value 0, which the pruned weights and the store's
filler entries need. So a layer has at most 2^bits distinct values, zero included. Fine-tuning updates the
centroids with the gradients summed per cluster (``SharedWeights``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy.cluster.vq import kmeans2
from torch import nn

from train.compress.masks import targets


def cluster(weight: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(codebook float32 with codebook[0] == 0, codes int of weight's shape): weight ~ codebook[codes].

    Unused centroids are dropped, so the codebook may be shorter than 2^bits.
    """
    w = np.asarray(weight, dtype=np.float32)
    flat = w.reshape(-1)
    nz = np.flatnonzero(flat)
    codes = np.zeros(flat.shape, dtype=np.int64)
    k = min(2**bits - 1, nz.size)
    if k == 0:
        return np.zeros(1, dtype=np.float32), codes.reshape(w.shape)
    values = flat[nz].astype(np.float64)
    init = np.linspace(values.min(), values.max(), k)
    with warnings.catch_warnings():  # "one of the clusters is empty": those centroids are dropped below
        warnings.simplefilter("ignore", UserWarning)
        centroids, labels = kmeans2(values[:, None], init[:, None], iter=20, minit="matrix")
    used, labels = np.unique(labels, return_inverse=True)
    codebook = np.concatenate([[0.0], centroids[used, 0]]).astype(np.float32)
    codes[nz] = labels + 1
    if (codebook[1:] == 0).any():  # a centroid of exactly 0 would be confused with the pruned weights
        raise ValueError("k-means: a centroid is exactly 0")
    return codebook, codes.reshape(w.shape)


@torch.no_grad()
def share(model: nn.Module, conv_bits: int, fc_bits: int) -> dict[str, int]:
    """Replace every target layer's weights by their centroids; returns the codebook size per layer."""
    sizes = {}
    for name, (m, kind) in targets(model).items():
        codebook, codes = cluster(m.weight.detach().cpu().numpy(), conv_bits if kind == "conv" else fc_bits)
        m.weight.copy_(torch.from_numpy(codebook[codes]))
        sizes[name] = codebook.size
    return sizes


class SharedWeights:
    """Keeps every weight equal to its cluster's centroid while training (a ``train.engine.Constraint``).

    The clusters are the layer's distinct values (so they rebuild from a checkpoint). Each weight's gradient
    is replaced by the sum over its cluster, the centroid gradient of Deep Compression; the zero cluster
    gets none. Weights of one cluster then see identical updates; ``after_step`` re-averages them so float
    rounding cannot split a cluster.
    """

    def __init__(self) -> None:
        # per layer (weight, inverse, live cluster, members per cluster), found once at attach
        self.codes: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []

    def attach(self, model: nn.Module) -> None:
        for h in self._hooks:
            h.remove()
        self.codes, self._hooks = [], []
        for m, _ in targets(model).values():
            values, inverse = torch.unique(m.weight.detach(), return_inverse=True)
            live = values != 0
            counts = torch.bincount(inverse.reshape(-1), minlength=values.numel()).to(m.weight.dtype)
            self.codes.append((m.weight, inverse, live, counts))
            self._hooks.append(m.weight.register_hook(self._summed(inverse, live)))

    @staticmethod
    def _per_cluster(inverse: torch.Tensor, live: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Sum of ``x`` over each cluster, 0 for the pruned one."""
        sums = torch.zeros(live.numel(), dtype=x.dtype, device=x.device)
        return sums.index_add_(0, inverse.reshape(-1), x.reshape(-1)) * live

    @classmethod
    def _summed(cls, inverse: torch.Tensor, live: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda grad: cls._per_cluster(inverse, live, grad)[inverse]

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        for weight, inverse, live, counts in self.codes:
            weight.copy_((self._per_cluster(inverse, live, weight) / counts)[inverse])

    def before_epoch(self, model: nn.Module, epoch: int) -> None:
        pass
