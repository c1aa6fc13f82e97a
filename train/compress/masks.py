"""Unstructured magnitude pruning with masks that survive fine-tuning (T-C3D Sec. III-F, after Han et al.).

Every Conv and Linear weight is a target (the classifier and depthwise convs included, as Deep Compression
prunes every layer); each layer is pruned to its own sparsity by magnitude. A mask is the weight's non-zero
pattern, so a checkpoint describes its own masks: a resumed or later fine-tune rebuilds them from the zeros
(``Masks.attach``) and nothing but a normal state_dict is stored. We keep the masks ourselves rather than
through ``torch.nn.utils.prune``, whose re-parametrisation renames ``weight`` to ``weight_orig`` +
``weight_mask`` in the state_dict and would break the checkpoint contract (docs/compression.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from train.compress.schedule import meets_2_4

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def targets(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Module name -> (module, "conv" | "fc") for every layer whose weight is pruned and shared."""
    out: dict[str, tuple[nn.Module, str]] = {}
    for name, m in model.named_modules():
        if isinstance(m, _CONV):
            out[name] = (m, "conv")
        elif isinstance(m, nn.Linear):
            out[name] = (m, "fc")
    return out


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep all but the floor(sparsity * n) smallest |w| (ties: the lower flat index goes first)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"magnitude_mask: sparsity {sparsity} is outside [0, 1)")
    flat = weight.detach().abs().reshape(-1)
    k = math.floor(sparsity * flat.numel() + 1e-9)
    keep = torch.ones_like(flat, dtype=torch.bool)
    keep[torch.sort(flat, stable=True).indices[:k]] = False
    return keep.reshape(weight.shape)


def sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of zero weights of every target layer."""
    return {n: 1.0 - torch.count_nonzero(m.weight).item() / m.weight.numel() for n, (m, _) in targets(model).items()}


@torch.no_grad()
def prune_to(model: nn.Module, per_layer: dict[str, float]) -> None:
    """Zero the smallest weights of each named layer until it reaches its sparsity (zeros count first)."""
    layers = targets(model)
    for name, s in per_layer.items():
        w = layers[name][0].weight
        w.mul_(magnitude_mask(w, s))


def sparsity_summary(model: nn.Module) -> dict[str, Any]:
    """What the bundle manifest records: the zero fraction of all Conv/Linear weights, and per layer its
    zero fraction and whether it meets 2:4 (what TensorRT's sparse tensor cores may run)."""
    layers = targets(model)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in layers.values())
    total = sum(m.weight.numel() for m, _ in layers.values())
    per_layer = {n: {"sparsity": round(s, 4), "two_four": meets_2_4(layers[n][0].weight)}
                 for n, s in sparsity(model).items()}
    return {"overall": round(zeros / max(total, 1), 4), "layers": per_layer}


def by_kind(model: nn.Module, conv: float, fc: float) -> dict[str, float]:
    """The per-layer sparsities of ``conv``/``fc`` for every target of ``model``."""
    return {n: conv if kind == "conv" else fc for n, (_, kind) in targets(model).items()}


class Masks:
    """Keeps pruned weights at zero through training (a ``train.engine.Constraint``).

    ``schedule(epoch)`` (0-based) gives the per-layer sparsities to prune to before that epoch trains, so
    every epoch recovers from its step: T-C3D's progressive sparsification. Without one the masks stay as
    they were attached.
    """

    def __init__(self, schedule: Callable[[int], dict[str, float]] | None = None) -> None:
        self.schedule = schedule
        self.masks: list[tuple[torch.Tensor, torch.Tensor]] = []  # (weight, mask): no module walk per step

    def attach(self, model: nn.Module) -> None:
        self.masks = [(m.weight, m.weight.detach() != 0) for m, _ in targets(model).values()]

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        for weight, mask in self.masks:
            weight.mul_(mask)

    def before_epoch(self, model: nn.Module, epoch: int) -> None:
        if self.schedule is not None:
            prune_to(model, self.schedule(epoch))
            self.attach(model)
