"""Source URIs -> GStreamer pipeline descriptions ending in an RGB appsink named ``sink``.

file://x.mp4 (any container/codec decodebin handles), test:// (videotestsrc), v4l2:///dev/videoN,
rtsp://host/path, csi://N (Jetson CSI camera through nvarguscamerasrc). Live sources (v4l2, rtsp, csi,
and test:// with is-live=true) drop stale frames instead of queueing them and are reconnected when they
drop; file and non-live test sources end at EOS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from edge.errors import EdgeError
from edge.gst import has_element

SCHEMES = ("file", "test", "v4l2", "rtsp", "csi")
_TO_RGB = "videoconvert ! videoscale ! video/x-raw,format=RGB"


@dataclass(frozen=True)
class Source:
    uri: str
    description: str
    live: bool


def _appsink(live: bool) -> str:
    # live: keep only the newest frames (latency over completeness); files: never drop a frame
    opts = "max-buffers=2 drop=true" if live else "max-buffers=8 drop=false"
    return f"appsink name=sink sync=false emit-signals=false {opts}"


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_source(uri: str) -> Source:
    parts = urlsplit(uri)
    scheme = parts.scheme
    if scheme not in SCHEMES:
        raise EdgeError(f"--source {uri!r}: unknown scheme (expected one of: "
                        + ", ".join(f"{s}://" for s in SCHEMES) + ")")
    q = dict(parse_qsl(parts.query))
    if scheme == "file":
        path = Path(parts.netloc + parts.path).expanduser()
        if not path.is_file():
            raise EdgeError(f"--source {uri}: no such file: {path}")
        return Source(uri, f"filesrc location={_quote(str(path.resolve()))} ! decodebin ! {_TO_RGB} ! "
                           + _appsink(False), live=False)
    if scheme == "test":
        live = q.get("is-live", "false").lower() in ("1", "true", "yes")
        w, h, fps = int(q.get("width", 320)), int(q.get("height", 240)), int(q.get("fps", 15))
        n = int(q.get("num-buffers", -1))
        desc = (f"videotestsrc pattern={q.get('pattern', 'ball')} num-buffers={n} is-live={str(live).lower()} "
                f"! video/x-raw,width={w},height={h},framerate={fps}/1 ! {_TO_RGB} ! " + _appsink(live))
        return Source(uri, desc, live)
    if scheme == "v4l2":
        dev = parts.path or "/dev/video0"
        if not Path(dev).exists():
            raise EdgeError(f"--source {uri}: no such device: {dev}")
        return Source(uri, f"v4l2src device={dev} ! {_TO_RGB} ! " + _appsink(True), live=True)
    if scheme == "rtsp":
        latency = int(q.get("latency", 200))
        return Source(uri, f"rtspsrc location={_quote(uri)} latency={latency} ! decodebin ! {_TO_RGB} ! "
                           + _appsink(True), live=True)
    if not has_element("nvarguscamerasrc"):
        raise EdgeError(f"--source {uri}: nvarguscamerasrc is not installed (CSI cameras need a Jetson "
                        "with JetPack's GStreamer plugins)")
    sensor = parts.netloc or "0"
    w, h, fps = int(q.get("width", 1280)), int(q.get("height", 720)), int(q.get("fps", 30))
    return Source(uri, f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={w},height={h},"
                       f"framerate={fps}/1 ! nvvidconv ! video/x-raw,format=BGRx ! {_TO_RGB} ! "
                       + _appsink(True), live=True)
