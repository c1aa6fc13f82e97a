"""Motion distillation (Dual-action Stream, ../shared/papers/dual-action-stream-distillation.txt): an RGB
student learns a frozen flow teacher's features, so the deployed model needs no optical flow.

The paper's losses, on the features of the n-1 layers before the classifier (``FeatureTap``):

- Eq. 1, MARS (Crasto et al.): the squared error of the penultimate features (the layer before the last
  linear one), averaged over its elements as MARS's MSE is;
- Eq. 2, multi-level MAE: (1/(n-1)) sum_i ||f_DS(i) - f_FLOW(i)||_1. "Mean absolute error": each level's
  L1 distance is averaged over its elements, so levels of different sizes weigh alike and alpha stays in
  scale with the cross-entropy; a literal sum would grow with the feature map;
- Eq. 3, Gram: sum_i || (G(f_DS(i)) - G(f_FLOW(i))) / ((n-1) C_i T_i H_i W_i) ||_1 with G(f) = f f^T on
  the (C_i, T_i H_i W_i) flattened features, per clip, then averaged over the batch - with the L1 norm
  averaged over the C_i x C_i entries and so divided by T_i H_i W_i alone: the paper's term over C_i. As
  written, the norm sums C_i^2 entries against a normaliser with one C_i, so it grows with the width and
  swamps the cross-entropy (docs/distillation.md, "Deviations").

The total (Eq. 4) is cross-entropy + alpha * (the chosen distillation terms), ``train.distill.student``. The
teacher is frozen (``freeze``): eval mode, so its BatchNorm statistics stay as trained, and no gradients.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

LOSSES = ("mae+gram", "mae", "gram", "mars")


class FeatureTap:
    """Keeps the outputs of ``model``'s modules named ``levels`` on every forward (a forward hook each).
    A 2D backbone's (N*T, C, H, W) features are viewed as (N, T, C, H, W) when ``segments`` is given, so a
    level's T is the clip's."""

    def __init__(self, model: nn.Module, levels: Iterable[str], segments: int | None = None) -> None:
        modules = dict(model.named_modules())
        self.levels = list(levels)
        missing = [name for name in self.levels if name not in modules]
        if missing:
            raise ValueError(f"no module named {missing[0]!r} in {type(model).__name__} "
                             f"(its children: {', '.join(n for n, _ in model.named_children())})")
        self.segments = segments
        self.features: dict[str, torch.Tensor] = {}
        self._hooks = [modules[name].register_forward_hook(self._keep(name)) for name in self.levels]

    def _keep(self, name: str):  # noqa: ANN202 - a hook closure
        def hook(_module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
            self.features[name] = out
        return hook

    def get(self) -> list[torch.Tensor]:
        """The levels' features of the last forward, in ``levels`` order, as (N, C, T, ...) blocks."""
        return [as_block(self.features[name], self.segments) for name in self.levels]

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()


def as_block(f: torch.Tensor, segments: int | None) -> torch.Tensor:
    """(N, C, T, H, W) for a 3D CNN's features; a 2D backbone's (N*T, C, H, W) regrouped per clip; pooled
    (N, C) features stay as they are."""
    if segments is None or f.dim() != 4:
        return f
    nt, c, h, w = f.shape
    return f.reshape(nt // segments, segments, c, h, w).transpose(1, 2)


def mars_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Eq. 1: mean squared error of the penultimate features."""
    return (student - teacher).pow(2).mean()


def mae_loss(students: list[torch.Tensor], teachers: list[torch.Tensor]) -> torch.Tensor:
    """Eq. 2: the mean over levels of each level's mean absolute difference."""
    _check(students, teachers)
    return torch.stack([(s - t).abs().mean() for s, t in zip(students, teachers, strict=True)]).mean()


def gram(f: torch.Tensor) -> torch.Tensor:
    """G(f) = f f^T per clip: (N, C, C) from (N, C, ...) features flattened to (N, C, T*H*W)."""
    flat = f.reshape(f.shape[0], f.shape[1], -1)
    return flat @ flat.transpose(1, 2)


def gram_loss(students: list[torch.Tensor], teachers: list[torch.Tensor]) -> torch.Tensor:
    """Eq. 3 with each level's L1 norm a mean over the Gram matrix's C x C entries: (1 / (n-1)) sum over levels
    of mean |G(f_s) - G(f_t)| / (T H W), per clip, batch-averaged."""
    _check(students, teachers)
    levels = len(students)
    total = students[0].new_zeros(())
    for s, t in zip(students, teachers, strict=True):
        positions = s[0].numel() // s.shape[1]  # T * H * W of one clip
        total = total + ((gram(s) - gram(t)) / (levels * positions)).abs().mean(dim=(1, 2)).mean()
    return total


def distill_loss(kind: str, students: list[torch.Tensor], teachers: list[torch.Tensor]) -> torch.Tensor:
    """The distillation term of ``kind`` (``LOSSES``); MARS takes the last level (the penultimate features)."""
    if kind == "mars":
        return mars_loss(students[-1], teachers[-1])
    terms = {"mae": mae_loss, "gram": gram_loss}
    if kind not in LOSSES:
        raise ValueError(f"--distill-loss {kind!r}: expected one of {', '.join(LOSSES)}")
    return sum(terms[k](students, teachers) for k in kind.split("+"))


def freeze(teacher: nn.Module) -> nn.Module:
    """The teacher as the paper trains against it: eval mode (BatchNorm uses and keeps its trained
    statistics) and no gradients. Keep it out of the student's module tree: a parent's ``train()`` would
    switch it back to training mode."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _check(students: list[torch.Tensor], teachers: list[torch.Tensor]) -> None:
    if not students or len(students) != len(teachers):
        raise ValueError(f"distillation: {len(students)} student levels against {len(teachers)} teacher levels")
    for i, (s, t) in enumerate(zip(students, teachers, strict=True)):
        if s.shape != t.shape:
            raise ValueError(f"distillation level {i}: student features {tuple(s.shape)} against the "
                             f"teacher's {tuple(t.shape)}")
