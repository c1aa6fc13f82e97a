"""Live sources that drop are retried with backoff, against real components: an RTSP server (a subprocess)
stopped and restarted under a running pipeline, a test source that flaps, and `edge run --max-reconnects`."""
from __future__ import annotations

import _thread
import json
import logging
import re
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.backends import open_backend
from edge.errors import EdgeError

gi = pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
from edge.pipeline import run  # noqa: E402

SERVER = Path(__file__).with_name("rtsp_server.py")
FLAPPING = "test://?is-live=true&num-buffers=5&fps=60&width=64&height=48"  # ends (drops) every 5 frames
WATCHDOG_S = 45.0


def _has_rtsp_server() -> bool:
    try:
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GstRtspServer  # noqa: F401
    except (ImportError, ValueError):
        return False
    return True


needs_rtsp_server = pytest.mark.skipif(
    not _has_rtsp_server(), reason="gst-rtsp-server GI bindings missing (apt-get install gir1.2-gst-rtsp-server-1.0)")


def logged_delays(caplog) -> list[float]:
    return [float(m.group(1)) for r in caplog.records
            if r.name == "edge.pipeline" and (m := re.search(r"; reconnect \d+ in ([\d.]+) s$", r.getMessage()))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """rtsp_server.py as a subprocess on one loopback port, so it can be stopped and started again there."""

    def __init__(self) -> None:
        self.port = free_port()
        self.uri = f"rtsp://127.0.0.1:{self.port}/cam"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(SERVER), str(self.port)], stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        assert ready and self.proc.stdout.readline().strip() == "ready", "the RTSP server did not start"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
            self.proc = None


@pytest.fixture
def rtsp_server():
    server = RtspServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def last_decision_frame(folder: Path) -> int:
    """Frame index of the newest decision in the (still temporary) events file of a running pipeline."""
    lines = [line for p in folder.glob(".ev.jsonl.*.part.jsonl") for line in p.read_text().splitlines()]
    return max((json.loads(line)["frame"] for line in lines if line.endswith("}")), default=-1)


def wait_until(condition, done: threading.Event, deadline: float) -> None:
    while not condition():
        if done.wait(0.05) or time.monotonic() > deadline:
            raise TimeoutError("the run ended or stalled before the outage could be staged")


@needs_rtsp_server
def test_rtsp_server_that_goes_away_is_retried_until_it_comes_back(color_bundle, rtsp_server, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge.pipeline")
    done, outage = threading.Event(), {}
    deadline = time.monotonic() + WATCHDOG_S

    def stage_outage() -> None:
        """Kill the server once frames flow; restart it after >= 2 s and at least one failed reopen.
        Then act as a watchdog: Ctrl-C the run (summary.interrupted) if it is still going at the deadline."""
        try:
            wait_until(lambda: last_decision_frame(tmp_path) >= 15, done, deadline)
            rtsp_server.stop()
            down = time.monotonic()
            outage["frames_before"] = last_decision_frame(tmp_path)
            wait_until(lambda: len(logged_delays(caplog)) >= 2, done, deadline)  # a reopen failed
            time.sleep(max(0.0, 2.0 - (time.monotonic() - down)))
            outage["restarted"] = time.time()
            rtsp_server.start()
        except Exception as e:  # reported by the main thread
            outage["error"] = e
        if not done.wait(max(0.0, deadline - time.monotonic())):
            _thread.interrupt_main()

    stager = threading.Thread(target=stage_outage, daemon=True)
    stager.start()
    try:
        s = run(color_bundle, open_backend(color_bundle), rtsp_server.uri, [f"json://{tmp_path / 'ev.jsonl'}"],
                max_frames=60)
    finally:
        done.set()
        stager.join(timeout=30)
    assert "error" not in outage, outage.get("error")
    assert not s.interrupted, f"the run did not recover within {WATCHDOG_S:.0f} s"
    assert s.frames == 60 and s.frames - outage["frames_before"] >= 30
    assert s.reconnects >= 2 and logged_delays(caplog)[:2] == [0.25, 0.5]  # the failed reopen counts
    assert any(r.getMessage().endswith("reconnected") and r.created >= outage["restarted"] for r in caplog.records)


def test_first_connection_to_a_dead_rtsp_server_fails_fast(color_bundle, caplog):
    caplog.set_level(logging.INFO, logger="edge.pipeline")
    uri = f"rtsp://127.0.0.1:{free_port()}/cam"
    with pytest.raises(EdgeError, match=f"^--source {uri}: ") as e:
        run(color_bundle, open_backend(color_bundle), uri, [])
    assert "no frames within" not in str(e.value)  # the bus error itself, not the pull timeout's verdict
    assert logged_delays(caplog) == []


def test_a_flapping_source_backs_off_and_gives_up_after_max_reconnects(color_bundle, caplog):
    caplog.set_level(logging.INFO, logger="edge.pipeline")
    with pytest.raises(EdgeError) as e:
        run(color_bundle, open_backend(color_bundle), FLAPPING, [], max_frames=60, max_reconnects=3)  # bound if it never gives up
    assert re.fullmatch(r"--source test://\S+: .*giving up after 3 reconnect attempts \(end of stream\)", str(e.value))
    assert logged_delays(caplog) == [0.25, 0.5, 1.0]


def test_failures_reset_once_the_source_has_been_up_for_stable_s(color_bundle, caplog):
    caplog.set_level(logging.INFO, logger="edge.pipeline")
    s = run(color_bundle, open_backend(color_bundle), FLAPPING, [], max_frames=30, max_reconnects=3, stable_s=0.01)
    assert s.frames == 30 and s.reconnects == 5  # more than max_reconnects: the count reset each time
    assert logged_delays(caplog) == [0.25] * 5


def test_cli_max_reconnects(color_bundle):
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root),
                           "--source", FLAPPING, "--max-reconnects", "2", "--max-frames", "60"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert [re.sub(r"^.*; ", "", line) for line in lines if "; reconnect" in line] == [
        "reconnect 1 in 0.25 s", "reconnect 2 in 0.50 s"]  # INFO/WARNING lines reach stderr
    assert lines[-1].startswith("error: --source test://") and "giving up after 2 reconnect attempts" in lines[-1]
