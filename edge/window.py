"""Sliding clip window for streams, test-time frame sampling, and score smoothing.

The window keeps the last ``window_frames`` preprocessed frames and, every ``stride_frames`` frames once
full, hands the model ``num_segments`` of them picked by ``eval_indices``: the rule training uses at test
time (TSN segment centres, or T-C3D's centred clips), so a stream is sampled the way the test split was.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from edge.bundle import ClipSpec, FlowInput
from edge.motion import FrameFeed


def uniform_indices(num_frames: int, num_segments: int) -> np.ndarray:
    """Centre frame of each of ``num_segments`` equal segments of ``num_frames`` frames."""
    seg = num_frames / num_segments
    return np.minimum((seg / 2 + seg * np.arange(num_segments)).astype(np.int64), num_frames - 1)


def fit_clip_step(part: float, clip_len: int, step: int) -> int:
    """The frame step of a clip, shrunk (down to 1) until ``clip_len`` frames that far apart fit in a part of
    ``part`` frames: a UCF101 video's thirds (~60 frames) hold T-C3D's 8 frames at offset 2, the thirds of
    a 32-frame synthetic video do not, and a clip running past its part would repeat the video's last frame."""
    return max(1, min(step, int(part // clip_len)))


def clip_indices(num_frames: int, num_clips: int, clip_len: int, step: int = 1,
                 offsets: np.ndarray | None = None) -> np.ndarray:
    """(num_clips, clip_len) frame indices: T-C3D's second sampling scheme (Sec. III-C). The video is cut into
    ``num_clips`` equal parts of M frames; frame i of a part's clip is ``start + i * o`` with ``start`` in
    ``[0, M - k * o]`` of the part (k = ``clip_len``, o = ``step`` after ``fit_clip_step``). ``offsets``:
    each clip's start as a fraction of that room (training draws them in [0, 1)); None centres every clip
    (test time and the runtime). A video shorter than its clips repeats its last frame."""
    part = num_frames / num_clips
    o = fit_clip_step(part, clip_len, step)
    room = max(part - clip_len * o, 0.0)
    u = np.full(num_clips, 0.5) if offsets is None else np.asarray(offsets, dtype=np.float64)
    starts = (np.arange(num_clips) * part + u * room).astype(np.int64)
    return np.minimum(starts[:, None] + o * np.arange(clip_len), num_frames - 1)


def eval_indices(spec: ClipSpec, num_frames: int) -> np.ndarray:
    """The ``spec.num_segments`` frames (in input order) a model sees of ``num_frames`` at test time."""
    if spec.sampling == "clips":
        return clip_indices(num_frames, spec.num_clips, spec.clip_len, spec.clip_step).reshape(-1)
    return uniform_indices(num_frames, spec.num_segments)


class SlidingWindow:
    def __init__(self, spec: ClipSpec) -> None:
        self.spec = spec
        self.frames: deque[np.ndarray] = deque(maxlen=spec.window_frames)
        # frames since the last decision, started so that the first decision comes once the window is full
        self._since = spec.stride_frames - spec.window_frames
        self._pick = eval_indices(spec, spec.window_frames)

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


class FlowWindow:
    """A two-stream bundle's flow clip, beside its RGB ``SlidingWindow`` (same ``spec``): ``push`` every
    frame (RGB at any size), ``clip`` when the RGB window decides. Flow field t runs from frame t to t+1, so
    the newest frame has none yet and takes the last one, as training pairs a clip's last frame
    (``train.data.PairedClips``): of the window's frames i, field ``min(i + 1, W - 1)`` of the last W fields
    (one fewer at the first decision, hence the offset from the end)."""

    def __init__(self, spec: ClipSpec, flow: FlowInput) -> None:
        self.preprocess = flow.preprocess
        self.stream = FrameFeed(flow.motion, flow.preprocess.resize)
        self.window = spec.window_frames
        self.fields: deque[np.ndarray] = deque(maxlen=spec.window_frames)
        self._pick = eval_indices(spec, spec.window_frames)

    def push(self, rgb: np.ndarray) -> None:
        for image in self.stream(rgb):
            self.fields.append(self.preprocess.frame(image))

    def clip(self) -> np.ndarray:
        if not self.fields:
            raise RuntimeError("FlowWindow.clip: no flow field yet (one needs two frames)")
        n = len(self.fields)
        return np.stack([self.fields[n + min(int(i) + 1 - self.window, -1)] for i in self._pick])[None]


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
