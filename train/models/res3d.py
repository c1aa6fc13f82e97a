"""The 3D ResNet-18 that T-C3D runs on every clip (t-c3d-temporal-encoding-deep-compression.txt, Sec. III-D).

Sec. III-D: "seventeen 3D convolutional layers and one fully-connected layer", following [12] - Tran et al.'s
Res3D-18 ("ConvNet Architecture Search for Spatiotemporal Feature Learning"), whose 8x112x112 input T-C3D
keeps (Sec. V-B). The seventeen convs are the stem and the sixteen 3x3x3 convs of eight basic blocks:

- stem: 3x7x7 conv (stride 1x2x2, padding 1x3x3), BN, ReLU, *no* max pool (Res3D's stem, also the one in the
  authors' Caffe prototxt; Hara et al.'s 3D ResNet-18 instead uses a 7x7x7 conv and a 3x3x3 max pool);
- four stages of two ``BasicBlock3d`` at 64, 128, 256, 512 channels; the first block of stages 2-4 strides
  2x2x2 (time too), so 8x112x112 -> 8x56x56 -> 8x56x56 -> 4x28x28 -> 2x14x14 -> 1x7x7;
- global average pool, dropout (the paper's 0.8 on UCF101 is a training choice, default 0), FC.

Channels scale with ``width / 64``. Because the pool is global the FC input does not depend on the frame side,
so the factory takes no ``size``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from train.models.resnet import check_inner_widths

STAGE_CHANNELS = (64, 128, 256, 512)  # at width 64
BLOCKS_RES3D18 = (2, 2, 2, 2)

Triple = tuple[int, int, int]


def conv_bn3d(cin: int, cout: int, kernel: Triple, stride: Triple = (1, 1, 1), relu: bool = True) -> nn.Sequential:
    """Conv3d (no bias: BN follows) + BatchNorm3d (+ ReLU); padding keeps T, H, W at stride 1."""
    conv = nn.Conv3d(cin, cout, kernel, stride, tuple(k // 2 for k in kernel), bias=False)
    layers: list[nn.Module] = [conv, nn.BatchNorm3d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock3d(nn.Module):
    """Two 3x3x3 conv-BN (ReLU after the first, after the sum for the second) around an identity shortcut, or
    a 1x1x1 strided conv-BN projection where the stride or the channel count changes (He et al.'s option B)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, inner: int | None = None) -> None:
        super().__init__()
        s, inner = (stride,) * 3, inner or cout  # ``inner``: conv1's outputs, narrower after structured pruning
        self.conv1 = conv_bn3d(cin, inner, (3, 3, 3), s)
        self.conv2 = conv_bn3d(inner, cout, (3, 3, 3), relu=False)
        self.downsample = conv_bn3d(cin, cout, (1, 1, 1), s, relu=False) if stride != 1 or cin != cout else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class Res3D(nn.Module):
    """3D ResNet classifier on one clip: (B, T, C, H, W) -> (B, num_classes); convolves (B, C, T, H, W), C = ``in_channels``.

    ``features`` gives the pooled (B, out_features) clip descriptor before dropout and FC."""

    def __init__(self, blocks: tuple[int, ...] = BLOCKS_RES3D18, *, num_classes: int, num_segments: int = 8,
                 width: float = 64, dropout: float = 0.0, inner_widths: Sequence[int] | None = None,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.num_segments = num_segments
        channels = [max(1, round(c * width / 64)) for c in STAGE_CHANNELS]
        inner = iter(check_inner_widths(inner_widths, sum(blocks)))
        self.stem = conv_bn3d(in_channels, channels[0], (3, 7, 7), (1, 2, 2))
        stages, cin = [], channels[0]
        for i, (n, cout) in enumerate(zip(blocks, channels, strict=True)):
            stages.append(nn.Sequential(*(BasicBlock3d(cin if j == 0 else cout, cout, 2 if i > 0 and j == 0 else 1,
                                                       next(inner)) for j in range(n))))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.out_features = cin
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():  # MSRA fan-out init, as the authors' prototxt; BN starts at (1, 0)
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and x.shape[1] != self.num_segments:
            raise ValueError(f"expected {self.num_segments} frames per clip, got {x.shape[1]}")
        return self.pool(self.stages(self.stem(x.permute(0, 2, 1, 3, 4)))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


def res3d18(*, num_classes: int, num_segments: int = 8, width: float = 64, dropout: float = 0.0,
            inner_widths: Sequence[int] | None = None, in_channels: int = 3) -> Res3D:
    """The registered ``res3d18``: defaults are the paper's geometry (8-frame clips, 64 stage-1 channels);
    ``in_channels`` 2 makes it a flow stream (MARS's and the Dual-action Stream paper's motion stream)."""
    return Res3D(BLOCKS_RES3D18, num_classes=num_classes, num_segments=num_segments, width=width, dropout=dropout,
                 inner_widths=inner_widths, in_channels=in_channels)
