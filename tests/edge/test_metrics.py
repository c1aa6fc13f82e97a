"""Run metrics: per-stage latencies (capture, preprocess, inference, postprocess, output, end to end) in the
summary and in `--stats` lines, and the Prometheus text format served on `--metrics-port` while a real
pipeline runs, scraped over HTTP."""

import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from edge.backends import open_backend
from edge.errors import EdgeError
from edge.metrics import STAGES

RGB_STAGES = [s for s in STAGES if s != "flow"]  # flow: a two-stream model's stage

pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
from edge.pipeline import Monitoring, run_streams  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_prometheus_endpoint_while_running_and_stage_latencies_at_exit(color_bundle):
    port, scraped = free_port(), []

    def scrape():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
            except OSError:
                time.sleep(0.02)
                continue
            if re.search(r'edge_decisions_total\{stream="1"\} [1-9]', text):
                scraped.append(text)
                return
            time.sleep(0.02)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    summaries = run_streams(color_bundle, open_backend(color_bundle), ["test://?num-buffers=600"] * 2, [[], []],
                            monitoring=Monitoring(metrics_port=port))
    scraper.join()
    assert scraped, "no scrape showed decisions while the run was going"
    text = scraped[0]
    for name in ("edge_frames_total", "edge_decisions_total", "edge_dropped_frames_total", "edge_reconnects_total"):
        assert re.search(rf'^{name}\{{stream="0"\}} \d', text, re.M), name
    for stage in RGB_STAGES:
        assert f'edge_stage_latency_seconds_count{{stage="{stage}",stream="0"}}' in text
    with pytest.raises(OSError):  # the server is gone with the run
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)
    for s in summaries:
        assert s.frames == 600
        for stage in RGB_STAGES:
            p50, p95, p99 = map(float, re.search(rf"{stage} ([\d.]+)/([\d.]+)/([\d.]+)", s.latency).groups())
            assert 0 <= p50 <= p95 <= p99


def test_a_busy_metrics_port_is_a_one_line_error(color_bundle):
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        with pytest.raises(EdgeError, match=f"--metrics-port {s.getsockname()[1]}: cannot listen"):
            run_streams(color_bundle, open_backend(color_bundle), ["test://?num-buffers=5"], [[]],
                        monitoring=Monitoring(metrics_port=s.getsockname()[1]))


def test_stats_lines_during_the_run_and_the_summary_at_exit(color_bundle):
    r = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root), "--source",
                        "test://?is-live=true&fps=50", "--max-frames", "100", "--stats", "0.5"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    stats = [ln for ln in r.stderr.splitlines() if "latency ms p50/p95/p99" in ln]
    assert len(stats) >= 2 and all("frames (" in ln and "dropped" in ln for ln in stats)
    assert re.search(r"^  latency ms p50/p95/p99: capture [\d.]+/", r.stdout, re.M)
