import numpy as np
import pytest

from edge.bundle import ClipSpec
from edge.window import ScoreSmoother, SlidingWindow, softmax, uniform_indices


def test_uniform_indices_are_segment_centres():
    assert uniform_indices(32, 8).tolist() == [2, 6, 10, 14, 18, 22, 26, 30]
    assert uniform_indices(8, 8).tolist() == list(range(8))
    assert uniform_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]  # short windows repeat frames


@pytest.mark.parametrize("n, k, expected", [
    (10, 4, [1, 3, 6, 8]),  # segments of 2.5 frames: centres 1.25, 3.75, 6.25, 8.75
    (7, 3, [1, 3, 5]),  # 2.33 frames: 1.17, 3.5, 5.83
    (5, 2, [1, 3]),  # 2.5 frames: 1.25, 3.75
    (1, 3, [0, 0, 0]),  # a one-frame video repeats it, never indexes past the end
    (2, 1, [1]),  # centre of two frames rounds down to index 1 (floor of 1.0)
])
def test_uniform_indices_when_segments_do_not_divide_the_frames(n, k, expected):
    assert uniform_indices(n, k).tolist() == expected


def test_window_emits_first_when_full_then_every_stride():
    w = SlidingWindow(ClipSpec(num_segments=4, window_frames=8, stride_frames=3))
    emitted = [i for i in range(20) if w.push(np.full((3, 2, 2), i, np.float32)) is not None]
    assert emitted == [7, 10, 13, 16, 19]


def test_window_with_stride_longer_than_the_window_skips_frames():
    w = SlidingWindow(ClipSpec(num_segments=2, window_frames=4, stride_frames=6))
    clips = {i: c for i in range(20) if (c := w.push(np.full((3, 1, 1), i, np.float32))) is not None}
    assert sorted(clips) == [3, 9, 15]
    assert clips[9][0, :, 0, 0, 0].tolist() == [7, 9]  # window 6..9, centres of 2-frame segments


def test_window_clip_holds_the_right_frames_in_order():
    w = SlidingWindow(ClipSpec(num_segments=4, window_frames=8, stride_frames=8))
    clips = [c for i in range(16) if (c := w.push(np.full((3, 2, 2), i, np.float32))) is not None]
    assert [c.shape for c in clips] == [(1, 4, 3, 2, 2)] * 2
    assert clips[0][0, :, 0, 0, 0].tolist() == [1, 3, 5, 7]
    assert clips[1][0, :, 0, 0, 0].tolist() == [9, 11, 13, 15]


def test_smoother_averages_the_last_k_different_vectors():
    s = ScoreSmoother(3)
    a, b, c = np.eye(3)
    assert s(a).tolist() == [1.0, 0.0, 0.0]
    assert s(b).tolist() == [0.5, 0.5, 0.0]
    assert s(c) == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert s(np.array([0.0, 0.0, 1.0])) == pytest.approx([0.0, 1 / 3, 2 / 3])  # a left the window


@pytest.mark.parametrize("k", [None, 0, 1])
def test_smoother_default_and_k_below_one_pass_scores_through(k):
    s = ScoreSmoother() if k is None else ScoreSmoother(k)
    s(np.array([1.0, 0.0]))
    assert s(np.array([0.2, 0.8])).tolist() == [0.2, 0.8]


def test_softmax_is_normalised_and_stable():
    p = softmax(np.array([1000.0, 1000.0, -1000.0]))
    assert p == pytest.approx([0.5, 0.5, 0.0])
    q = softmax(np.array([np.log(1.0), np.log(3.0)]))
    assert q == pytest.approx([0.25, 0.75])
