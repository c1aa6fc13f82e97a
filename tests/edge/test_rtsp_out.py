"""`--output rtsp://host:port/name`: `edge run` serves the annotated stream with gst-rtsp-server, and two
RTSP clients (GStreamer's rtspsrc, through our own source reader) connect at once and decode frames of the
served size; a bad URI is a one-line error."""

import socket
import subprocess
import sys
import threading
import time

import pytest

from edge.errors import EdgeError

pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
from edge.pipeline import frames  # noqa: E402
from edge.sinks import open_sink  # noqa: E402
from edge.sources import parse_source  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pull(uri, n, got):
    """Connect (retrying until the mount exists) and decode ``n`` frames."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            shapes = []
            for rgb, *_ in frames(parse_source(uri)):
                shapes.append(rgb.shape)
                if len(shapes) == n:
                    got.append(shapes)
                    return
        except EdgeError:
            time.sleep(0.2)


def test_two_clients_watch_the_served_stream(color_bundle):
    port = free_port()
    uri = f"rtsp://127.0.0.1:{port}/live"
    server = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--model", str(color_bundle.root),
                               "--source", "test://?is-live=true&width=160&height=120&fps=30", "--max-frames", "300",
                               "--output", uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got: list = []
    clients = [threading.Thread(target=pull, args=(uri, 10, got)) for _ in range(2)]
    try:
        for c in clients:
            c.start()
        for c in clients:
            c.join(40)
    finally:
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert len(got) == 2 and all(s == [(120, 160, 3)] * 10 for s in got)


@pytest.mark.parametrize("uri", ["rtsp://127.0.0.1/live", "rtsp://127.0.0.1:8554/", "rtsp://127.0.0.1:8554/a/b"])
def test_an_rtsp_output_needs_a_port_and_one_name(uri):
    with pytest.raises(EdgeError, match="expected rtsp://.host.:port/name"):
        open_sink(uri)
