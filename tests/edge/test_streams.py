"""Many streams in one process (`edge run --source A --source B ...`), with real GStreamer and ONNX
Runtime: batched decisions equal the same streams run one at a time (clip and online models), batches
really hold several streams, a live source whose worker is behind drops frames (counted) while a file
source never does, per-stream outputs from {stream} templates, and the command's errors."""

import json
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from edge.backends import open_backend
from edge.errors import EdgeError
from edge.online import OnlineModel

pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
from test_online_run import online_bundle, red_then_blue  # noqa: E402,F401 - the fixture, shared

from edge.pipeline import Batching, run, run_streams, stream_outputs  # noqa: E402


def video(path, colours, n=24):
    """n frames cycling through ``colours`` (BGR), 4 frames each: every stream gets its own sequence."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (32, 32))
    for i in range(n):
        vw.write(np.full((32, 32, 3), colours[(i // 4) % len(colours)], np.uint8))
    vw.release()
    return f"file://{path}"


@pytest.fixture
def sources(tmp_path):
    palettes = [[(20, 20, 230), (230, 20, 20)], [(20, 230, 20)], [(230, 20, 20), (20, 230, 20), (20, 20, 230)]]
    return [video(tmp_path / f"s{i}.mp4", p) for i, p in enumerate(palettes)]


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def same_decisions(a, b):
    assert [(e["frame"], e["label"]) for e in a] == [(e["frame"], e["label"]) for e in b]
    for x, y in zip(a, b):
        assert dict(x["top5"]) == pytest.approx(dict(y["top5"]), abs=2e-5)


def test_batched_streams_decide_exactly_as_each_alone(color_bundle, sources, tmp_path):
    outs = stream_outputs([f"json://{tmp_path}/batched_{{stream}}.jsonl"], len(sources))
    summaries = run_streams(color_bundle, open_backend(color_bundle), sources, outs,
                            batching=Batching(max_batch=8, max_wait_ms=2000))
    sizes = summaries[0].batches
    assert sum(sizes) == sum(s.decisions for s in summaries) == 3 * 5 and set(sizes) == {3}  # full batches
    for i, src in enumerate(sources):
        run(color_bundle, open_backend(color_bundle), src, [f"json://{tmp_path}/alone_{i}.jsonl"])
        same_decisions(lines(tmp_path / f"batched_{i}.jsonl"), lines(tmp_path / f"alone_{i}.jsonl"))
        assert summaries[i].frames == 24 and summaries[i].dropped == 0  # a file source never drops


def test_online_streams_keep_their_own_buffers_in_a_batch(online_bundle, tmp_path):  # noqa: F811
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    red_then_blue(a)
    red_then_blue(b, red=4, blue=14)
    srcs = [f"file://{a}", f"file://{b}"]
    model = OnlineModel(online_bundle)
    summaries = run_streams(online_bundle, model, srcs, [[f"json://{tmp_path}/o{i}.jsonl"] for i in range(2)],
                            batching=Batching(max_batch=2, max_wait_ms=2000))
    assert set(summaries[0].batches) == {2}
    for i, src in enumerate(srcs):
        run(online_bundle, OnlineModel(online_bundle), src, [f"json://{tmp_path}/alone{i}.jsonl"])
        same_decisions(lines(tmp_path / f"o{i}.jsonl"), lines(tmp_path / f"alone{i}.jsonl"))


class Slow:
    """The real ONNX Runtime backend, 200 ms slower per call: with a decision every 4 frames a worker keeps up
    with 20 frames/s, not with a 60 frames/s camera."""

    def __init__(self, backend):
        self.backend = backend

    def infer(self, x):
        time.sleep(0.2)
        return self.backend.infer(x)


def test_a_live_source_behind_drops_frames_and_a_file_source_does_not(color_bundle, tmp_path):
    live = "test://?is-live=true&fps=60"
    file = video(tmp_path / "f.mp4", [(20, 20, 230)], n=40)
    summaries = run_streams(color_bundle, Slow(open_backend(color_bundle)), [live, file], [[], []],
                            max_frames=120, batching=Batching(max_batch=1, max_wait_ms=0))
    assert summaries[0].dropped > 20 and summaries[0].frames + summaries[0].dropped == 120
    assert summaries[1].frames == 40 and summaries[1].dropped == 0


def test_outputs_name_their_stream():
    assert stream_outputs(["json://ev_{stream}.jsonl", "display://"], 2) == [
        ["json://ev_0.jsonl", "display://"], ["json://ev_1.jsonl", "display://"]]
    with pytest.raises(EdgeError, match="--output json://ev.jsonl: 2 streams would share it; put {stream} in it"):
        stream_outputs(["json://ev.jsonl"], 2)
    assert stream_outputs(["json://ev.jsonl"], 1) == [["json://ev.jsonl"]]


def test_the_command_runs_a_sources_file(color_bundle, sources, tmp_path):
    listing = tmp_path / "cams.txt"
    listing.write_text("# the three test videos\n" + "\n".join(sources[1:]) + "\n\n")
    r = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root), "--source",
                        sources[0], "--sources", str(listing), "--output", f"json://{tmp_path}/cli_{{stream}}.jsonl"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert all(len(lines(tmp_path / f"cli_{i}.jsonl")) == 5 for i in range(3))
    assert r.stdout.count("done: 24 frames") == 3 and "streams per call on average" in r.stdout
    assert "all 3 streams: 72 frames (" in r.stdout and "15 decisions, dropped 0, reconnects 0" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root), "--source",
                          sources[0], "--source", sources[1], "--output", f"json://{tmp_path}/x.jsonl"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "2 streams would share it" in bad.stderr


def test_print_pipeline_describes_every_stream_and_writes_nothing(color_bundle, sources, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root), "--source",
                        sources[0], "--source", "test://?is-live=true", "--output", f"json://{out}/ev_{{stream}}.jsonl",
                        "--output", f"file://{out}/v_{{stream}}.mp4", "--print-pipeline"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 6 and lines[0].startswith(f"stream 0 source {sources[0]}: filesrc")
    assert "videotestsrc" in lines[3] and "appsink" in lines[3] and "x264enc" in lines[5]
    assert list(out.iterdir()) == []  # described, not run: no file was left behind
