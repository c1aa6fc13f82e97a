"""Motion inputs (edge/motion.py) on hand-made videos: flow of a moving bar, RGBF (Eq. 7) only where it
moves, the MOMP image's zero / normalised cases and its window sharing, stacked flow, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import EdgeError
from edge.motion import (
    FlowParams,
    MompParams,
    MotionSpec,
    confidence_map,
    momp_image,
    momp_images,
    optical_flow,
    rgbf,
    scale_flow,
    stack_flows,
    stacked_flow,
    tvl1_available,
)

H, W = 64, 96
BAR_ROWS = slice(24, 40)


def bar_video(frames: int = 6, step: int = 2, x0: int = 10, bg: int = 30) -> np.ndarray:
    """A bright 6-px-wide bar on a flat dark background, moving right by ``step`` px per frame."""
    v = np.full((frames, H, W, 3), bg, np.uint8)
    for t in range(frames):
        v[t, BAR_ROWS, x0 + step * t: x0 + step * t + 6] = (230, 200, 170)
    return v


def textured_video(frames: int = 12, seed: int = 0) -> np.ndarray:
    """Smooth random texture translating 1 px per frame right and down (every pixel moves)."""
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, (H + frames, W + frames, 3)).astype(np.float32)
    big = (big + np.roll(big, 1, 0) + np.roll(big, 1, 1) + np.roll(big, (1, 1), (0, 1))) / 4
    return np.stack([big[frames - t: frames - t + H, frames - t: frames - t + W] for t in range(frames)]).astype(np.uint8)


# -------------------------------------------------------------------------------------------- flow


def test_flow_of_a_bar_moving_right_is_plus_two_on_the_bar_and_zero_far_away():
    v = bar_video()
    f = optical_flow(v)
    assert f.shape == (5, H, W, 2) and f.dtype == np.float32
    for t in range(5):
        x = 10 + 2 * t
        bar = f[t, 28:36, x + 1: x + 5]  # the bar's body at frame t (the flow is anchored at frame t)
        assert np.allclose(bar[..., 0], 2.0, atol=0.25), bar[..., 0]
        assert np.abs(bar[..., 1]).max() < 0.25
    assert np.abs(f[:, :, 60:]).max() < 0.05  # static background 20+ px to the right of the bar's last place
    assert np.abs(f[:, 52:]).max() < 0.05  # and below it


def test_flow_of_a_static_video_is_zero():
    v = np.repeat(bar_video()[:1], 4, axis=0)
    assert np.abs(optical_flow(v)).max() < 1e-6


def test_flow_direction_follows_time():
    v = bar_video()
    back = optical_flow(v[::-1].copy())
    assert back[:, 28:36, 20:24, 0].mean() < -1.5


def test_tvl1_without_opencv_contrib_names_the_package(monkeypatch):
    """The project installs opencv-contrib; a Jetson's system OpenCV may lack it."""
    import edge.motion

    monkeypatch.setattr(edge.motion, "tvl1_available", lambda: False)
    assert edge.motion.best_flow_method() == "farneback"
    with pytest.raises(EdgeError, match="opencv-contrib-python-headless"):
        optical_flow(bar_video(), FlowParams(method="tvl1"))


@pytest.mark.skipif(not tvl1_available(), reason="needs opencv-contrib (cv2.optflow), a dependency: pip install -e .")
def test_tvl1_flow_of_the_moving_bar():
    f = optical_flow(bar_video(), FlowParams(method="tvl1"))
    assert f.shape == (5, H, W, 2)
    assert np.allclose(f[2, 28:36, 15:19, 0], 2.0, atol=0.5)


def test_flow_params_are_checked():
    with pytest.raises(ValueError, match="method must be one of farneback, tvl1"):
        FlowParams(method="brox")
    with pytest.raises(ValueError, match="poly_n must be 5 or 7"):
        FlowParams(poly_n=3)


# -------------------------------------------------------------------------------------------- RGBF


def test_rgbf_is_non_zero_only_around_the_moving_bar():
    v = bar_video()
    r = rgbf(v)
    assert r.shape == v.shape and r.dtype == np.uint8
    for t in range(len(v)):
        x = 10 + 2 * t
        assert r[t, 28:36, x + 1: x + 5].min() > 100  # the bar keeps most of its brightness
        # nothing 20+ px from the bar (right of it, below it, above it)
        assert r[t, :, x + 26:].max() == 0 and r[t, 56:].max() == 0 and r[t, :8].max() == 0


