"""Frame index samplers.

TSN segments (Wang et al.): split the video into equal segments, one frame each, at a random offset in
training and at the segment centre at test. The centre rule is ``edge.window.uniform_indices``: the runtime
samples its sliding window with the very same function. T-C3D clips: several runs of consecutive frames,
one per equal part of the video.
"""

from __future__ import annotations

import numpy as np

from edge.window import uniform_indices


def tsn_indices(num_frames: int, num_segments: int, train: bool,
                rng: np.random.Generator | None = None) -> np.ndarray:
    if num_frames < 1:
        raise ValueError("tsn_indices: video has no frames")
    if not train:
        return uniform_indices(num_frames, num_segments)
    rng = rng or np.random.default_rng()
    edges = np.linspace(0, num_frames, num_segments + 1)
    # a segment shorter than a frame (more segments than frames) has start == end: its start frame
    starts, ends = np.floor(edges[:-1]), np.floor(edges[1:])
    # u < 1, yet start + u * (end - start) can round up to end: the last segment would read past the video
    return np.minimum((starts + rng.uniform(0, 1, num_segments) * (ends - starts)).astype(np.int64),
                      num_frames - 1)


def clip_indices(num_frames: int, clip_len: int, num_clips: int, train: bool,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """(num_clips, clip_len) indices of consecutive frames; short videos repeat their last frame."""
    rng = rng or np.random.default_rng()
    part = num_frames / num_clips
    out = np.empty((num_clips, clip_len), np.int64)
    for k in range(num_clips):
        lo, room = k * part, max(part - clip_len, 0.0)
        start = lo + (rng.uniform(0, room) if train else room / 2)
        out[k] = np.minimum(int(start) + np.arange(clip_len), num_frames - 1)
    return out
