import numpy as np
import pytest

from edge.bundle import ClipSpec
from edge.window import ScoreSmoother, SlidingWindow, softmax, uniform_indices


def test_uniform_indices_are_segment_centres():
    assert uniform_indices(32, 8).tolist() == [2, 6, 10, 14, 18, 22, 26, 30]
    assert uniform_indices(8, 8).tolist() == list(range(8))
    assert uniform_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]  # short windows repeat frames


def test_window_emits_first_when_full_then_every_stride():
    w = SlidingWindow(ClipSpec(num_segments=4, window_frames=8, stride_frames=3))
    emitted = [i for i in range(20) if w.push(np.full((3, 2, 2), i, np.float32)) is not None]
    assert emitted == [7, 10, 13, 16, 19]


def test_window_clip_holds_the_right_frames_in_order():
    w = SlidingWindow(ClipSpec(num_segments=4, window_frames=8, stride_frames=8))
    clips = [c for i in range(16) if (c := w.push(np.full((3, 2, 2), i, np.float32))) is not None]
    assert [c.shape for c in clips] == [(1, 4, 3, 2, 2)] * 2
    assert clips[0][0, :, 0, 0, 0].tolist() == [1, 3, 5, 7]
    assert clips[1][0, :, 0, 0, 0].tolist() == [9, 11, 13, 15]


def test_smoother_averages_last_k_and_softmax_normalises():
    s = ScoreSmoother(2)
    s(np.array([1.0, 0.0]))
    s(np.array([0.0, 1.0]))
    assert s(np.array([0.0, 1.0])).tolist() == [0.0, 1.0]
    p = softmax(np.array([1000.0, 1000.0, -1000.0]))
    assert p == pytest.approx([0.5, 0.5, 0.0])
