"""What a deployment survives, with real pipelines on this CPU: a file cut off mid-recording (one-line
error, exit 2, an error event, and the outputs written so far finalized and playable), and a 60-second soak
of four live streams beside a file stream (memory stays flat, the file loses no frame). Ctrl-C and SIGTERM
during file output are tests/edge/test_pipeline.py's; a dropped RTSP camera is tests/edge/test_reconnect.py's."""

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")


def recording(path, frames, fps=15):
    """An H.264 mp4 with its index first (faststart), as a recorder that streams to disk writes it."""
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", f"num-buffers={frames}", "!",
                    f"video/x-raw,width=64,height=48,framerate={fps}/1", "!", "x264enc", "!", "mp4mux",
                    "faststart=true", "!", "filesink", f"location={path}"], check=True, timeout=60)
    return path


def decoded_frames(path):
    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        n += 1
    return n


def test_a_truncated_recording_is_an_error_with_its_outputs_finalized(color_bundle, tmp_path):
    whole = recording(tmp_path / "whole.mp4", 120)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    r = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root), "--source",
                        f"file://{cut}", "--output", f"json://{tmp_path}/ev.jsonl", "--output",
                        f"file://{tmp_path}/out.mp4"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "truncated or corrupt: its frames stop at" in r.stderr
    lines = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert lines[-1]["event"] == "error" and "of the 8.00 s it declares" in lines[-1]["message"]
    frames = lines[-1]["frame"]
    assert 40 < frames < 120 and decoded_frames(tmp_path / "out.mp4") == frames  # playable, every frame in it
    ok = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root), "--source",
                         f"file://{whole}"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "done: 120 frames" in ok.stdout  # the whole file is not "truncated"


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_soak_four_live_streams_for_a_minute(color_bundle, tmp_path):
    file = recording(tmp_path / "file.mp4", 300)
    live = ["--source", "test://?is-live=true&fps=30&width=160&height=120"] * 4
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root), *live,
                             "--source", f"file://{file}", "--max-frames", "1800",
                             "--output", f"json://{tmp_path}/ev_{{stream}}.jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples, t0 = [], time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < 90:
        samples.append((time.monotonic() - t0, rss_kb(proc.pid)))
        time.sleep(1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    early = [kb for t, kb in samples if 10 <= t < 20]
    late = [kb for t, kb in samples if t >= 50]
    assert early and late and max(late) < 1.05 * max(early), (early, late)
    summaries = out.splitlines()
    assert sum("done: 1800 frames" in ln for ln in summaries) == 4
    assert any(f"file://{file}: done: 300 frames" in ln and "dropped 0" in ln for ln in summaries)
