"""Output URIs: file://out.mp4, json://events.jsonl, display://, rtp://host:port, rtsp://[host]:port/name
(served: edge/rtsp_out.py).

The JSON output has one line per decision and, with thresholds (edge/events.py), one per action event.

Files are written to a temporary name and renamed only once finalized (mp4 after EOS has flushed the
muxer, jsonl after its last line), so a killed run never leaves a half-written, unplayable file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import cv2
import numpy as np

from edge.atomic import finalize, temp_beside
from edge.errors import EdgeError
from edge.gst import gst, has_element, launch

SCHEMES = ("file", "json", "display", "rtp", "rtsp")


@dataclass
class Decision:
    t: float
    frame: int
    label: str
    score: float
    top5: list[tuple[str, float]]
    infer_ms: float
    probs: np.ndarray | None = None  # every class's smoothed probability (what thresholds look at)


class Sink(Protocol):
    def frame(self, rgb: np.ndarray, fps: float, decision: Decision | None) -> None: ...
    def decision(self, d: Decision) -> None: ...
    def event(self, e: dict[str, Any]) -> None: ...
    def close(self, ok: bool) -> None: ...


def draw_overlay(rgb: np.ndarray, d: Decision | None) -> np.ndarray:
    """The current label and score in a dark band at the top, scaled to the frame."""
    out = rgb.copy()
    if d is None:
        return out
    h, w = out.shape[:2]
    scale = max(0.3, w / 640)
    band = max(14, int(28 * scale))
    out[:band] = (out[:band] * 0.35).astype(out.dtype)
    cv2.putText(out, f"{d.label} {d.score:.2f}", (4, band - max(3, int(8 * scale))), cv2.FONT_HERSHEY_SIMPLEX,
                0.7 * scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    return out


# H.264 encoders, best first: Jetson's, NVIDIA desktop GPUs' and VA-API's hardware ones (chosen automatically
# where their GStreamer plugin registered them), then software; EDGE_H264_ENCODER=<element> forces one.
ENCODERS = (("nvv4l2h264enc", "nvvidconv ! video/x-raw(memory:NVMM),format=I420 ! "
                              "nvv4l2h264enc insert-sps-pps=true idrinterval=30"),
            ("nvh264enc", "nvh264enc zerolatency=true gop-size=30"),
            ("vah264enc", "videoconvert ! video/x-raw,format=NV12 ! vah264enc"),  # VA-API (Intel/AMD GPUs)
            ("x264enc", "x264enc speed-preset=ultrafast tune=zerolatency key-int-max=30"),
            ("openh264enc", "openh264enc"), ("avenc_h264_omx", "avenc_h264_omx"))


def encoder() -> str:
    """The best H.264 encoder GStreamer has here (``ENCODERS``), as a launch fragment taking I420 frames."""
    forced = os.environ.get("EDGE_H264_ENCODER")
    for name, desc in ENCODERS:
        if (name == forced or forced is None) and has_element(name):
            return desc
    if forced is not None:
        raise EdgeError(f"EDGE_H264_ENCODER={forced}: not an H.264 encoder GStreamer has here "
                        f"(known: {', '.join(n for n, _ in ENCODERS)})")
    raise EdgeError("no H.264 encoder in GStreamer (install gstreamer1.0-plugins-ugly for x264enc)")


def display_sink() -> str:
    """Jetson's EGL sink through the hardware converter where it exists, else whatever autovideosink picks."""
    return "nvvidconv ! nveglglessink sync=false" if has_element("nveglglessink") else "autovideosink sync=false"


