"""The runtime end to end with real GStreamer, real ONNX Runtime, real files."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from edge.backends import open_backend
from edge.errors import EdgeError

gi = pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
from edge.pipeline import run  # noqa: E402


def decodable_frames(path):
    cap = cv2.VideoCapture(str(path))
    n, shape = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            return n, shape
        n, shape = n + 1, f.shape


def test_test_source_to_mp4_and_jsonl(color_bundle, tmp_path):
    mp4, jsonl = tmp_path / "out.mp4", tmp_path / "ev.jsonl"
    s = run(color_bundle, open_backend(color_bundle), "test://?num-buffers=40&width=64&height=48&fps=10",
            [f"file://{mp4}", f"json://{jsonl}"])
    assert s.frames == 40 and s.decisions == 9  # first at frame 8, then every 4: 8,12,...,40
    n, shape = decodable_frames(mp4)
    assert abs(n - 40) <= 1 and shape == (48, 64, 3)
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(events) == 9 and [e["frame"] for e in events] == list(range(7, 40, 4))
    assert all(e["label"] in ("red", "green", "blue") and len(e["top5"]) == 3 for e in events)
    assert events[1]["t"] == pytest.approx(1.1, abs=1e-3)  # frame 11 at 10 fps
    assert not list(tmp_path.glob(".*part*"))


def test_file_source_classifies_the_dominant_colour(color_bundle, tmp_path):
    video = tmp_path / "blue.mp4"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 15, (32, 32))
    for _ in range(12):
        vw.write(np.full((32, 32, 3), (230, 20, 20), np.uint8))  # BGR: blue
    vw.release()
    jsonl = tmp_path / "ev.jsonl"
    s = run(color_bundle, open_backend(color_bundle), f"file://{video}", [f"json://{jsonl}"])
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert s.frames == 12 and len(events) == 2
    assert all(e["label"] == "blue" and e["score"] > 0.9 for e in events)


def test_live_source_that_drops_is_reconnected(color_bundle):
    s = run(color_bundle, open_backend(color_bundle), "test://?is-live=true&num-buffers=10&fps=60", [],
            max_frames=35)
    assert s.frames == 35 and s.reconnects == 3


@pytest.mark.parametrize("source, message", [
    ("file:///nonexistent/x.mp4", "no such file"),
    ("ftp://x", "unknown scheme"),
    ("v4l2:///dev/video99", "no such device"),
])
def test_bad_sources_are_one_line_errors(color_bundle, source, message):
    with pytest.raises(EdgeError, match=message):
        run(color_bundle, open_backend(color_bundle), source, [])


def test_a_file_that_is_not_a_video_is_a_clear_error(color_bundle, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    out, events = tmp_path / "never.mp4", tmp_path / "never.jsonl"
    with pytest.raises(EdgeError, match="bad.mp4"):
        run(color_bundle, open_backend(color_bundle), f"file://{bad}", [f"file://{out}", f"json://{events}"])
    assert not out.exists() and not events.exists() and not list(tmp_path.glob(".*part*"))


@pytest.mark.parametrize("output, message", [
    ("gopher://x", "unknown scheme"),
    ("file:///nonexistent-dir/out.mp4", "directory does not exist"),
    ("file:///tmp/out.avi", ".mp4 or .mkv"),
    ("rtp://only-host", "host:port"),
])
def test_bad_outputs_are_one_line_errors(color_bundle, output, message):
    with pytest.raises(EdgeError, match=message):
        run(color_bundle, open_backend(color_bundle), "test://?num-buffers=2", [output])


def test_ctrl_c_finalizes_a_playable_mp4_and_complete_jsonl(color_bundle, tmp_path):
    mp4, jsonl = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root),
                             "--source", "test://?is-live=true&fps=30", "--output", f"file://{mp4}",
                             "--output", f"json://{jsonl}"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any(tmp_path.glob(".live.*.part.jsonl")):
        time.sleep(0.2)
    time.sleep(2.0)  # ~60 frames, several decisions
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    n, shape = decodable_frames(mp4)
    assert n >= 20 and shape == (240, 320, 3)
    lines = jsonl.read_text().splitlines()
    assert lines and all(json.loads(x)["label"] for x in lines)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part.mp4")]
