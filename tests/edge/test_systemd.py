"""systemd's notify protocol over a real unix datagram socket: `edge run`'s pipeline says READY=1 when it
starts and WATCHDOG=1 as frames flow (jetson/edge.service has Type=notify and WatchdogSec=), rate-limited
to half the watchdog period; outside systemd nothing is sent."""

import socket
import tempfile
from pathlib import Path

import pytest

from edge.backends import open_backend
from edge.pipeline import run
from edge.systemd import Watchdog, notify


@pytest.fixture
def listener(monkeypatch):
    path = Path(tempfile.mkdtemp(dir="/tmp")) / "notify"  # unix socket paths must stay under 108 bytes
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))

    def received():
        out = []
        while True:
            try:
                out.append(sock.recv(256).decode())
            except BlockingIOError:
                return out
    yield received
    sock.close()


def test_nothing_is_sent_outside_systemd(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_the_pipeline_is_ready_then_pets_the_watchdog_per_frame(listener, monkeypatch, color_bundle):
    monkeypatch.setenv("WATCHDOG_USEC", "2")  # a 1 us ping interval: every frame pings
    s = run(color_bundle, open_backend(color_bundle), "test://?num-buffers=40&width=64&height=48&fps=10", [],
            max_frames=8)
    messages = listener()
    assert s.frames == 8 and messages == ["READY=1"] + ["WATCHDOG=1"] * 8


def test_a_receiver_that_does_not_read_never_stalls_the_sender(listener):
    # the kernel queues only a few datagrams (net.unix.max_dgram_qlen, 10 by default); then pings are dropped
    sent = [notify("WATCHDOG=1") for _ in range(100)]
    assert sent[0] and not all(sent)
    assert 0 < len(listener()) < 100


def test_pings_are_rate_limited_to_half_the_watchdog_period(listener, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", str(60_000_000))  # WatchdogSec=60: a ping at most every 30 s
    dog = Watchdog()
    for _ in range(5):
        dog.alive()
    assert listener() == ["READY=1", "WATCHDOG=1"]
    monkeypatch.delenv("WATCHDOG_USEC")
    Watchdog().alive()  # no watchdog configured: READY only
    assert listener() == ["READY=1"]


def test_an_abstract_socket_name_is_understood(monkeypatch):
    name = f"edge-test-{id(monkeypatch)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("STATUS=ok")
        assert sock.recv(64) == b"STATUS=ok"
