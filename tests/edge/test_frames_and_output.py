"""What a user sees of the runtime's pixels: frames copied out of GStreamer buffers, the overlay, and the
annotated video's frame rate and duration. Real GStreamer throughout."""

import json

import cv2
import numpy as np
import pytest

from edge.backends import open_backend
from edge.errors import EdgeError
from edge.sinks import Decision, draw_overlay

gi = pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
from edge.gst import gst  # noqa: E402
from edge.pipeline import FrameReader, run  # noqa: E402


def rgb_sample(frame: np.ndarray, stride: int, pts_s: float, fps: int):
    """A real Gst.Sample holding ``frame`` with rows padded to ``stride`` bytes (padding bytes 0xEE)."""
    Gst, GstVideo = gst()
    h, w = frame.shape[:2]
    caps = Gst.Caps.from_string(f"video/x-raw,format=RGB,width={w},height={h},framerate={fps}/1")
    assert GstVideo.VideoInfo.new_from_caps(caps).stride[0] == stride
    rows = np.full((h, stride), 0xEE, np.uint8)
    rows[:, : w * 3] = frame.reshape(h, w * 3)
    buf = Gst.Buffer.new_wrapped(rows.tobytes())
    buf.pts = int(pts_s * Gst.SECOND)
    return Gst.Sample.new(buf, caps, None, None)


@pytest.mark.parametrize("width, stride", [(30, 92), (31, 96), (32, 96)])
def test_frames_honour_the_row_stride(width, stride):
    # RGB rows of 90 or 93 bytes are padded to a multiple of 4: the padding must never leak into pixels
    rng = np.random.default_rng(width)
    frame = rng.integers(0, 200, (5, width, 3), dtype=np.uint8)
    got, t, fps = FrameReader("test://x")(rgb_sample(frame, stride, 0.5, 10))
    assert got.shape == (5, width, 3) and np.array_equal(got, frame)
    assert t == pytest.approx(0.5) and fps == 10


def test_a_reader_follows_caps_that_change_mid_stream():
    # the layout is cached per caps: a renegotiated size (a camera switching mode) must be read afresh
    rng = np.random.default_rng(0)
    read = FrameReader("test://x")
    for width, stride, fps in [(32, 96, 10), (32, 96, 10), (31, 96, 25), (30, 92, 25), (32, 96, 10)]:
        frame = rng.integers(0, 200, (4 + width % 3, width, 3), dtype=np.uint8)
        got, _, got_fps = read(rgb_sample(frame, stride, 0.0, fps))
        assert np.array_equal(got, frame) and got_fps == fps


def test_a_buffer_too_small_for_its_caps_is_an_error():
    Gst, _ = gst()
    caps = Gst.Caps.from_string("video/x-raw,format=RGB,width=32,height=4,framerate=10/1")
    short = Gst.Sample.new(Gst.Buffer.new_wrapped(bytes(96 * 3)), caps, None, None)
    with pytest.raises(EdgeError, match="--source test://x: a GStreamer buffer of 288 bytes is too small for a 32x4"):
        FrameReader("test://x")(short)


def decision(label: str = "push_up", score: float = 0.87) -> Decision:
    return Decision(t=0.0, frame=0, label=label, score=score, top5=[(label, score)], infer_ms=1.0)


def test_overlay_writes_the_label_in_a_dark_band_and_leaves_the_rest_alone():
    frame = np.full((120, 160, 3), 128, np.uint8)
    out = draw_overlay(frame, decision())
    band = 14  # max(14, int(28 * 160 / 640))
    assert np.array_equal(out[band:], frame[band:])
    assert (out[:band] < 60).mean() > 0.5  # darkened
    assert (out[:band] > 200).any()  # white text drawn
    assert np.array_equal(frame, np.full((120, 160, 3), 128, np.uint8))  # the input is not modified
    other = draw_overlay(frame, decision("sit_down", 0.12))
    assert not np.array_equal(other[:band], out[:band])  # the text depends on the label and score


@pytest.mark.parametrize("width, band", [(160, 14), (640, 28), (1280, 56)])
def test_overlay_band_and_text_scale_with_the_frame_width(width, band):
    # the overlay's specification: a band of 28 px per 640 px of width (at least 14), darkened to 35%; the
    # label and score in white Hershey simplex, 0.7 x scale, 2 x scale thick, anti-aliased, 4 px from the
    # left, its baseline 8 x scale above the band's bottom
    frame = np.full((band * 3, width, 3), 200, np.uint8)
    out = draw_overlay(frame, decision("walk", 0.5))
    scale = max(0.3, width / 640)
    expected = frame.copy()
    expected[:band] = 70  # 200 * 0.35
    cv2.putText(expected, "walk 0.50", (4, band - max(3, int(8 * scale))), cv2.FONT_HERSHEY_SIMPLEX,
                0.7 * scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    assert np.array_equal(out, expected)
    assert np.array_equal(out[band:], frame[band:])


def test_no_decision_yet_means_an_untouched_frame():
    frame = np.full((48, 64, 3), 77, np.uint8)
    assert np.array_equal(draw_overlay(frame, None), frame)


def write_video(path, frames: int, fps: int, size=(40, 32)):
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        vw.write(np.full((size[1], size[0], 3), (20 * (i % 10), 90, 200), np.uint8))
    vw.release()


@pytest.mark.parametrize("fps, frames", [(12, 24), (25, 20)])
def test_annotated_output_keeps_the_source_frame_rate_and_duration(color_bundle, tmp_path, fps, frames, media_info):
    src, out, events = tmp_path / "in.mp4", tmp_path / "out.mp4", tmp_path / "ev.jsonl"
    write_video(src, frames, fps)
    s = run(color_bundle, open_backend(color_bundle), f"file://{src}", [f"file://{out}", f"json://{events}"])
    duration, rate, count = media_info(out)
    assert s.frames == frames and count == frames
    assert rate == fps  # exactly: 12000/1000 is 12/1
    assert duration == pytest.approx(frames / fps, abs=0.5 / fps)
    # decisions carry the source's timestamps: frame k at k / fps
    ev = [json.loads(x) for x in events.read_text().splitlines()]
    assert ev and all(e["t"] == pytest.approx(e["frame"] / fps, abs=1e-3) for e in ev)
    # the first frames (before any decision) are untouched, the later ones carry the overlay band
    cap = cv2.VideoCapture(str(out))
    shot = [cap.read()[1] for _ in range(frames)]
    darkening = [f[:14].mean() / f[14:].mean() for f in (shot[0], shot[-1])]
    assert darkening[0] == pytest.approx(1.0, abs=0.1) and darkening[1] < 0.6
