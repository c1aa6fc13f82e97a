"""The 3D-CNN family of the asymmetric 3D-CNN paper, all from one spec-driven builder (docs/models.md).

- ``c3d_b8``: C3D (Tran et al.), the paper's Fig. 6(a); ``c3d_b5``: conv3b/4b/5b removed, conv4a/5a and
  the FCs halved, Fig. 6(b) (Sec. 4.2).
- ``b5_asyconvN..``: the listed convs of c3d-b5 replaced by the 1x3x1/1x1x3/3x1x1 cascade; ``b8_asyconvN..``:
  the listed groups (convNa + convNb) of c3d-b8 replaced by the 1x5x1/1x1x5/3x1x1 cascade (Sec. 4.4, Table 2).
- ``b5_m1``..``b5_m4``: conv5 of c3d-b5 replaced by a MicroNet (Sec. 4.5, Table 3).
- ``asym3d``: the asymmetric 3D-CNN of Sec. 3.3 / Fig. 4.

A spec is a list of groups, each a list of (layer kind, channels at width 64) followed by a max pool; the
channel and FC widths scale with ``width / 64``, the FC input follows from ``size`` and ``num_segments``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from itertools import pairwise

import torch
from torch import nn

from train.models.conv3d import Kernel, layer, max_pool
from train.models.init import he_init

Group = Sequence[tuple[str, int]]

# pool1 keeps time (1x2x2) so early layers see the whole clip; pool5 pads H and W by 1 as C3D does, so
# 16x112x112 ends at 1x4x4 (512*16 = 8192 fc6 inputs in c3d-b8)
POOLS: tuple[tuple[Kernel, Kernel], ...] = (
    ((1, 2, 2), (0, 0, 0)), ((2, 2, 2), (0, 0, 0)), ((2, 2, 2), (0, 0, 0)), ((2, 2, 2), (0, 0, 0)),
    ((2, 2, 2), (0, 1, 1)))

B8: tuple[Group, ...] = ((("conv", 64),), (("conv", 128),), (("conv", 256), ("conv", 256)),
                         (("conv", 512), ("conv", 512)), (("conv", 512), ("conv", 512)))
B5: tuple[Group, ...] = ((("conv", 64),), (("conv", 128),), (("conv", 256),), (("conv", 256),),
                         (("conv", 256),))
# Sec. 3.3: two 3x3x3 convs, MicroNet-M2 at 8x28x28 and 4x14x14, M3 at 2x7x7; each group doubles the
# channels of the one before (our reading of "double the number of feature maps")
ASYM3D: tuple[Group, ...] = ((("conv", 64),), (("conv", 128),), (("m2", 256),), (("m2", 512),),
                             (("m3", 1024),))


class Clip3DNet(nn.Module):
    """Groups of 3D layers, each followed by a max pool, then FC-ReLU pairs and the classifier.

    Takes the project's (B, T, C, H, W) clip and convolves it as (B, C, T, H, W)."""

    def __init__(self, groups: Sequence[Group], fc: int, *, num_classes: int, num_segments: int = 16,
                 width: float = 64, size: int = 112, dropout: float = 0.0,
                 inner_widths: Sequence[int] | None = None, in_channels: int = 3) -> None:
        super().__init__()
        self.num_segments, self.size = num_segments, size
        scale = width / 64
        widths = _Widths(inner_widths)
        extent: tuple[int, ...] = (num_segments, size, size)
        cin, blocks = in_channels, list[nn.Module]()
        for group, (kernel, padding) in zip(groups, POOLS, strict=True):
            for kind, channels in group:
                module, cin = layer(kind, cin, max(1, round(channels * scale)), widths)
                blocks.append(module)
            pool, extent = max_pool(kernel, padding, extent)
            blocks.append(pool)
        self.features = nn.Sequential(*blocks)
        hidden = max(1, round(fc * scale))
        flat = cin * extent[0] * extent[1] * extent[2]
        head: list[nn.Module] = []
        dims = (flat, widths(hidden), widths(hidden), num_classes)
        widths.done()
        for i, (n_in, n_out) in enumerate(pairwise(dims)):  # fc6, fc7, classifier
            head += [nn.Dropout(dropout) if dropout > 0 else nn.Identity(), nn.Linear(n_in, n_out)]
            if i < 2:
                head.append(nn.ReLU(inplace=True))
        self.head = nn.Sequential(*head)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w = x.shape[1], x.shape[3], x.shape[4]
        if not torch.jit.is_tracing():
            if t != self.num_segments:
                raise ValueError(f"expected {self.num_segments} frames per clip, got {t}")
            if (h, w) != (self.size, self.size):
                raise ValueError(f"expected {self.size}x{self.size} frames, got {h}x{w}")
        return self.head(self.features(x.permute(0, 2, 1, 3, 4)).flatten(1))


class _Widths:
    """Hands out the prunable layers' output widths in build order: the defaults, or ``inner_widths`` (the
    widths structured pruning left, train/compress/surgery.py, one per conv of the chain and per hidden FC)."""

    def __init__(self, inner_widths: Sequence[int] | None) -> None:
        self.given = None if inner_widths is None else list(inner_widths)
        self.used = 0

    def __call__(self, default: int) -> int:
        if self.given is None:
            return default
        if self.used >= len(self.given):
            raise ValueError(f"inner_widths: {len(self.given)} widths given, the network has more prunable layers")
        self.used += 1
        return int(self.given[self.used - 1])

    def done(self) -> None:
        if self.given is not None and self.used != len(self.given):
            raise ValueError(f"inner_widths: {len(self.given)} widths given, the network has {self.used} "
                             "prunable layers")


def _replace(groups: Sequence[Group], which: str, kind: str) -> tuple[Group, ...]:
    """Groups numbered in ``which`` (e.g. "34": conv3 and conv4) become one ``kind`` layer with the group's
    output channels: c3d-b5's single conv, or c3d-b8's pair convNa + convNb."""
    return tuple(((kind, group[-1][1]),) if str(i) in which else group for i, group in enumerate(groups, 1))


MODELS: dict[str, Callable[..., nn.Module]] = {
    "c3d_b8": partial(Clip3DNet, B8, 4096),
    "c3d_b5": partial(Clip3DNet, B5, 2048),
    **{f"b5_asyconv{w}": partial(Clip3DNet, _replace(B5, w, "asym3"), 2048)
       for w in ("3", "4", "5", "34", "35", "45", "345")},
    **{f"b8_asyconv{w}": partial(Clip3DNet, _replace(B8, w, "asym5"), 4096)
       for w in ("3", "4", "5", "34", "35", "45", "345")},
    **{f"b5_{m}": partial(Clip3DNet, _replace(B5, "5", m), 2048) for m in ("m1", "m2", "m3", "m4")},
    "asym3d": partial(Clip3DNet, ASYM3D, 2048),
}