class AppSrcSink:
    """Frames (with the overlay) pushed into a GStreamer branch: encoder + mp4, a window, or RTP."""

    def __init__(self, uri: str, tail: str, tmp: Path | None = None, final: Path | None = None) -> None:
        self.uri, self.tail, self.tmp, self.final = uri, tail, tmp, final
        self.pipe = self.src = None
        self.count = 0

    @property
    def description(self) -> str:
        """The branch's launch string (the frame size and rate are the source's, known at the first frame)."""
        return f"appsrc caps=video/x-raw,format=RGB,width=W,height=H,framerate=FPS ! videoconvert ! {self.tail}"

    def _start(self, rgb: np.ndarray, fps: float) -> None:
        Gst, _ = gst()
        h, w = rgb.shape[:2]
        num, den = (int(round(fps * 1000)), 1000) if fps > 0 else (30, 1)
        self.duration = Gst.SECOND * den // num
        self.pipe = launch(f"appsrc name=src format=time is-live=false block=true caps=video/x-raw,format=RGB,"
                           f"width={w},height={h},framerate={num}/{den} ! videoconvert ! {self.tail}")
        self.src = self.pipe.get_by_name("src")
        self.pipe.set_state(Gst.State.PLAYING)

    def frame(self, rgb: np.ndarray, fps: float, decision: Decision | None) -> None:
        Gst, _ = gst()
        if self.pipe is None:
            self._start(rgb, fps)
        buf = Gst.Buffer.new_wrapped(np.ascontiguousarray(draw_overlay(rgb, decision)).tobytes())
        buf.pts, buf.duration = self.count * self.duration, self.duration
        self.count += 1
        if self.src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
            raise EdgeError(f"--output {self.uri}: the encoder stopped accepting frames")

    def decision(self, d: Decision) -> None:
        pass

    def event(self, e: dict[str, Any]) -> None:
        pass

    def close(self, ok: bool) -> None:
        Gst, _ = gst()
        if self.pipe is not None:
            self.src.emit("end-of-stream")
            msg = self.pipe.get_bus().timed_pop_filtered(10 * Gst.SECOND,
                                                         Gst.MessageType.EOS | Gst.MessageType.ERROR)
            self.pipe.set_state(Gst.State.NULL)
            ok = ok and msg is not None and msg.type == Gst.MessageType.EOS
        if self.final is not None:  # a file: the temp file becomes it, or goes
            if ok and self.count and self.tmp.exists():
                finalize(self.tmp, self.final)
            elif self.tmp.exists():
                self.tmp.unlink()


class JsonSink:
    """One JSON line per decision, flushed as it happens (tail -f friendly), renamed into place at close."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = temp_beside(final)
        self.f = open(self.tmp, "w")  # noqa: SIM115 - held open for the whole run, closed in close()
        self.description = f"JSON lines (decisions, action events) -> {final}"

    def frame(self, rgb: np.ndarray, fps: float, decision: Decision | None) -> None:
        pass

    def decision(self, d: Decision) -> None:
        self.f.write(json.dumps({"t": round(d.t, 4), "frame": d.frame, "label": d.label, "score": round(d.score, 5),
                                 "top5": [[lab, round(s, 5)] for lab, s in d.top5],
                                 "infer_ms": round(d.infer_ms, 3)}) + "\n")
        self.f.flush()

    def event(self, e: dict[str, Any]) -> None:
        """An action event, on its own line: ``{"event": "action_started" | "action_ended", ...}``."""
        self.f.write(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in e.items()}) + "\n")
        self.f.flush()

    def close(self, ok: bool) -> None:
        self.f.close()
        if ok:  # Ctrl-C counts as ok: the events up to it are complete lines
            finalize(self.tmp, self.final)
        else:  # the run failed: leave nothing that looks like a result
            self.tmp.unlink(missing_ok=True)


def open_sink(uri: str) -> Sink:
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        raise EdgeError(f"--output {uri!r}: unknown scheme (expected one of: "
                        + ", ".join(f"{s}://" for s in SCHEMES) + ")")
    if parts.scheme in ("file", "json"):
        final = Path(parts.netloc + parts.path).expanduser()
        if not final.name or uri.endswith("/") or final.is_dir():
            raise EdgeError(f"--output {uri!r}: expected a file name, not a directory")
        if not final.parent.is_dir():
            raise EdgeError(f"--output {uri}: directory does not exist: {final.parent}")
        if parts.scheme == "json":
            return JsonSink(final)
        if final.suffix.lower() not in (".mp4", ".mkv"):
            raise EdgeError(f"--output {uri}: expected a .mp4 or .mkv file name")
        mux = "mp4mux" if final.suffix.lower() == ".mp4" else "matroskamux"
        tmp = temp_beside(final)
        return AppSrcSink(uri, f"video/x-raw,format=I420 ! {encoder()} ! h264parse ! {mux} ! "
                               f"filesink location=\"{tmp}\"", tmp, final)
    if parts.scheme == "rtsp":
        from edge.rtsp_out import RtspSink

        return RtspSink(uri)
    if parts.scheme == "display":
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise EdgeError(f"--output {uri}: no display here (DISPLAY/WAYLAND_DISPLAY unset)")
        return AppSrcSink(uri, display_sink())
    host, port = parts.hostname, parts.port
    if not host or not port:
        raise EdgeError(f"--output {uri!r}: expected rtp://host:port")
    return AppSrcSink(uri, f"video/x-raw,format=I420 ! {encoder()} ! rtph264pay config-interval=1 pt=96 ! "
                           f"udpsink host={host} port={port} sync=false")
