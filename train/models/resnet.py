"""ResNet-18/50-style 2D backbones (He et al., 2016), written here so nothing depends on torchvision.

``width`` is the stem's channels (64 is the real ResNet); stage i has ``width * 2**i`` planes, times the
block's ``expansion`` at its output (1 for ``BasicBlock``, 4 for ``Bottleneck``). ``temporal`` builds a module
placed at the start of each block's residual branch, which is where TSM's residual shift goes (and MSTSM's
widening reaches the branch's first conv). ``inner_widths`` sets the channels inside each block, the only ones
structured pruning removes by default (docs/compression.md, docs/models.md): a flat list with
``block.inner_groups`` entries per block, blocks in order - one per ``BasicBlock`` (conv1 -> conv2), two per
``Bottleneck`` (conv1 -> conv2, then conv2 -> conv3). ``None`` keeps every block unpruned. ``stream_widths``
sets the residual streams, the channels tied by the additions, which structured pruning removes only when
asked (``stream_ratio``): five entries, the stem's output and each stage's output (``None``: ``width`` and
``width * 2**i * expansion``). Where two neighbours are one stream (ResNet-18's stem and first stage, joined by
identity shortcuts) they are equal; were they not, the first block would get a projection shortcut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

TemporalFactory = Callable[[], nn.Module] | None


def _positive_ints(key: str, widths: Sequence[int], count: int, what: str) -> list[int]:
    widths = list(widths)
    if len(widths) != count or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ValueError(f"{key}: expected {count} positive ints ({what}), got {widths}")
    return widths


def check_inner_widths(widths: Sequence[int] | None, count: int, what: str = "one per block") -> list[int | None]:
    """``count`` inner widths, each a positive int; ``None`` means every block unpruned."""
    return [None] * count if widths is None else list(_positive_ints("inner_widths", widths, count, what))


def check_stream_widths(widths: Sequence[int] | None, default: Sequence[int]) -> list[int]:
    """Five positive ints (stem, stage 1..4 outputs), or ``default`` for ``None``."""
    return list(default) if widths is None else _positive_ints(
        "stream_widths", widths, len(default), "the stem's output, then each stage's")


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    """What both blocks share: the temporal module opening the residual branch (``_open``), the projection
    shortcut and final ReLU (``_close``), the forward. Subclasses build their convs between the two (that
    registration order keeps ResNet-18's parameter order) and name the branch's last BatchNorm, which starts
    at zero so every block starts as the identity. ``inner``: the block's ``inner_groups`` widths (``None``:
    ``planes``)."""

    expansion = 1
    inner_groups = 1
    inner_what = "one per block"

    def _open(self, cin: int, temporal: TemporalFactory) -> int:
        self.temporal = temporal() if temporal else nn.Identity()
        # MSTSM's concatenated two-unit shift widens the branch input; plain TSM keeps it
        return self.temporal.out_channels(cin) if temporal else cin

    def _close(self, cin: int, cout: int, stride: int) -> None:
        self.downsample = conv_bn(cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout else None
        self.relu = nn.ReLU(inplace=True)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def last_bn(self) -> nn.BatchNorm2d:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.residual(self.temporal(x)) + identity)


class BasicBlock(_Residual):
    """3x3 -> 3x3 (ResNet-18). Inner group: conv1's outputs."""

    def __init__(self, cin: int, planes: int, stride: int, temporal: TemporalFactory,
                 inner: Sequence[int | None] = (None,), cout: int | None = None) -> None:
        super().__init__()
        (w,) = (planes if v is None else v for v in inner)
        cout = cout or planes
        self.conv1 = conv_bn(self._open(cin, temporal), w, 3, stride)
        self.conv2 = conv_bn(w, cout, 3, 1, relu=False)
        self._close(cin, cout, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))

    def last_bn(self) -> nn.BatchNorm2d:
        return self.conv2[1]


class Bottleneck(_Residual):
    """1x1 -> 3x3 -> 1x1 with 4x the planes out (ResNet-50); the stride is on the 3x3, as in torchvision's
    ResNet (v1.5) that TSM builds on. Inner groups: conv1's outputs, conv2's outputs; conv3's outputs are the
    block's output, tied to the residual addition."""

    expansion = 4
    inner_groups = 2
    inner_what = "two per bottleneck: conv1's and conv2's outputs"

    def __init__(self, cin: int, planes: int, stride: int, temporal: TemporalFactory,
                 inner: Sequence[int | None] = (None, None), cout: int | None = None) -> None:
        super().__init__()
        w1, w2 = (planes if v is None else v for v in inner)
        cout = cout or planes * self.expansion
        self.conv1 = conv_bn(self._open(cin, temporal), w1, 1)
        self.conv2 = conv_bn(w1, w2, 3, stride)
        self.conv3 = conv_bn(w2, cout, 1, relu=False)
        self._close(cin, cout, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))

    def last_bn(self) -> nn.BatchNorm2d:
        return self.conv3[1]


class ResNet(nn.Module):
    """Returns pooled features (N, out_features) for (N, in_channels, H, W) frames (3: RGB; 2: a flow
    field's x and y, a flow stream)."""

    def __init__(self, layers: tuple[int, ...] = (2, 2, 2, 2), width: int = 64,
                 temporal: TemporalFactory = None, inner_widths: Sequence[int] | None = None,
                 block: type[_Residual] = BasicBlock, in_channels: int = 3,
                 stream_widths: Sequence[int] | None = None) -> None:
        super().__init__()
        g = block.inner_groups
        flat = check_inner_widths(inner_widths, sum(layers) * g, block.inner_what)
        inner = iter([flat[k:k + g] for k in range(0, len(flat), g)])
        self.stream_widths = check_stream_widths(
            stream_widths, [width] + [width * 2**i * block.expansion for i in range(len(layers))])
        self.stem = nn.Sequential(conv_bn(in_channels, self.stream_widths[0], 7, 2), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], self.stream_widths[0]
        for i, n in enumerate(layers):
            planes, cout = width * 2**i, self.stream_widths[i + 1]
            blocks = [block(cin if j == 0 else cout, planes, 2 if (i > 0 and j == 0) else 1, temporal, next(inner),
                            cout) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each residual branch: blocks start as identity
            if isinstance(m, _Residual):
                nn.init.zeros_(m.last_bn().weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)


def resnet18(width: int = 64, temporal: TemporalFactory = None, inner_widths: Sequence[int] | None = None,
             in_channels: int = 3, stream_widths: Sequence[int] | None = None) -> ResNet:
    return ResNet((2, 2, 2, 2), width, temporal, inner_widths, BasicBlock, in_channels, stream_widths)


def resnet50(width: int = 64, temporal: TemporalFactory = None, inner_widths: Sequence[int] | None = None,
             in_channels: int = 3, stream_widths: Sequence[int] | None = None) -> ResNet:
    """``inner_widths``: 32 entries, (conv1 out, conv2 out) of each of the 16 bottlenecks in order."""
    return ResNet((3, 4, 6, 3), width, temporal, inner_widths, Bottleneck, in_channels, stream_widths)
