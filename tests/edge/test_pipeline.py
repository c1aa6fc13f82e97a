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


def terminal_sigint() -> None:
    """In the child: Ctrl-C as a terminal delivers it. A test runner's worker may ignore SIGINT, and an
    ignored signal stays ignored across exec, so `edge run` would never see it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_finalizes_a_playable_mp4_and_complete_jsonl(color_bundle, tmp_path):
    mp4, jsonl = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root),
                             "--source", "test://?is-live=true&fps=30", "--output", f"file://{mp4}",
                             "--output", f"json://{jsonl}"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=terminal_sigint)
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


def colour_change_video(path, fps=15):
    """16 red frames, then 16 blue ones."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (32, 32))
    for i in range(32):
        vw.write(np.full((32, 32, 3), (20, 20, 230) if i < 16 else (230, 20, 20), np.uint8))  # BGR
    vw.release()


def events_of(bundle, source, tmp_path, **kw):
    out = tmp_path / f"ev{len(list(tmp_path.glob('ev*.jsonl')))}.jsonl"
    s = run(bundle, open_backend(bundle), source, [f"json://{out}"], **kw)
    return s, [json.loads(line) for line in out.read_text().splitlines()]


def test_smoothing_averages_the_last_k_decisions(color_bundle, tmp_path):
    video = tmp_path / "change.mp4"
    colour_change_video(video)
    _, plain = events_of(color_bundle, f"file://{video}", tmp_path)
    _, smooth = events_of(color_bundle, f"file://{video}", tmp_path, smoothing=3)
    assert [e["frame"] for e in plain] == [e["frame"] for e in smooth] == list(range(7, 32, 4))
    first_blue = [next(e["frame"] for e in ev if e["label"] == "blue") for ev in (plain, smooth)]
    assert first_blue[0] < first_blue[1]  # the smoothed label changes later
    blue = [dict(e["top5"])["blue"] for e in plain]
    for i, e in enumerate(smooth):
        assert dict(e["top5"])["blue"] == pytest.approx(np.mean(blue[max(0, i - 2) : i + 1]), abs=2e-5)


def test_top5_is_the_five_best_classes_best_first(seven_class_bundle, tmp_path):
    _, events = events_of(seven_class_bundle, "test://?num-buffers=12&pattern=red&width=32&height=32", tmp_path)
    assert events
    for e in events:
        scores = [p for _, p in e["top5"]]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True)
        assert e["label"] == e["top5"][0][0] == "red" and e["score"] == scores[0]
        assert sum(scores) < 1.0 and e["infer_ms"] > 0


def test_sigterm_from_a_service_manager_ends_the_run_cleanly(color_bundle, tmp_path):
    out = tmp_path / "ev.jsonl"
    state = {}

    def stop_when_running() -> None:
        deadline = time.time() + 30
        while time.time() < deadline and not any(
                p.read_text() for p in tmp_path.glob(".ev.jsonl.*.part.jsonl")):
            time.sleep(0.05)
        state["sent"] = time.time()
        os.kill(os.getpid(), signal.SIGTERM)  # the run is live and endless: it must be the one to catch it

    import threading

    stopper = threading.Thread(target=stop_when_running, daemon=True)
    stopper.start()
    s = run(color_bundle, open_backend(color_bundle), "test://?is-live=true&fps=30&width=32&height=32",
            [f"json://{out}"])
    stopper.join()
    assert s.interrupted and s.frames >= 8 and "sent" in state
    assert out.read_text().splitlines()  # finalized, not left as a temp file
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the previous handler is back


def test_summary_line_reports_counts_rate_latency_and_reconnects():
    from edge.pipeline import RunSummary

    s = RunSummary(frames=120, decisions=30, reconnects=2, wall_s=4.0, infer_ms=[1.0, 2.0, 3.0, 10.0], dropped=5)
    assert s.describe() == ("done: 120 frames, 30 decisions in 4.0 s (30.0 fps); inference p50 2.50 ms, "
                            "p95 8.95 ms; reconnects 2; dropped 5")
    s.interrupted = True
    assert s.describe().startswith("interrupted: 120 frames")
    assert RunSummary().describe() == ("done: 0 frames, 0 decisions in 0.0 s (0.0 fps); inference p50 0.00 ms, "
                                       "p95 0.00 ms; reconnects 0; dropped 0")
    assert RunSummary(frames=3, wall_s=0.5, infer_ms=[4.0]).describe() == (
        "done: 3 frames, 0 decisions in 0.5 s (6.0 fps); inference p50 4.00 ms, p95 4.00 ms; reconnects 0; "
        "dropped 0")
