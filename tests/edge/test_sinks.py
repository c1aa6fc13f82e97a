"""Outputs on their own: the events file line by line, what a failed run leaves, bad output URIs, and an
RTP stream received on a loopback UDP socket."""

import json
import socket
import time

import numpy as np
import pytest

from edge import sinks
from edge.errors import EdgeError
from edge.sinks import AppSrcSink, Decision, JsonSink, open_sink

gi = pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")


def decision(frame: int, score: float = 0.876543219) -> Decision:
    return Decision(t=frame / 30 + 1e-7, frame=frame, label="wave", score=score,
                    top5=[("wave", score), ("clap", 1 - score)], infer_ms=3.14159265)


def test_json_lines_carry_every_field_rounded_and_appear_at_close(tmp_path):
    out = tmp_path / "ev.jsonl"
    sink = open_sink(f"json://{out}")
    assert isinstance(sink, JsonSink)
    sink.frame(np.zeros((2, 2, 3), np.uint8), 30.0, None)  # frames are not events
    sink.decision(decision(7))
    sink.decision(decision(11, 0.5))
    assert not out.exists()  # still the hidden temp file
    (tmp,) = tmp_path.glob(".ev.jsonl.*.part.jsonl")
    assert len(tmp.read_text().splitlines()) == 2  # flushed as they happen (tail -f)
    sink.close(ok=True)
    lines = out.read_text().splitlines()
    assert lines[0] == ('{"t": 0.2333, "frame": 7, "label": "wave", "score": 0.87654, '
                        '"top5": [["wave", 0.87654], ["clap", 0.12346]], "infer_ms": 3.142}')
    assert json.loads(lines[1])["frame"] == 11 and json.loads(lines[1])["score"] == 0.5
    assert not list(tmp_path.glob(".*part*"))


