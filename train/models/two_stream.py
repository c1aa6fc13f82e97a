"""Two frozen streams and the fusion of their scores (dual-action-stream-distillation.txt, Sec. 3.4).

``forward(rgb, flow)`` runs an RGB stream (e.g. the Dual-action Stream student) on the RGB clip and a flow
stream on the flow clip, turns each one's logits into class scores (softmax), and returns the log of the fused
scores ``sum_s w_s p_s``: log-probabilities, so softmax (the runtime's) gives the fused scores back exactly and
cross-entropy on them is the fused model's negative log-likelihood.

The weights ``w`` are:

- ``attention`` (the paper's module, Fig. 2): the two score vectors concatenated -> linear -> ReLU -> linear
  to two outputs -> softmax over the streams. The paper says "a twin-layer linear model"; the ReLU between the
  two layers and the hidden width (the number of classes by default) are ours - without a nonlinearity the
  two layers would be one linear map;
- ``average``: fixed, ``weights`` normalised to sum to one (two-stream works' 1 : 1.5 RGB : flow; 1 : 1 is the
  plain average).

The streams stay frozen: their parameters take no gradient and ``train()`` leaves them in eval mode, so their
BatchNorm statistics are the trained ones; only the fusion module learns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

FUSIONS = ("attention", "average")


class AttentionFusion(nn.Module):
    """(scores_a, scores_b) -> (B, 2) stream weights that sum to one."""

    def __init__(self, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2 * num_classes, hidden)
        self.fc2 = nn.Linear(hidden, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.fc2(torch.relu(self.fc1(torch.cat([a, b], dim=1)))), dim=1)


class TwoStream(nn.Module):
    def __init__(self, rgb: nn.Module, flow: nn.Module, num_classes: int, fusion: str = "attention",
                 weights: Sequence[float] = (1.0, 1.5), hidden: int | None = None) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion: expected one of {', '.join(FUSIONS)}, got {fusion!r}")
        if len(weights) != 2 or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"fusion weights: expected two non-negative numbers, not both 0, got {list(weights)}")
        self.streams = nn.ModuleList([rgb, flow])
        for p in self.streams.parameters():
            p.requires_grad_(False)
        self.num_segments = getattr(rgb, "num_segments", None)
        self.attention = AttentionFusion(num_classes, hidden or num_classes) if fusion == "attention" else None
        self.register_buffer("fixed", torch.tensor(weights, dtype=torch.float32) / float(sum(weights)))
        self.streams.eval()

    def train(self, mode: bool = True) -> TwoStream:
        super().train(mode)
        self.streams.eval()  # frozen: BatchNorm keeps the streams' trained statistics
        return self

    def stream_weights(self, rgb: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2) weights and (B, 2, K) scores (softmax) of the streams."""
        p = torch.stack([torch.softmax(s(x), dim=1) for s, x in zip(self.streams, (rgb, flow), strict=True)], dim=1)
        if self.attention is None:
            return self.fixed.expand(p.shape[0], 2), p
        return self.attention(p[:, 0], p[:, 1]), p

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        w, p = self.stream_weights(rgb, flow)
        # a score under 1e-30 is 0 to float32 anyway; the floor keeps the log finite (plain ops: no LogSumExp,
        # which ONNX shape tools such as onnx-tool cannot profile)
        return torch.log((w.unsqueeze(2) * p).sum(dim=1).clamp_min(1e-30))


def two_stream(*, num_classes: int, streams: Sequence[Mapping[str, Any]], fusion: str = "attention",
               weights: Sequence[float] = (1.0, 1.5), hidden: int | None = None,
               num_segments: int | None = None) -> TwoStream:
    """The registered ``two_stream``: ``streams`` are the RGB and the flow stream's ``{"model", "config"}`` (their
    checkpoints' ``model`` and ``config``; ``edge train --fusion --streams RGB.pt FLOW.pt`` fills them in).
    ``num_segments`` (what the training code passes) must be the streams' clip length."""
    from train.models.registry import build_model  # the registry registers this factory

    if len(streams) != 2:
        raise ValueError(f"two_stream: expected two streams (RGB, flow), got {len(streams)}")
    rgb, flow = (build_model(s["model"], **s["config"]) for s in streams)
    if num_segments is not None and num_segments != getattr(rgb, "num_segments", num_segments):
        raise ValueError(f"num_segments={num_segments} does not match the streams' {rgb.num_segments}-frame clips")
    return TwoStream(rgb, flow, num_classes, fusion, weights, hidden)
