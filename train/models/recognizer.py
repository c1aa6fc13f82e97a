"""Segment-based recognizer (TSN / TSM): a 2D backbone on each sampled frame, averaged class scores.

Input is always (batch, time, channels, height, width), the contract every stage shares. With no temporal
module this is TSN (Wang et al.): order-blind frame averaging. With TemporalShift inside the backbone it is
TSM: the same FLOPs, but features mix across neighbouring frames so the order of events is visible.
"""

from __future__ import annotations

import torch
from torch import nn


class SegmentRecognizer(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int, num_segments: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_segments = num_segments
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(backbone.out_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if not torch.jit.is_tracing() and t != self.num_segments:
            raise ValueError(f"expected {self.num_segments} frames per clip, got {t}")
        return self.frame_logits(x).mean(dim=1)

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, time, classes): each frame's scores before the average (an online model's per-frame output)."""
        b, t = x.shape[0], x.shape[1]
        feats = self.backbone(x.reshape(b * t, *x.shape[2:]))
        return self.fc(self.dropout(feats)).reshape(b, t, -1)
