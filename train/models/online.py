"""The per-frame model of a causal TSM/MSTSM recognizer (the TSM paper's online model, Sec. 4).

``OnlineStep(model)`` takes one frame and one buffer per shift point, and returns the frame's class scores
and the updated buffers: the state lives in its inputs and outputs, never in the graph, so the exported
ONNX model is pure and the runtime owns the buffers (one set per stream). Fed a clip frame by frame from
zero buffers, it gives exactly the clip model's per-frame scores (``SegmentRecognizer.frame_logits``).
"""

from __future__ import annotations

import torch
from torch import nn

from train.models.recognizer import SegmentRecognizer
from train.models.temporal import CausalShift, TemporalShift


def causal_shifts(model: nn.Module) -> list[CausalShift]:
    return [m for m in model.modules() if isinstance(m, CausalShift)]


def is_online(model: nn.Module) -> bool:
    """Whether ``model`` has a per-frame form: a segment recognizer whose shifts are all causal."""
    return isinstance(model, SegmentRecognizer) and bool(causal_shifts(model)) and not any(
        isinstance(m, TemporalShift) and not isinstance(m, CausalShift) for m in model.modules())


class OnlineStep(nn.Module):
    def __init__(self, model: SegmentRecognizer) -> None:
        super().__init__()
        if not is_online(model):
            raise ValueError(f"{type(model).__name__}: no per-frame form (only *_online_* models have one)")
        self.model = model
        self.shifts = causal_shifts(model)

    def buffer_shapes(self, frame_shape: tuple[int, int, int]) -> list[tuple[int, int, int]]:
        """(channels, height, width) of each shift point's buffer for frames of ``frame_shape`` (C, H, W)."""
        shapes: list[tuple[int, int, int]] = []
        hooks = [s.register_forward_pre_hook(lambda mod, args: shapes.append(
            (mod.buffer_channels(args[0].shape[1]), *args[0].shape[2:]))) for s in self.shifts]
        try:
            with torch.no_grad():
                self.model.backbone(torch.zeros(self.model.num_segments, *frame_shape))
        finally:
            for h in hooks:
                h.remove()
        return shapes

    def forward(self, frame: torch.Tensor, *buffers: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``frame`` (N, C, H, W), ``buffers`` (N, *shape) in ``buffer_shapes`` order -> (logits, *buffers)."""
        if len(buffers) != len(self.shifts):
            raise ValueError(f"expected {len(self.shifts)} shift buffers, got {len(buffers)}")
        feed: dict[str, list[torch.Tensor]] = {"in": list(buffers), "out": []}
        for s in self.shifts:
            s.feed = feed
        try:
            logits = self.model.fc(self.model.dropout(self.model.backbone(frame)))
        finally:
            for s in self.shifts:
                s.feed = None
        return (logits, *feed["out"])

    def zero_buffers(self, frame_shape: tuple[int, int, int], batch: int = 1) -> list[torch.Tensor]:
        return [torch.zeros(batch, *s) for s in self.buffer_shapes(frame_shape)]
