"""Frame index samplers.

TSN segments (Wang et al.): split the video into equal segments, one frame each, at a random offset in
training and at the segment centre at test. The centre rule is ``edge.window.uniform_indices``: the runtime
samples its sliding window with the very same function. Clips (3D CNNs, T-C3D): runs of frames a step
apart, one per equal part of the video, at a random start in training and centred at test
(``edge.window.clip_indices``, which the runtime uses too). ``frame_indices`` picks by a ``ClipSpec``.
"""

from __future__ import annotations

import numpy as np

from edge import window
from edge.bundle import ClipSpec


def tsn_indices(num_frames: int, num_segments: int, train: bool,
                rng: np.random.Generator | None = None) -> np.ndarray:
    if num_frames < 1:
        raise ValueError("tsn_indices: video has no frames")
    if not train:
        return window.uniform_indices(num_frames, num_segments)
    rng = rng or np.random.default_rng()
    edges = np.linspace(0, num_frames, num_segments + 1)
    # a segment shorter than a frame (more segments than frames) has start == end: its start frame
    starts, ends = np.floor(edges[:-1]), np.floor(edges[1:])
    # u < 1, yet start + u * (end - start) can round up to end: the last segment would read past the video
    return np.minimum((starts + rng.uniform(0, 1, num_segments) * (ends - starts)).astype(np.int64),
                      num_frames - 1)


def clip_indices(num_frames: int, clip_len: int, num_clips: int, train: bool,
                 rng: np.random.Generator | None = None, step: int = 1) -> np.ndarray:
    """(num_clips, clip_len) indices of runs of frames ``step`` apart (T-C3D, Sec. III-C): in training each
    clip starts at a random place of its part where it fits, at test in the middle of that room."""
    if num_frames < 1:
        raise ValueError("clip_indices: video has no frames")
    offsets = (rng or np.random.default_rng()).uniform(0, 1, num_clips) if train else None
    return window.clip_indices(num_frames, num_clips, clip_len, step, offsets)


def frame_indices(spec: ClipSpec, num_frames: int, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
    """The ``spec.num_segments`` frames of a video, in model-input order, that one sample shows the model."""
    if not train:
        if num_frames < 1:
            raise ValueError("frame_indices: video has no frames")
        return window.eval_indices(spec, num_frames)
    if spec.sampling == "clips":
        return clip_indices(num_frames, spec.clip_len, spec.num_clips, True, rng, spec.clip_step).reshape(-1)
    return tsn_indices(num_frames, spec.num_segments, True, rng)


def all_clip_indices(num_frames: int, spec: ClipSpec) -> np.ndarray:
    """(N, clip_len) indices: every clip of a video, back to back and centred as a block, at the frame step the
    S-clip sampling uses on it: T-C3D's "all clips per video" test (Table IV), against its S clips."""
    if num_frames < 1:
        raise ValueError("all_clip_indices: video has no frames")
    k = spec.clip_len
    o = window.fit_clip_step(num_frames / spec.num_clips, k, spec.clip_step)
    n = max(1, num_frames // (k * o))
    first = max((num_frames - n * k * o) // 2, 0)
    starts = first + k * o * np.arange(n)
    return np.minimum(starts[:, None] + o * np.arange(k), num_frames - 1)
