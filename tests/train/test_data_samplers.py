import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from train.data.samplers import clip_indices, tsn_indices


def test_tsn_test_mode_takes_segment_centres():
    assert tsn_indices(32, 8, train=False).tolist() == [2, 6, 10, 14, 18, 22, 26, 30]


@given(n=st.integers(1, 300), k=st.integers(1, 16), seed=st.integers(0, 10**6))
def test_tsn_train_mode_draws_one_frame_inside_each_segment(n, k, seed):
    idx = tsn_indices(n, k, train=True, rng=np.random.default_rng(seed))
    assert idx.shape == (k,) and idx.min() >= 0 and idx.max() < n
    assert np.all(np.diff(idx) >= 0)
    if n >= k:
        seg = np.floor(np.arange(k + 1) * n / k)
        assert np.all((idx >= seg[:-1]) & (idx < seg[1:]))


class LargestDraw:
    """A generator whose uniform(0, 1) draws are all the largest float below 1."""

    def uniform(self, low: float, high: float, n: int) -> np.ndarray:
        return np.full(n, np.nextafter(1.0, 0.0))


@pytest.mark.parametrize("n, k", [(10, 3), (1003, 2), (7, 8)])
def test_the_largest_draw_stays_inside_the_last_segment(n, k):
    # start + u * (end - start) rounds up to end = n for these lengths: the sampler must clamp it
    idx = tsn_indices(n, k, train=True, rng=LargestDraw())
    assert idx[-1] == n - 1 and idx.max() < n


def test_tsn_train_offsets_are_random_but_seeded():
    a = tsn_indices(100, 8, True, np.random.default_rng(1))
    b = tsn_indices(100, 8, True, np.random.default_rng(1))
    c = tsn_indices(100, 8, True, np.random.default_rng(2))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert tsn_indices(100, 8, True).dtype == np.int64  # no generator given: a fresh one
    offsets = tsn_indices(800, 8, True, np.random.default_rng(3)) % 100  # segments of 100 frames
    assert len(set(offsets.tolist())) > 1  # each segment draws its own offset
    with pytest.raises(ValueError, match="^tsn_indices: video has no frames$"):
        tsn_indices(0, 8, True)


def test_clip_indices_are_consecutive_runs_one_per_part():
    idx = clip_indices(64, 4, 4, train=False)
    assert idx.tolist() == [[6, 7, 8, 9], [22, 23, 24, 25], [38, 39, 40, 41], [54, 55, 56, 57]]
    assert idx.dtype == np.int64
    # parts of 3.5 frames, shorter than a clip: no room to move, each clip starts where its part starts
    assert clip_indices(7, 4, 2, train=False).tolist() == [[0, 1, 2, 3], [3, 4, 5, 6]]


def test_clip_indices_in_training_start_anywhere_a_clip_fits_in_its_part():
    starts = np.array([clip_indices(64, 4, 2, train=True, rng=np.random.default_rng(s))[:, 0] for s in range(300)])
    # parts [0, 32) and [32, 64), room 28: a start from part + [0, 28], the whole range reached
    assert starts[:, 0].min() == 0 and starts[:, 0].max() >= 26 and starts[:, 0].max() <= 28
    assert starts[:, 1].min() == 32 and 58 <= starts[:, 1].max() <= 60
    a = clip_indices(64, 4, 2, train=True, rng=np.random.default_rng(9))
    assert a.tolist() == clip_indices(64, 4, 2, train=True, rng=np.random.default_rng(9)).tolist()
    assert clip_indices(64, 4, 2, train=True).dtype == np.int64  # no generator given: a fresh one
    short = clip_indices(5, 4, 2, train=True, rng=np.random.default_rng(0))
    assert short.shape == (2, 4) and short.max() == 4
