"""T-C3D: temporal encoding of S clips with one shared 3D CNN (t-c3d-temporal-encoding-deep-compression.txt).

Sec. III-B, Eq. 1: ``Y_v = H(Q(F(C_1; W), ..., F(C_S; W)))`` - the same network F (weights W) on each of the
S clips, a fusion function Q over the clips, then the score function H (softmax). F's output is, "by
default, the last fully-connected layer" (Sec. III-B), i.e. per-clip class scores, and the authors' Caffe
prototxt fuses exactly those (``fc_action`` -> consensus pooling over the 3 clips -> softmax loss). So here
Q acts on the (B, S, num_classes) clip scores and the model returns the consensus G as video-level logits;
Eq. 2, the video-level loss, is then plain cross-entropy on them (the softmax H lives in the loss).

Input contract: (B, S*L, C, H, W), the S clips of L frames concatenated along time in clip order.

Fusion functions Q (Sec. III-E), all over the clip axis:

- ``avg``: G = 1/S sum_s F_s.  ``max``: G_n = max_s F_{s,n}, elementwise.
- ``weighted``: "a convolutional layer with the kernel of S x 1" over the (S, num_classes) score map: one
  learnable weight per clip shared by every class, G = sum_s w_s F_s; initialised to w_s = 1/S (= ``avg``).
  No bias: a constant added to every class score cancels in the softmax.
- ``attention``: Eq. 5, the memory-network addressing of [35] with a learnable kernel q (num_classes values):

      e_s = q^T F_s,      w_s = exp(q^T F_s) / sum_{j=1..S} exp(q^T F_j),      G = sum_s w_s F_s

  (Eq. 5 gives the weights; the read-out G = sum_s w_s F_s is the memory read the paper borrows).
  q starts at 0, so attention starts as ``avg``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from train.models.res3d import Res3D, res3d18


class AveragePooling(nn.Module):
    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.mean(dim=1)


class MaxPooling(nn.Module):
    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.amax(dim=1)


class WeightedPooling(nn.Module):
    """Sec. III-E: an S x 1 convolution over the (1, S, num_classes) clip-score map."""

    def __init__(self, num_clips: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, (num_clips, 1), bias=False)
        nn.init.constant_(self.conv.weight, 1.0 / num_clips)

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return self.conv(scores.unsqueeze(1)).flatten(1)  # (B, 1, S, N) -> (B, 1, 1, N) -> (B, N)


class AttentionPooling(nn.Module):
    """Sec. III-E, Eq. 5: w_s = exp(q^T F_s) / sum_j exp(q^T F_j); G = sum_s w_s F_s."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.q = nn.Parameter(torch.zeros(num_features))

    def weights(self, scores: torch.Tensor) -> torch.Tensor:
        """(B, S, N) clip scores -> (B, S) attention weights, summing to 1 over the clips."""
        return torch.softmax(scores @ self.q, dim=1)

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return (self.weights(scores).unsqueeze(-1) * scores).sum(dim=1)


# name -> builder(num_clips, num_classes)
AGGREGATIONS: dict[str, Callable[[int, int], nn.Module]] = {
    "avg": lambda s, n: AveragePooling(),
    "max": lambda s, n: MaxPooling(),
    "weighted": lambda s, n: WeightedPooling(s),
    "attention": lambda s, n: AttentionPooling(n),
}


class TC3D(nn.Module):
    """S clips through one shared ``Res3D`` (``backbone``, a plain ``res3d18``: a res3d18 checkpoint loads into
    it), fused by ``aggregate``. ``clip_logits`` gives the per-clip scores; ``forward`` fuses them, so an
    evaluation wanting both calls ``clip_logits`` once and then ``aggregate`` on its result."""

    def __init__(self, backbone: Res3D, num_clips: int, clip_len: int, aggregate: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_clips, self.clip_len = num_clips, clip_len
        self.num_segments = num_clips * clip_len
        self.aggregate = aggregate

    def clip_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S*L, C, H, W) -> (B, S, num_classes): each clip's own scores, the clips in input order."""
        t = x.shape[1]
        if not torch.jit.is_tracing() and t != self.num_segments:
            raise ValueError(f"expected {self.num_segments} frames ({self.num_clips} clips of {self.clip_len}), "
                             f"got {t}")
        logits = self.score_clips(x.reshape(-1, self.clip_len, *x.shape[2:]))  # clip-major: (B*S, L, C, H, W)
        return logits.reshape(-1, self.num_clips, logits.shape[-1])

    def score_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, L, C, H, W), any number of clips -> (N, num_classes): the shared network's scores of each (the
        all-clips test averages them)."""
        return self.backbone(clips)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aggregate(self.clip_logits(x))


def tc3d_res3d18(*, num_classes: int, num_clips: int = 3, clip_len: int = 8, width: float = 64,
                 dropout: float = 0.0, aggregation: str = "avg", num_segments: int | None = None,
                 inner_widths: Sequence[int] | None = None, in_channels: int = 3) -> TC3D:
    """The registered ``tc3d_res3d18``; defaults are the paper's: S = 3 clips of L = 8 frames (Sec. III-C), average
    fusion (Sec. V-C). ``num_segments`` (what the training code passes) is accepted only if it equals S * L."""
    if num_segments is not None and num_segments != num_clips * clip_len:
        raise ValueError(f"num_segments={num_segments} does not match num_clips * clip_len = "
                         f"{num_clips} * {clip_len} = {num_clips * clip_len}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation: expected one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    # the backbone first: one seed gives the same backbone whatever the aggregation
    net = res3d18(num_classes=num_classes, num_segments=clip_len, width=width, dropout=dropout,
                  inner_widths=inner_widths, in_channels=in_channels)
    return TC3D(net, num_clips, clip_len, AGGREGATIONS[aggregation](num_clips, num_classes))