def test_a_failed_run_leaves_no_events_file(tmp_path):
    out = tmp_path / "ev.jsonl"
    sink = open_sink(f"json://{out}")
    sink.decision(decision(1))
    sink.close(ok=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("uri, message", [
    ("gopher://x", "--output 'gopher://x': unknown scheme (expected one of: file://, json://, display://, rtp://, rtsp://)"),
    ("file:///nonexistent-dir/out.mp4", "--output file:///nonexistent-dir/out.mp4: directory does not exist: "
                                        "/nonexistent-dir"),
    ("file:///tmp/out.avi", "--output file:///tmp/out.avi: expected a .mp4 or .mkv file name"),
    ("json:///tmp/", "--output 'json:///tmp/': expected a file name, not a directory"),
    ("json:///tmp", "--output 'json:///tmp': expected a file name, not a directory"),
    ("json://", "--output 'json://': expected a file name, not a directory"),
    ("rtp://only-host", "--output 'rtp://only-host': expected rtp://host:port"),
    ("rtp://:5000", "--output 'rtp://:5000': expected rtp://host:port"),
])
def test_bad_outputs_are_exact_one_line_errors(uri, message):
    with pytest.raises(EdgeError) as e:
        open_sink(uri)
    assert str(e.value) == message


def test_display_without_a_screen_says_so(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(EdgeError) as e:
        open_sink("display://")
    assert str(e.value) == "--output display://: no display here (DISPLAY/WAYLAND_DISPLAY unset)"


def test_mkv_output_is_a_matroska_file(tmp_path):
    sink = open_sink(f"file://{tmp_path / 'out.mkv'}")
    for i in range(10):
        sink.frame(np.full((32, 48, 3), 20 * i, np.uint8), 10.0, decision(i) if i > 4 else None)
    sink.close(ok=True)
    assert (tmp_path / "out.mkv").read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML magic
    assert not list(tmp_path.glob(".*part*"))


def test_an_mp4_of_a_failed_run_is_removed(tmp_path):
    sink = open_sink(f"file://{tmp_path / 'out.mp4'}")
    sink.frame(np.zeros((32, 48, 3), np.uint8), 10.0, None)
    sink.close(ok=False)
    assert list(tmp_path.iterdir()) == []


def test_rtp_output_sends_h264_rtp_packets_to_the_given_port():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10)
    port = rx.getsockname()[1]
    sink = open_sink(f"rtp://127.0.0.1:{port}")
    try:
        for i in range(15):
            sink.frame(np.full((48, 64, 3), 10 * i, np.uint8), 15.0, None)
        packets = [rx.recv(65536) for _ in range(3)]
    finally:
        sink.close(ok=True)
        rx.close()
    for p in packets:
        assert p[0] >> 6 == 2 and p[1] & 0x7F == 96  # RTP version 2, payload type 96 (dynamic, H.264)


@pytest.mark.parametrize("present, chosen", [
    ({"nvv4l2h264enc", "nvh264enc", "x264enc"}, "nvvidconv ! video/x-raw(memory:NVMM),format=I420 ! "
                                                "nvv4l2h264enc insert-sps-pps=true idrinterval=30"),  # Jetson
    ({"nvh264enc", "vah264enc", "x264enc"}, "nvh264enc zerolatency=true gop-size=30"),  # a desktop NVIDIA GPU
    ({"vah264enc", "x264enc"}, "videoconvert ! video/x-raw,format=NV12 ! vah264enc"),  # VA-API
    ({"x264enc", "openh264enc"}, "x264enc speed-preset=ultrafast tune=zerolatency key-int-max=30"),
    ({"openh264enc", "avenc_h264_omx"}, "openh264enc"),  # Debian without plugins-ugly
    ({"avenc_h264_omx"}, "avenc_h264_omx"),
])
def test_h264_encoder_falls_back_in_order(monkeypatch, present, chosen):
    monkeypatch.setattr(sinks, "has_element", lambda name: name in present)  # a registry lacking some
    monkeypatch.delenv("EDGE_H264_ENCODER", raising=False)
    assert sinks.encoder() == chosen


def test_an_encoder_can_be_forced_and_a_missing_one_is_named(monkeypatch):
    monkeypatch.setattr(sinks, "has_element", lambda name: name in {"nvh264enc", "x264enc"})
    monkeypatch.setenv("EDGE_H264_ENCODER", "x264enc")
    assert sinks.encoder().startswith("x264enc")
    monkeypatch.setenv("EDGE_H264_ENCODER", "nvv4l2h264enc")
    with pytest.raises(EdgeError, match="EDGE_H264_ENCODER=nvv4l2h264enc: not an H.264 encoder GStreamer has here"):
        sinks.encoder()


def test_no_h264_encoder_is_a_one_line_error_naming_the_package(monkeypatch):
    monkeypatch.setattr(sinks, "has_element", lambda name: False)
    monkeypatch.delenv("EDGE_H264_ENCODER", raising=False)
    with pytest.raises(EdgeError) as e:
        sinks.encoder()
    assert str(e.value) == "no H.264 encoder in GStreamer (install gstreamer1.0-plugins-ugly for x264enc)"


@pytest.mark.parametrize("fps, rate", [(12.0, (12, 1)), (29.97, (2997, 100)), (1.0, (1, 1)), (0.5, (1, 2))])
def test_pushed_frames_carry_the_source_rate_and_back_to_back_timestamps(fps, rate):
    # a real appsrc into a fakesink that keeps the last buffer: caps rate, buffer pts and durations
    pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
    from edge.gst import gst

    Gst, _ = gst()
    sink = AppSrcSink("test://", "fakesink name=out sync=false enable-last-sample=true")
    frame = np.zeros((8, 12, 3), np.uint8)
    for _ in range(3):
        sink.frame(frame, fps, None)
    caps = sink.src.get_property("caps").get_structure(0)
    got, num, den = caps.get_fraction("framerate")
    assert got and (num, den) == rate
    step = Gst.SECOND * rate[1] // rate[0]  # whole nanoseconds
    out, deadline = sink.pipe.get_by_name("out"), time.monotonic() + 10
    while (sample := out.get_property("last-sample")) is None or sample.get_buffer().pts < 2 * step:
        assert time.monotonic() < deadline, "the third frame never reached the sink"
        time.sleep(0.01)  # frames arrive in order, after push-buffer returns
    buf = sample.get_buffer()
    assert type(sink.duration) is int and buf.duration == step
    assert buf.pts == 2 * step  # the third frame: the first one starts at 0
    sink.close(ok=True)


def test_a_source_without_a_frame_rate_is_written_at_30_fps(tmp_path, media_info):
    sink = open_sink(f"file://{tmp_path / 'still.mp4'}")
    for _ in range(15):
        sink.frame(np.zeros((32, 48, 3), np.uint8), 0.0, None)  # an image source: no framerate in its caps
    sink.close(ok=True)
    duration, rate, count = media_info(tmp_path / "still.mp4")
    assert (rate, count) == (30, 15) and duration == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("kind", ["file", "rtp"])
def test_an_encoder_that_stops_is_an_error_naming_the_output(tmp_path, kind):
    uri = f"file://{tmp_path / 'x.mp4'}" if kind == "file" else "rtp://127.0.0.1:9"
    sink = open_sink(uri)
    assert isinstance(sink, AppSrcSink)
    sink.frame(np.zeros((32, 48, 3), np.uint8), 10.0, None)
    Gst, _ = sinks.gst()
    sink.pipe.set_state(Gst.State.NULL)  # the branch went away (a crashed encoder, a full disk)
    with pytest.raises(EdgeError) as e:
        sink.frame(np.zeros((32, 48, 3), np.uint8), 10.0, None)
    assert str(e.value) == f"--output {uri}: the encoder stopped accepting frames"
    sink.close(ok=False)
    assert not list(tmp_path.iterdir())


def test_the_display_uses_jetsons_egl_sink_where_it_exists(monkeypatch):
    monkeypatch.setattr(sinks, "has_element", lambda name: name == "nveglglessink")
    assert sinks.display_sink() == "nvvidconv ! nveglglessink sync=false"
    monkeypatch.setattr(sinks, "has_element", lambda name: False)
    assert sinks.display_sink() == "autovideosink sync=false"
