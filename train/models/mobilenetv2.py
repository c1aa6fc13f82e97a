"""MobileNetV2-style 2D backbone (Sandler et al., 2018), written here (no torchvision).

``width_mult`` scales channels. ``temporal`` goes at the start of the residual branch of every inverted
residual block that has a skip connection, as in the TSM online (MobileNetV2) model. ``inner_widths``
(one per block) sets each block's expanded (hidden) width, what structured pruning removes; a block without
an expansion conv has none of its own (its depthwise conv runs on the block input), so its entry must equal
its input width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from train.models.resnet import TemporalFactory, check_inner_widths

# (expansion t, channels c, repeats n, first stride s), from the paper's Table 2.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1))


def _divisible(v: float, d: int = 8) -> int:
    return max(d, int(v + d / 2) // d * d)


def conv_bn_relu6(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, temporal: TemporalFactory,
                 hidden: int | None = None) -> None:
        super().__init__()
        hidden = cin * expand if hidden is None else hidden
        if expand == 1 and hidden != cin:
            raise ValueError(f"inner_widths: a block without expansion has {cin} inner channels, got {hidden}")
        self.use_res = stride == 1 and cin == cout
        self.temporal = temporal() if (temporal and self.use_res) else nn.Identity()
        c_branch = self.temporal.out_channels(cin) if self.use_res and temporal else cin  # MSTSM widens it
        layers: list[nn.Module] = [conv_bn_relu6(c_branch, hidden, 1)] if expand != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.temporal(x))
        return x + out if self.use_res else out


class MobileNetV2(nn.Module):
    """Returns pooled features (N, out_features) for (N, in_channels, H, W) frames."""

    def __init__(self, width_mult: float = 1.0, temporal: TemporalFactory = None,
                 inner_widths: Sequence[int] | None = None, in_channels: int = 3) -> None:
        super().__init__()
        inner = iter(check_inner_widths(inner_widths, sum(n for _, _, n, _ in SETTINGS)))
        cin = _divisible(32 * width_mult)
        layers: list[nn.Module] = [conv_bn_relu6(in_channels, cin, 3, 2)]
        for t, c, n, s in SETTINGS:
            cout = _divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t, temporal, next(inner)))
                cin = cout
        self.out_features = _divisible(1280 * max(1.0, width_mult))
        layers.append(conv_bn_relu6(cin, self.out_features, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)
