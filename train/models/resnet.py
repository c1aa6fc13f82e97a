"""ResNet-18-style 2D backbone (He et al., 2016), written here so nothing depends on torchvision.

``width`` scales every stage (64 is the real ResNet-18); ``temporal`` builds a module placed at the start
of each block's residual branch, which is where TSM's residual shift goes. ``inner_widths`` (one per block)
sets the channels between a block's two convolutions, the only ones structured pruning removes
(docs/compression.md); ``None`` keeps each block's output width, the unpruned network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

TemporalFactory = Callable[[], nn.Module] | None


def check_inner_widths(widths: Sequence[int] | None, blocks: int) -> list[int | None]:
    """One inner width per block, each a positive int; ``None`` means every block unpruned."""
    if widths is None:
        return [None] * blocks
    widths = list(widths)
    if len(widths) != blocks or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ValueError(f"inner_widths: expected {blocks} positive ints (one per block), got {widths}")
    return widths


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, temporal: TemporalFactory, inner: int | None = None) -> None:
        super().__init__()
        inner = cout if inner is None else inner
        self.temporal = temporal() if temporal else nn.Identity()
        # MSTSM's concatenated two-unit shift widens the branch input; plain TSM keeps it
        self.conv1 = conv_bn(self.temporal.out_channels(cin) if temporal else cin, inner, 3, stride)
        self.conv2 = conv_bn(inner, cout, 3, 1, relu=False)
        self.downsample = conv_bn(cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(self.temporal(x))) + identity)


class ResNet(nn.Module):
    """Returns pooled features (N, out_features) for (N, 3, H, W) frames."""

    def __init__(self, layers: tuple[int, ...] = (2, 2, 2, 2), width: int = 64,
                 temporal: TemporalFactory = None, inner_widths: Sequence[int] | None = None) -> None:
        super().__init__()
        inner = iter(check_inner_widths(inner_widths, sum(layers)))
        self.stem = nn.Sequential(conv_bn(3, width, 7, 2), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], width
        for i, n in enumerate(layers):
            cout = width * 2**i
            blocks = [BasicBlock(cin if j == 0 else cout, cout, 2 if (i > 0 and j == 0) else 1, temporal,
                                 next(inner)) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each residual branch: blocks start as identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.conv2[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)


def resnet18(width: int = 64, temporal: TemporalFactory = None,
             inner_widths: Sequence[int] | None = None) -> ResNet:
    return ResNet((2, 2, 2, 2), width, temporal, inner_widths)
