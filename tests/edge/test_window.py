import numpy as np
import pytest

from edge.bundle import ClipSpec, FlowInput
from edge.errors import EdgeError
from edge.motion import FlowParams, MotionSpec
from edge.preprocess import FLOW_MEAN, FLOW_STD, Preprocess
from edge.window import (
    FlowWindow,
    ScoreSmoother,
    SlidingWindow,
    clip_indices,
    eval_indices,
    fit_clip_step,
    softmax,
    uniform_indices,
)


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


def test_the_papers_example_of_consecutive_sampling():
    # T-C3D Sec. III-C: 300 frames, S = 3 parts of M = 100, k = 8 frames o = 2 apart, a start in [0, M - k*o]
    # of each part; the paper's draws 3, 25 and 51 give its example clips (3, 5, ..., 17), (125, ..., 139),
    # (251, ..., 265)
    idx = clip_indices(300, 3, 8, step=2, offsets=np.array([3.5, 25.5, 51.5]) / 84)
    assert idx.tolist() == [list(range(3, 18, 2)), list(range(125, 140, 2)), list(range(251, 266, 2))]
    assert idx.dtype == np.int64
    # at test time every clip sits in the middle of its room: 100 * s + 42
    assert clip_indices(300, 3, 8, step=2)[:, 0].tolist() == [42, 142, 242]


@pytest.mark.parametrize("part, k, step, expected", [
    (100, 8, 2, 2),  # the paper's geometry fits
    (16, 8, 2, 2),  # exactly fits: 8 frames 2 apart span 15
    (15.9, 8, 2, 1),  # not quite: consecutive frames instead
    (10.7, 8, 2, 1),  # a 32-frame video's thirds
    (4, 8, 2, 1),  # shorter than a clip: consecutive, repeating the last frame
    (100, 8, 3, 3), (30, 4, 9, 7),  # a larger step, shrunk to what fits
])
def test_fit_clip_step_shrinks_the_step_until_the_clip_fits(part, k, step, expected):
    assert fit_clip_step(part, k, step) == expected


def test_clips_that_do_not_fit_their_part_are_consecutive_and_never_pass_the_end():
    # 32 frames, 3 parts of 10.67: 8 frames at step 2 (span 16) would not fit, so step 1, room 2.67
    assert clip_indices(32, 3, 8, step=2).tolist() == [list(range(1, 9)), list(range(12, 20)), list(range(22, 30))]
    assert clip_indices(5, 2, 4, step=2).tolist() == [[0, 1, 2, 3], [2, 3, 4, 4]]  # repeats the last frame
    assert clip_indices(64, 2, 4, step=1, offsets=np.array([0.0, np.nextafter(1.0, 0.0)])).tolist() == [
        [0, 1, 2, 3], [60, 61, 62, 63]]  # starts in [0, 28] of each part: the largest draw reaches the end


def test_eval_indices_follow_the_spec():
    seg = ClipSpec(num_segments=4, window_frames=16, stride_frames=4)
    assert eval_indices(seg, 16).tolist() == [2, 6, 10, 14]
    clips = ClipSpec(num_segments=4, window_frames=16, stride_frames=4, sampling="clips", num_clips=2, clip_step=2)
    assert clips.clip_len == 2
    assert eval_indices(clips, 16).tolist() == [2, 4, 10, 12]  # parts of 8, room 4, centred: start 2


@pytest.mark.parametrize("kw, message", [
    ({"sampling": "random"}, "clip.sampling must be one of segments, clips, got 'random'"),
    ({"num_clips": 2}, "clip.num_clips and clip_step need sampling 'clips'"),
    ({"clip_step": 2}, "clip.num_clips and clip_step need sampling 'clips'"),
    ({"sampling": "clips", "num_clips": 3}, r"clip.num_segments \(4\) is not a multiple of num_clips \(3\)"),
    ({"sampling": "clips", "clip_step": 0}, "must be >= 1"),
    ({"sampling": "clips", "num_clips": 0}, "must be >= 1"),
])
def test_clip_spec_refuses_inconsistent_sampling(kw, message):
    with pytest.raises(EdgeError, match=message):
        ClipSpec(num_segments=4, window_frames=8, stride_frames=4, **kw)


def test_clip_spec_round_trips_and_old_manifests_mean_segments():
    spec = ClipSpec(num_segments=6, window_frames=30, stride_frames=5, sampling="clips", num_clips=3, clip_step=2)
    assert ClipSpec.from_dict(spec.to_dict()) == spec
    old = {"mode": "clip", "num_segments": 8, "window_frames": 32, "stride_frames": 8}
    assert ClipSpec.from_dict(old) == ClipSpec(8, 32, 8, sampling="segments", num_clips=1, clip_step=1)


def test_window_feeds_a_clips_model_its_clips_in_order():
    spec = ClipSpec(num_segments=6, window_frames=12, stride_frames=12, sampling="clips", num_clips=2, clip_step=2)
    w = SlidingWindow(spec)
    clips = [c for i in range(24) if (c := w.push(np.full((3, 1, 1), i, np.float32))) is not None]
    # parts of 6 frames: 3 frames 2 apart would span 5 but need k*o = 6 of room: step 2, room 0
    assert [c[0, :, 0, 0, 0].tolist() for c in clips] == [[0, 2, 4, 6, 8, 10], [12, 14, 16, 18, 20, 22]]


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


def _moving_square(frames: int, size: int = 24) -> np.ndarray:
    video = np.full((frames, size, size, 3), 40, np.uint8)
    for t in range(frames):
        video[t, 8:14, 2 + t : 8 + t] = 220
    return video


@pytest.mark.parametrize("extra", [0, 3])
def test_the_flow_window_pairs_each_clip_frame_with_its_field_as_training_does(extra):
    """Frame i of the window takes field i (frame i -> i+1) of the video; the newest frame, which has none yet,
    the last one - the same pairing as train.data.PairedClips on the whole video."""
    spec = ClipSpec(4, 6, 1, sampling="clips", clip_step=2)
    flow = FlowInput("flow", Preprocess(16, 24, FLOW_MEAN, FLOW_STD),
                     MotionSpec("stacked_flow", flow=FlowParams(method="farneback")))
    video = _moving_square(6 + extra)
    rgb, window = SlidingWindow(spec), FlowWindow(spec, flow)
    clips = []
    for frame in video:
        window.push(frame)
        if rgb.push(frame) is not None:
            clips.append(window.clip())
    assert len(clips) == 1 + extra
    fields = flow.motion.compute(video)  # (T-1, H, W, 2): field t from frame t to t+1
    start = len(video) - 6  # the window's first frame, at the last decision
    picks = start + eval_indices(spec, 6)
    expected = flow.preprocess.clip([fields[min(g, len(fields) - 1)] for g in picks])[None]
    assert clips[-1].shape == (1, 4, 2, 16, 16)
    assert np.abs(clips[-1] - expected).max() < 1e-6
    assert np.abs(expected).max() > 0.1  # the square moves: not a blank input