def test_rgbf_is_eq_7_per_frame_with_the_backward_flow():
    v = bar_video()
    r = rgbf(v)
    back = optical_flow(v[[3, 2]])[0]  # frame 3's flow towards frame 2
    conf = confidence_map(np.linalg.norm(back, axis=-1))
    assert conf.min() == 0.0 and conf.max() == pytest.approx(1.0)
    expected = np.rint(v[3].astype(np.float32) * conf[..., None]).astype(np.uint8)
    assert np.array_equal(r[3], expected)
    # the first frame uses its flow towards frame 1
    first = confidence_map(np.linalg.norm(optical_flow(v[:2])[0], axis=-1))
    assert np.array_equal(r[0], np.rint(v[0].astype(np.float32) * first[..., None]).astype(np.uint8))


def test_rgbf_of_a_static_video_is_zero():
    assert rgbf(np.repeat(bar_video()[:1], 4, axis=0)).max() == 0


def test_rgbf_of_a_window_with_its_previous_frame_equals_the_whole_video_slice():
    v = textured_video(8)
    whole = rgbf(v)
    assert np.array_equal(rgbf(v[3:7], prev=v[2]), whole[3:7])
    assert not np.array_equal(rgbf(v[3:7]), whole[3:7])  # without prev the first frame differs
    assert rgbf(v[5:6], prev=v[4]).shape == (1, H, W, 3)  # one new frame at a time (streaming)


def test_confidence_map_is_min_max_normalised():
    m = np.array([[1.0, 2.0], [3.0, 5.0]], np.float32)
    assert np.allclose(confidence_map(m), [[0, 0.25], [0.5, 1.0]])
    assert confidence_map(np.full((2, 2), 3.0, np.float32)).max() == 0  # 0/0: no motion contrast


# -------------------------------------------------------------------------------------------- MOMP


def test_momp_image_of_a_static_video_is_zero():
    m = momp_image(np.repeat(textured_video(1), 9, axis=0))
    assert m.shape == (H, W, 3) and m.dtype == np.uint8 and m.max() == 0


def test_momp_image_of_a_moving_pattern_is_normalised_to_255():
    for v in (bar_video(frames=9), textured_video(9)):
        m = momp_image(v)
        assert m.max() == 255 and m.min() == 0
        assert (m > 0).mean() > 0.02


def test_momp_image_is_zero_away_from_the_moving_bar():
    m = momp_image(bar_video(frames=9))
    moving = m.max(axis=-1) > 0
    cols = np.flatnonzero(moving.any(axis=0))
    rows = np.flatnonzero(moving.any(axis=1))
    # the bar sweeps columns 10..31 over 9 frames, rows 24..39; the 7x7 cell and 2x2 Haar widen that by 4
    assert cols.min() >= 10 - 4 and cols.max() <= 31 + 4 and rows.min() >= 24 - 4 and rows.max() <= 39 + 4


def test_momp_follows_the_papers_three_steps_on_a_tiny_case():
    """Recompute I = |SSD1 - SSD2| for one triplet by hand (d = 2 bins, 1x1 cell, so v = m split by bin)."""
    p = MompParams(n=3, bins=2, cell=1, sigma=1.0)
    v = np.zeros((3, 4, 4, 3), np.uint8)
    v[0, :, 2:] = 100  # a vertical edge (horizontal gradient, bin 0)
    v[2, 2:, :] = 40  # a horizontal edge (vertical gradient, bin 1), weaker
    # Haar 2x2 at top-left pixels: frame 0 gx = 100 at column 1 (rows 0..3: the padded last row repeats),
    # frame 2 gy = 40 at row 1; frame 1 is flat. SSD1 = v0^2 (frame 1 is zero), SSD2 = v2^2.
    i = np.zeros((4, 4))
    i[:, 1] += 100.0**2
    i[1, :] -= 40.0**2
    i = np.abs(i)
    expected = np.rint((i - i.min()) * 255 / (i.max() - i.min())).astype(np.uint8)
    got = momp_image(v, p)
    for k in range(3):
        assert np.array_equal(got[..., k], expected)


def test_momp_images_slide_windows_and_share_triplets_exactly():
    v = textured_video(20)
    p = MompParams()
    ims = momp_images(v, p)
    assert ims.shape == (len(range(0, 20 - 9 + 1, 4)), H, W, 3)
    for k in range(len(ims)):
        assert np.array_equal(ims[k], momp_image(v[4 * k: 4 * k + 9], p))


