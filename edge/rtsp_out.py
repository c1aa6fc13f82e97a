"""`--output rtsp://[host]:port/name`: the annotated stream served over RTSP (gst-rtsp-server).

One server per port for the whole process (several streams can be mounted on one port at different
names), its GLib main loop in a thread of its own. A mount is made when the stream's first frame arrives
(its size and rate fix the caps). Clients share one encoder (``set_shared``). Each client's media pulls
frames from an appsrc that we push every frame into while at least one client is connected; with no
client, frames cost nothing but the overlay.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from edge.errors import EdgeError
from edge.gst import gst

_servers: dict[tuple[str, int], Any] = {}
_lock = threading.Lock()


def _rtsp() -> Any:
    try:
        import gi

        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GstRtspServer
    except (ImportError, ValueError) as e:
        raise EdgeError(f"rtsp:// output needs gst-rtsp-server's GObject bindings (apt install "
                        f"gir1.2-gst-rtsp-server-1.0): {e}") from None
    return GstRtspServer


class _Server:
    """A gst-rtsp-server listening on ``host:port``, with its own GLib main loop thread."""

    def __init__(self, host: str, port: int) -> None:
        from gi.repository import GLib

        rtsp = _rtsp()
        self.context = GLib.MainContext.new()
        self.server = rtsp.RTSPServer(address=host, service=str(port))
        self.source_id = self.server.attach(self.context)
        if self.source_id == 0:
            raise EdgeError(f"--output rtsp://{host}:{port}: cannot listen on that port")
        self.loop = GLib.MainLoop.new(self.context, False)
        self.thread = threading.Thread(target=self.loop.run, name=f"edge-rtsp-{port}", daemon=True)
        self.thread.start()
        self.mounts = 0

    def release(self) -> None:
        self.mounts -= 1
        if self.mounts == 0:
            self.loop.quit()
            self.thread.join(5)
            self.context.find_source_by_id(self.source_id).destroy()


class RtspSink:
    """Serves the stream at ``rtsp://host:port/name`` from its first frame until ``close``."""

    def __init__(self, uri: str) -> None:
        parts = urlsplit(uri)
        self.uri, self.host, self.port = uri, parts.hostname or "0.0.0.0", parts.port
        self.path = parts.path.rstrip("/")
        if not self.port or not self.path or self.path.count("/") != 1:
            raise EdgeError(f"--output {uri!r}: expected rtsp://[host]:port/name")
        _rtsp()  # fail now, not at the first frame, if gst-rtsp-server is missing
        self.description = (f"{self._launch('W', 'H', 'FPS')} served at rtsp://{self.host}:{self.port}{self.path} "
                            "(gst-rtsp-server, shared)")
        self.server: _Server | None = None
        self.appsrcs: list[Any] = []
        self.lock = threading.Lock()
        self.count, self.duration = 0, 0

    def _mount(self, rgb: np.ndarray, fps: float) -> None:
        Gst, _ = gst()
        rtsp = _rtsp()
        h, w = rgb.shape[:2]
        num, den = (int(round(fps * 1000)), 1000) if fps > 0 else (30, 1)
        self.duration = Gst.SECOND * den // num
        with _lock:
            key = (self.host, self.port)
            if key not in _servers:
                _servers[key] = _Server(self.host, self.port)
            self.server = _servers[key]
            self.server.mounts += 1
        factory = rtsp.RTSPMediaFactory()
        factory.set_launch(self._launch(w, h, f"{num}/{den}"))
        factory.set_shared(True)
        factory.connect("media-configure", self._configure)
        self.factory = factory
        self.server.server.get_mount_points().add_factory(self.path, factory)

    @staticmethod
    def _launch(w: int | str, h: int | str, rate: str) -> str:
        from edge.sinks import encoder

        return (f"( appsrc name=src is-live=true format=time caps=video/x-raw,format=RGB,width={w},height={h},"
                f"framerate={rate} ! videoconvert ! video/x-raw,format=I420 ! {encoder()} ! rtph264pay name=pay0 "
                "pt=96 config-interval=1 )")

    def _configure(self, factory: Any, media: Any) -> None:
        src = media.get_element().get_by_name_recurse_up("src")
        media.connect("unprepared", lambda _m: self._forget(src))
        with self.lock:
            self.appsrcs.append(src)
            self.count = 0  # this media's clock starts at its first buffer

    def _forget(self, src: Any) -> None:
        with self.lock:
            if src in self.appsrcs:
                self.appsrcs.remove(src)

    def frame(self, rgb: np.ndarray, fps: float, decision: Any) -> None:
        from edge.sinks import draw_overlay

        Gst, _ = gst()
        if self.server is None:
            self._mount(rgb, fps)
        with self.lock:
            targets = list(self.appsrcs)
            pts = self.count * self.duration
            self.count += 1
        if not targets:
            return
        data = np.ascontiguousarray(draw_overlay(rgb, decision)).tobytes()
        for src in targets:
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts, buf.duration = pts, self.duration
            src.emit("push-buffer", buf)  # a client gone mid-push just drops the buffer

    def decision(self, d: Any) -> None:
        pass

    def event(self, e: dict[str, Any]) -> None:
        pass

    def close(self, ok: bool) -> None:
        if self.server is None:
            return
        with self.lock:
            targets, self.appsrcs = list(self.appsrcs), []
        for src in targets:
            src.emit("end-of-stream")
        self.server.server.get_mount_points().remove_factory(self.path)
        with _lock:
            self.server.release()
            if self.server.mounts == 0:
                _servers.pop((self.host, self.port), None)
