"""3D convolution building blocks of the asymmetric 3D-CNN paper (asymmetric-3d-cnn-micronets.txt).

Kernel sizes are written (T, H, W), PyTorch's Conv3d order for a (B, C, T, H, W) volume, and also the
paper's: Sec. 3.1 defines F in R^{N x C x T x H x W}, and its Eq. 3-5 make "1x3x1" the height filter,
"1x1x3" the width filter and "3x1x1" the temporal one. Every conv has stride 1 and "same" padding, and
is followed by a ReLU, as in C3D and Sec. 3.3.

- ``conv_relu``: the traditional 3x3x3 layer.
- ``asymmetric``: Sec. 3.1's cascade 1xkx1 -> 1x1xk -> 3x1x1. k=3 replaces one 3x3x3 layer; k=5 replaces a
  group of two (Fig. 2b) - the receptive field is kept (3x3x3, resp. 3x5x5) at C(2k+3)N rather than
  C*27*N (resp. 2*C*27*N) weights.
- ``MicroNet``: Sec. 3.2's Inception-like local network (M1-M4); its widths are in docs/models.md.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Kernel = tuple[int, int, int]


def conv_relu(cin: int, cout: int, kernel: Kernel = (3, 3, 3)) -> nn.Sequential:
    """Conv3d (stride 1, padding that keeps T, H, W) + ReLU; no BatchNorm, as in C3D and the paper."""
    conv = nn.Conv3d(cin, cout, kernel, padding=tuple(k // 2 for k in kernel))
    return nn.Sequential(conv, nn.ReLU(inplace=True))


def asymmetric(cin: int, cout: int, k: int = 3, inner: tuple[int, int] | None = None) -> nn.Sequential:
    """Sec. 3.1: three one-directional convs, height (1xkx1), width (1x1xk), time (3x1x1), each with the
    replaced layer's output channels (D = M = N in the paper's count) and each followed by a ReLU.
    ``inner``: the first two convs' widths when structured pruning made them narrower."""
    d, m = inner or (cout, cout)
    return nn.Sequential(conv_relu(cin, d, (1, k, 1)), conv_relu(d, m, (1, 1, k)), conv_relu(m, cout, (3, 1, 1)))


def _w(channels: float) -> int:
    return max(1, round(channels))


class MicroNet(nn.Module):
    """Sec. 3.2, Fig. 3 (the figure is not in the text; the structure and widths are ours, docs/models.md).

    Inception-like columns concatenated along channels, each led by a 1x1x1 "3D linear" layer:
    - 1x1x1 column: cout/4;
    - middle column: 1x1x1 to 3cout/8, then 3x3x3 to cout/2 (M3, M4: the 1x3x1, 1x1x3, 3x1x1 cascade);
    - left column: 1x1x1 to cout/16, then two 3x3x3 to cout/8 (M2, M4: the 1x5x1, 1x1x5, 3x1x1 cascade);
    - pooling column: 3x3x3 max pool (stride 1), 1x1x1 to cout/8.
    At cout=256 these are Inception-3a's widths (64; 96->128; 16->32; 32) and the concatenation has cout
    channels; with them b5-M1..M4 reproduce Table 3's parameter counts. ``width(default)`` gives the widths
    inside the columns that structured pruning may narrow, in build order: the middle 1x1x1, the middle
    cascade's first two convs (M3, M4), the left 1x1x1, then the left column's first 3x3x3 (M1, M3) or its
    cascade's first two convs (M2, M4). The concatenated outputs keep their widths.
    """

    VARIANTS = {"m1": (False, False), "m2": (True, False), "m3": (False, True), "m4": (True, True)}

    def __init__(self, cin: int, cout: int, variant: str = "m1", width: Callable[[int], int] = int) -> None:
        super().__init__()
        left_asym, mid_asym = self.VARIANTS[variant]
        ratios = (1 / 4, 3 / 8, 1 / 2, 1 / 16, 1 / 8, 1 / 8)
        one, mid_in, mid, left_in, left, pool = (_w(cout * r) for r in ratios)
        self.linear = conv_relu(cin, one, (1, 1, 1))
        mid_in = width(mid_in)
        self.middle = nn.Sequential(conv_relu(cin, mid_in, (1, 1, 1)),
                                    asymmetric(mid_in, mid, 3, (width(mid), width(mid))) if mid_asym
                                    else conv_relu(mid_in, mid))
        left_in = width(left_in)
        if left_asym:
            column: nn.Module = asymmetric(left_in, left, 5, (width(left), width(left)))
        else:
            first = width(left)
            column = nn.Sequential(conv_relu(left_in, first), conv_relu(first, left))
        self.left = nn.Sequential(conv_relu(cin, left_in, (1, 1, 1)), column)
        self.pool = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), conv_relu(cin, pool, (1, 1, 1)))
        self.out_channels = one + mid + left + pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.linear(x), self.middle(x), self.left(x), self.pool(x)], dim=1)


def layer(kind: str, cin: int, cout: int, width: Callable[[int], int] = int) -> tuple[nn.Module, int]:
    """One entry of a network spec -> (module, its output channels). ``kind``: "conv" (3x3x3), "asym3"
    (cascade for one 3x3x3), "asym5" (cascade for a pair of 3x3x3), or a MicroNet variant "m1".."m4".
    ``width(default)`` gives each prunable conv's output width in build order (structured pruning's
    ``inner_widths``; a MicroNet's concatenated output is not prunable, its columns' inner convs are)."""
    if kind == "conv":
        cout = width(cout)
        return conv_relu(cin, cout), cout
    if kind in ("asym3", "asym5"):
        inner = (width(cout), width(cout))
        cout = width(cout)
        return asymmetric(cin, cout, int(kind[-1]), inner), cout
    if kind in MicroNet.VARIANTS:
        net = MicroNet(cin, cout, kind, width)
        return net, net.out_channels
    raise ValueError(f"unknown 3D layer kind {kind!r}")


def max_pool(kernel: Kernel, padding: Kernel,
             extent: tuple[int, ...]) -> tuple[nn.MaxPool3d, tuple[int, ...]]:
    """A (T, H, W) max pool with stride = kernel, and the extent it leaves. A dimension already too small for
    the window (a clip shorter than 16 frames reaches T=1 before pool5) is left unpooled there."""
    k, p = list(kernel), list(padding)
    for d, n in enumerate(extent):
        if n + 2 * p[d] < k[d]:
            k[d], p[d] = 1, 0
    out = tuple((n + 2 * p[d] - k[d]) // k[d] + 1 for d, n in enumerate(extent))
    return nn.MaxPool3d(tuple(k), stride=tuple(k), padding=tuple(p)), out