def test_momp_needs_n_frames():
    with pytest.raises(ValueError, match="needs at least 9 frames, got 5"):
        momp_image(textured_video(5))
    with pytest.raises(ValueError, match=r"momp_images \(N=9\): needs at least 9 frames, got 8"):
        momp_images(textured_video(8))
    with pytest.raises(ValueError, match="expected exactly N=9 frames"):
        momp_image(textured_video(10))
    with pytest.raises(ValueError, match="n \\(N\\) must be >= 3"):
        MompParams(n=2)
    with pytest.raises(ValueError, match="cell must be odd"):
        MompParams(cell=4)


# ------------------------------------------------------------------------------------ stacked flow


def test_stacked_flow_shape_range_and_channel_order():
    v = bar_video(frames=6)
    s = stacked_flow(v)
    assert s.shape == (10, H, W) and s.dtype == np.float32  # L = 5 fields from 6 frames, x/y interleaved
    assert s.min() >= 0 and s.max() <= 255 and np.array_equal(s, np.rint(s))
    assert s[:, 60:, 80:].min() == s[:, 60:, 80:].max() == 128  # zero flow -> 127.5 -> 128
    f = optical_flow(v)
    assert np.array_equal(s[0::2], scale_flow(f)[..., 0].astype(np.float32))
    assert np.array_equal(s[1::2], scale_flow(f)[..., 1].astype(np.float32))
    assert s[0::2][:, 30, 20].max() > 128 + 10  # the bar moves right: x above mid-grey


def test_scale_flow_clips_to_the_bound():
    f = np.array([[-50.0, -20.0], [0.0, 10.0], [20.0, 99.0]], np.float32)
    assert scale_flow(f).tolist() == [[0, 0], [128, 191], [255, 255]]
    assert scale_flow(f, bound=10).tolist() == [[0, 0], [128, 255], [255, 255]]
    with pytest.raises(ValueError, match="bound must be > 0"):
        scale_flow(f, bound=0)


def test_stack_flows_of_a_cached_slice_equals_stacked_flow_of_the_window():
    v = textured_video(10)
    cached = MotionSpec("stacked_flow").compute(v)
    assert cached.shape == (9, H, W, 2) and cached.dtype == np.uint8
    assert np.array_equal(stack_flows(cached[3:7]), stacked_flow(v[3:8]))


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [optical_flow, rgbf, stacked_flow, momp_image, momp_images])
@pytest.mark.parametrize("bad", [np.zeros((9, 8, 8, 3), np.float32), np.zeros((9, 8, 8), np.uint8),
                                 np.zeros((9, 8, 8, 4), np.uint8), [np.zeros((8, 8, 3), np.uint8)] * 9])
def test_bad_frames_are_a_clear_value_error(fn, bad):
    with pytest.raises(ValueError, match=r"expected frames as a \(T, H, W, 3\) uint8 RGB array, got"):
        fn(bad)


@pytest.mark.parametrize("fn", [optical_flow, rgbf, stacked_flow])
def test_flow_needs_two_frames(fn):
    with pytest.raises(ValueError, match="needs at least 2 frames, got 1"):
        fn(bar_video(frames=1))


# --------------------------------------------------------------------------------------------- spec


def test_spec_round_trips_and_keys_only_what_its_kind_uses():
    spec = MotionSpec("momp", momp=MompParams(n=6, stride=2))
    assert MotionSpec.from_dict(spec.to_dict()) == spec
    assert MotionSpec("momp", flow=FlowParams(winsize=9)).key() == MotionSpec("momp").key()
    assert MotionSpec("rgbf", flow=FlowParams(winsize=9)).key() != MotionSpec("rgbf").key()
    assert MotionSpec("flow").key() != MotionSpec("stacked_flow").key()
    assert MotionSpec("stacked_flow", bound=10).key() != MotionSpec("stacked_flow").key()
    with pytest.raises(ValueError, match="kind must be one of flow, rgbf, stacked_flow, momp"):
        MotionSpec("optical")


@pytest.mark.parametrize("kind, shape, dtype", [("flow", (7, H, W, 2), np.float32), ("rgbf", (8, H, W, 3), np.uint8),
                                                ("stacked_flow", (7, H, W, 2), np.uint8),
                                                ("momp", (1, H, W, 3), np.uint8)])
def test_spec_compute_shapes(kind, shape, dtype):
    out = MotionSpec(kind, momp=MompParams(n=8)).compute(textured_video(8))
    assert out.shape == shape and out.dtype == dtype
