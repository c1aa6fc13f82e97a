"""systemd's notify protocol (sd_notify(3)) without libsystemd: one datagram to $NOTIFY_SOCKET.

`edge run` under the shipped unit (jetson/edge.service, Type=notify, WatchdogSec=) says READY=1 when its
pipeline loop starts and WATCHDOG=1 while it is alive: after each frame, and while it waits to reconnect a
dropped source (an outage is handled by the reconnect logic; the watchdog is for a process that hangs, a
stuck decoder, a wedged GPU call). Outside systemd (no $NOTIFY_SOCKET) every call is a no-op."""

from __future__ import annotations

import os
import socket
import time


def notify(message: str) -> bool:
    """Send ``message`` (e.g. "READY=1") to systemd; False when not run by systemd or the socket is gone."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # "@name": Linux's abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)  # a receiver whose queue is full must not stall the video
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:  # gone, or full (BlockingIOError): a lost ping, not a stuck pipeline
        return False
    return True


class Watchdog:
    """READY=1 once, then WATCHDOG=1 at most every half of $WATCHDOG_USEC (systemd's advice)."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.interval = int(usec) / 2e6 if usec.isdigit() else None
        self.last = float("-inf")
        notify("READY=1")

    def alive(self) -> None:
        now = time.monotonic()
        if self.interval is not None and now - self.last >= self.interval:
            self.last = now
            notify("WATCHDOG=1")
