"""CaffeNet (Jia et al.'s single-GPU AlexNet), the network the MOMP paper fine-tunes on MOMP images and prunes
(momp-image-and-correlation-pruning.txt, Sec. IV-A-1, Table II: conv layers, FC1 = FC2 = 4096).

Written here from the BVLC reference CaffeNet geometry (docs/models.md, "MOMP CaffeNet"):

    conv1 96 11x11/4 - ReLU - pool 3x3/2 - LRN
    conv2 256 5x5 pad 2, group 2 - ReLU - pool 3x3/2 - LRN
    conv3 384 3x3 pad 1 - ReLU
    conv4 384 3x3 pad 1, group 2 - ReLU
    conv5 256 3x3 pad 1, group 2 - ReLU - pool 3x3/2
    fc6 4096 - ReLU - dropout - fc7 4096 - ReLU - dropout - classifier

Pools round up (Caffe's pooling), so 227 and the paper's 224 crops both end at 6x6 (fc6: 256 * 36 = 9216
inputs). ``features`` holds each conv as ``Sequential(conv, [BN,] ReLU)`` followed by the pools and LRNs,
``head`` the FC chain, as ``Clip3DNet`` (train/models/c3d.py) does, so a chain pruning pass can walk both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from train.models.init import he_init
from train.models.resnet import check_inner_widths

# (output channels at width 96, kernel, stride, padding, grouped?, then pool?, then LRN?)
CONVS: tuple[tuple[int, int, int, int, bool, bool, bool], ...] = (
    (96, 11, 4, 0, False, True, True),
    (256, 5, 1, 2, True, True, True),
    (384, 3, 1, 1, False, False, False),
    (384, 3, 1, 1, True, False, False),
    (256, 3, 1, 1, True, True, False),
)
FC = 4096
NORMS = ("lrn", "bn")
MIN_SIZE = 55  # the smallest input side that survives conv1 and the three 3x3/2 pools


def _pooled(n: int) -> int:
    """Side after a 3x3 stride-2 max pool that rounds up (Caffe; ``ceil_mode=True``)."""
    return math.ceil((n - 3) / 2) + 1


def feature_side(size: int) -> int:
    """Side of conv5's pooled output for a ``size`` x ``size`` input (6 at 224 and 227)."""
    if size < MIN_SIZE:
        raise ValueError(f"CaffeNet: input size must be >= {MIN_SIZE} (conv1 11x11/4 and three 3x3/2 pools), "
                         f"got {size}")
    n = (size - 11) // 4 + 1
    for *_, pool, _lrn in CONVS:
        if pool:
            n = _pooled(n)
    return n


class CaffeNet(nn.Module):
    """CaffeNet on (B, T, C, H, W) input: each of the T images through the 2D network, class scores averaged
    over T (T = 1: one MOMP image per clip, the paper's input).

    ``width``: conv1's channels (96 = CaffeNet); every conv and FC width scales by ``width / 96`` (convs
    rounded to a multiple of ``groups``). ``size``: input side (227 = CaffeNet); fc6's input follows from it.
    ``norm``: "lrn" (CaffeNet: local response normalisation, size 5, alpha 1e-4, beta 0.75, after pool1 and
    pool2) or "bn" (BatchNorm after every conv, no LRN, conv biases dropped). ``groups``: 2 (CaffeNet:
    conv2, conv4, conv5 in two towers) or 1 (a plain chain). ``inner_widths``: conv1..conv5 and fc6, fc7
    output widths when structured pruning made them narrower (each conv width a multiple of ``groups``).
    """

    def __init__(self, *, num_classes: int, num_segments: int = 1, width: float = 96, size: int = 227,
                 dropout: float = 0.0, norm: str = "lrn", groups: int = 2,
                 inner_widths: Sequence[int] | None = None) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"CaffeNet: norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if groups not in (1, 2):
            raise ValueError(f"CaffeNet: groups must be 1 or 2, got {groups}")
        self.num_segments, self.size = num_segments, size
        side = feature_side(size)
        scale = width / 96
        widths = [groups * max(1, round(c * scale / groups)) for c, *_ in CONVS] + [max(1, round(FC * scale))] * 2
        if inner_widths is not None:
            widths = _checked(inner_widths, groups)
        cin, blocks = 3, list[nn.Module]()
        for (_, k, stride, pad, grouped, pool, lrn), cout in zip(CONVS, widths[:5], strict=True):
            conv = nn.Conv2d(cin, cout, k, stride, pad, groups=groups if grouped else 1, bias=norm == "lrn")
            layers: list[nn.Module] = [conv] + ([nn.BatchNorm2d(cout)] if norm == "bn" else [])
            blocks.append(nn.Sequential(*layers, nn.ReLU(inplace=True)))
            if pool:
                blocks.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            if lrn and norm == "lrn":
                blocks.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0))
            cin = cout
        self.features = nn.Sequential(*blocks)
        fc6, fc7 = widths[5], widths[6]

        def drop() -> nn.Module:
            return nn.Dropout(dropout) if dropout > 0 else nn.Identity()

        # CaffeNet's drop6 / drop7 follow relu6 / relu7 (none before fc6)
        self.head = nn.Sequential(nn.Linear(cin * side * side, fc6), nn.ReLU(inplace=True), drop(),
                                  nn.Linear(fc6, fc7), nn.ReLU(inplace=True), drop(), nn.Linear(fc7, num_classes))
        he_init(self)  # trained from scratch here, not from ImageNet CaffeNet (docs/models.md)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w = x.shape[0], x.shape[1], x.shape[3], x.shape[4]
        if not torch.jit.is_tracing():
            if t != self.num_segments:
                raise ValueError(f"expected {self.num_segments} images per clip, got {t}")
            if (h, w) != (self.size, self.size):
                raise ValueError(f"expected {self.size}x{self.size} images, got {h}x{w}")
        logits = self.head(self.features(x.flatten(0, 1)).flatten(1))
        return logits.reshape(b, t, -1).mean(dim=1)


def _checked(inner_widths: Sequence[int], groups: int) -> list[int]:
    widths = check_inner_widths(inner_widths, 7, "conv1..conv5, fc6, fc7")
    if any(w % groups for w in widths[:5]):
        raise ValueError(f"inner_widths: conv widths must be multiples of groups={groups} (the two towers keep "
                         f"equal widths), got {widths[:5]}")
    return widths


def momp_caffenet(*, num_classes: int, num_segments: int = 1, width: float = 96, size: int = 227,
                  dropout: float = 0.0, norm: str = "lrn", groups: int = 2,
                  inner_widths: Sequence[int] | None = None) -> CaffeNet:
    """The MOMP paper's network: CaffeNet classifying one MOMP image per clip (edge.motion.momp_image)."""
    return CaffeNet(num_classes=num_classes, num_segments=num_segments, width=width, size=size, dropout=dropout,
                    norm=norm, groups=groups, inner_widths=inner_widths)
