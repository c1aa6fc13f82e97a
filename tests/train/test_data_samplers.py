import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.bundle import ClipSpec
from train.data.samplers import all_clip_indices, clip_indices, frame_indices, tsn_indices


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


def test_clip_indices_take_the_step_and_refuse_an_empty_video():
    idx = clip_indices(300, 8, 3, train=True, rng=np.random.default_rng(4), step=2)
    assert np.all(np.diff(idx, axis=1) == 2)  # frames o = 2 apart (T-C3D Sec. III-C)
    assert np.all(idx[:, 0] >= [0, 100, 200]) and np.all(idx[:, -1] < [100, 200, 300])  # each inside its part
    assert clip_indices(300, 8, 3, train=False, step=2)[:, 0].tolist() == [42, 142, 242]
    with pytest.raises(ValueError, match="^clip_indices: video has no frames$"):
        clip_indices(0, 8, 3, train=True)


SEGMENTS = ClipSpec(num_segments=4, window_frames=4, stride_frames=1)
CLIPS = ClipSpec(num_segments=6, window_frames=6, stride_frames=1, sampling="clips", num_clips=2, clip_step=2)


def test_frame_indices_sample_as_the_spec_says():
    assert frame_indices(SEGMENTS, 40, train=False).tolist() == [5, 15, 25, 35]
    assert frame_indices(CLIPS, 40, train=False).tolist() == [7, 9, 11, 27, 29, 31]  # parts of 20, room 14
    rng = np.random.default_rng(0)
    seg = frame_indices(SEGMENTS, 40, train=True, rng=rng)
    assert seg.tolist() == tsn_indices(40, 4, True, np.random.default_rng(0)).tolist()
    clips = frame_indices(CLIPS, 40, train=True, rng=np.random.default_rng(1)).reshape(2, 3)
    assert clips.tolist() == clip_indices(40, 3, 2, True, np.random.default_rng(1), step=2).tolist()
    assert np.all(np.diff(clips, axis=1) == 2) and clips[0, 0] <= 14 and 20 <= clips[1, 0] <= 34
    with pytest.raises(ValueError, match="^frame_indices: video has no frames$"):
        frame_indices(CLIPS, 0, train=False)


@pytest.mark.parametrize("n, expected", [
    (40, [[2 + 6 * c + 2 * i for i in range(3)] for c in range(6)]),  # 6 clips spanning 6 frames, 4 left over: from 2
    (12, [[0, 2, 4], [6, 8, 10]]),  # step 2 fits the parts of 6: two clips fill the video
    (7, [[0, 1, 2], [3, 4, 5]]),  # parts of 3.5 fit no step 2: consecutive frames, centred block of 6 in 7
    (2, [[0, 1, 1]]),  # shorter than a clip: one clip, the last frame repeated
])
def test_all_clip_indices_tile_the_video_at_the_s_clip_step(n, expected):
    assert all_clip_indices(n, CLIPS).tolist() == expected
