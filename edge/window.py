"""Sliding clip window for streams, and score smoothing.

The window keeps the last ``window_frames`` preprocessed frames and, every ``stride_frames`` frames once
full, hands the model ``num_segments`` of them picked by ``uniform_indices``: the same rule training uses
at test time (TSN segment centres), so a stream is sampled the way the test split was.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from edge.bundle import ClipSpec


def uniform_indices(num_frames: int, num_segments: int) -> np.ndarray:
    """Centre frame of each of ``num_segments`` equal segments of ``num_frames`` frames."""
    seg = num_frames / num_segments
    return np.minimum((seg / 2 + seg * np.arange(num_segments)).astype(np.int64), num_frames - 1)


class SlidingWindow:
    def __init__(self, spec: ClipSpec) -> None:
        self.spec = spec
        self.frames: deque[np.ndarray] = deque(maxlen=spec.window_frames)
        # frames since the last decision, started so that the first decision comes once the window is full
        self._since = spec.stride_frames - spec.window_frames
        self._pick = uniform_indices(spec.window_frames, spec.num_segments)

    def push(self, frame: np.ndarray) -> np.ndarray | None:
        """Add one preprocessed (3, S, S) frame; return a (1, T, 3, S, S) clip when a decision is due."""
        self.frames.append(frame)
        self._since += 1
        if self._since < self.spec.stride_frames:
            return None
        self._since = 0
        return self._clip()

    def _clip(self) -> np.ndarray:
        return np.stack([self.frames[i] for i in self._pick])[None]


class ScoreSmoother:
    """Mean of the last ``k`` probability vectors: steadier labels on a live stream."""

    def __init__(self, k: int = 1) -> None:
        self.history: deque[np.ndarray] = deque(maxlen=max(1, k))

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        self.history.append(probs)
        return np.mean(self.history, axis=0)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max()
    e = np.exp(z)
    return e / e.sum()
