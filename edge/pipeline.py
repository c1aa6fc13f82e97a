"""source ! videoconvert ! videoscale ! appsink -> window -> backend -> smoothing -> overlay -> sinks.

GStreamer does decoding, colour conversion and (on Jetson) the camera; Python pulls RGB frames from the
appsink, keeps the clip window, runs the backend and feeds the sinks. EOS and Ctrl-C (or SIGTERM from a
service manager) end the run cleanly with every output finalized. A live source that drops after it
delivered frames is reconnected with backoff; a first connection that fails is a one-line EdgeError.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from edge.backends import Backend
from edge.bundle import Bundle
from edge.errors import EdgeError
from edge.events import ActionTracker, Ema, Thresholds
from edge.gst import gst, launch
from edge.motion import FrameFeed
from edge.online import OnlineModel
from edge.sinks import Decision, Sink, open_sink
from edge.sources import Source, parse_source
from edge.systemd import Watchdog
from edge.window import ScoreSmoother, SlidingWindow, softmax

log = logging.getLogger(__name__)

PULL_TIMEOUT_S = 5.0  # no frame for this long: a stalled source
POLL_S = 0.1  # how often a wait for a frame looks at the bus for errors
EOS = "end of stream"
BACKOFF_S, BACKOFF_MAX_S = 0.25, 8.0  # reconnect delay: doubles per consecutive failure, capped
STABLE_S = 10.0  # a source up this long with frames arriving is healthy again: failures reset


@dataclass
class RunSummary:
    frames: int = 0
    decisions: int = 0
    reconnects: int = 0
    wall_s: float = 0.0
    infer_ms: list[float] = field(default_factory=list)
    interrupted: bool = False
    last_t: float = 0.0  # stream time of the last frame: when actions still on at the end are closed

    def describe(self) -> str:
        t = np.asarray(self.infer_ms or [0.0])
        how = "interrupted" if self.interrupted else "done"
        return (f"{how}: {self.frames} frames, {self.decisions} decisions in {self.wall_s:.1f} s "
                f"({self.frames / max(self.wall_s, 1e-9):.1f} fps); inference p50 {np.percentile(t, 50):.2f} ms, "
                f"p95 {np.percentile(t, 95):.2f} ms; reconnects {self.reconnects}")


class SourceDropped(Exception):
    """A live source errored, ended, stalled or failed to reopen: retry it."""


def _frame_from_sample(sample) -> tuple[np.ndarray, float, float]:
    """(RGB frame copied out of the buffer, stream time s, fps) honouring the row stride."""
    Gst, GstVideo = gst()
    info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
    buf = sample.get_buffer()
    ok, m = buf.map(Gst.MapFlags.READ)
    if not ok:
        raise EdgeError("cannot map a GStreamer buffer")
    try:
        stride = info.stride[0]
        rows = np.frombuffer(m.data, np.uint8, count=stride * info.height).reshape(info.height, stride)
        frame = rows[:, : info.width * 3].reshape(info.height, info.width, 3).copy()
    finally:
        buf.unmap(m)
    t = buf.pts / Gst.SECOND if buf.pts != Gst.CLOCK_TIME_NONE else float("nan")
    fps = info.fps_n / info.fps_d if info.fps_d and info.fps_n else 0.0
    return frame, t, fps


def _bus_error(pipe) -> str | None:
    Gst, _ = gst()
    msg = pipe.get_bus().pop_filtered(Gst.MessageType.ERROR)
    if msg is None:
        return None
    err, _debug = msg.parse_error()
    return err.message


def frames(source: Source, reconnect: bool = False) -> Iterator[tuple[np.ndarray, float, float]]:
    """Frames of one connection to ``source``, ending at EOS. A live source that errors, ends or stalls
    for PULL_TIMEOUT_S after it started (or, when ``reconnect``, before) raises SourceDropped so the caller
    can retry; any other failure is a one-line EdgeError, so a first connection to a bad URI fails fast.
    Pulls in short slices to see bus errors (a vanished RTSP server) at once, not after the timeout."""
    Gst, _ = gst()
    pipe = launch(source.description)
    sink = pipe.get_by_name("sink")
    started, reason = False, None
    try:
        if pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            reason = f"cannot be opened ({_bus_error(pipe) or 'state change failed'})"
        deadline = time.monotonic() + PULL_TIMEOUT_S
        while reason is None:
            sample = sink.emit("try-pull-sample", int(POLL_S * Gst.SECOND))
            if sample is not None:
                started = True
                yield _frame_from_sample(sample)
                deadline = time.monotonic() + PULL_TIMEOUT_S
            elif (error := _bus_error(pipe)) is not None:
                reason = error
            elif sink.props.eos:
                reason = EOS
            elif time.monotonic() > deadline:
                reason = f"no frames within {PULL_TIMEOUT_S:.0f} s"
        if source.live and (started or reconnect):
            raise SourceDropped(reason)
        if reason != EOS:
            raise EdgeError(f"--source {source.uri}: {reason}")
    finally:
        pipe.set_state(Gst.State.NULL)


@dataclass(frozen=True)
class Decisions:
    """How scores become decisions and events: ``smoothing`` (mean of the last N probability vectors) or
    ``ema`` (exponential weight), and ``thresholds`` for action events (None: decisions only)."""

    smoothing: int = 1
    ema: float | None = None
    thresholds: Thresholds | None = None

    def smoother(self) -> Callable[[np.ndarray], np.ndarray]:
        return ScoreSmoother(self.smoothing) if self.ema is None else Ema(self.ema)


def run(bundle: Bundle, backend: Backend | OnlineModel, source: str, outputs: list[str],
        max_frames: int | None = None, smoothing: int = 1, max_reconnects: int = 0,
        stable_s: float = STABLE_S, decisions: Decisions | None = None) -> RunSummary:
    """Classify ``source`` until EOS, ``max_frames`` or Ctrl-C; returns what happened. A live source that
    drops is reconnected with backoff, forever unless ``max_reconnects`` bounds the consecutive attempts.
    ``backend``: a clip model's (sliding window), or an ``OnlineModel`` (a decision per frame it takes);
    ``smoothing``: decisions are the mean of the last that many probability vectors (``decisions`` gives
    the EMA and action thresholds instead). Actions still on at the end are closed with an event."""
    decisions = decisions or Decisions(smoothing)
    src = parse_source(source)
    sinks: list[Sink] = []
    summary = RunSummary()
    tracker = ActionTracker(bundle.labels, decisions.thresholds) if decisions.thresholds else None
    t0 = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # systemd stop == Ctrl-C
    ok = False
    try:
        sinks = [open_sink(o) for o in outputs]
        _loop(bundle, backend, src, sinks, summary, max_frames, decisions, tracker, max_reconnects, stable_s)
        ok = True
    except KeyboardInterrupt:
        summary.interrupted, ok = True, True
    finally:
        signal.signal(signal.SIGTERM, previous)
        for e in tracker.finish(summary.last_t, summary.frames) if tracker and ok else []:
            for s in sinks:
                s.event(e)
        for s in sinks:
            s.close(ok)
        summary.wall_s = time.perf_counter() - t0
    return summary


def _loop(bundle: Bundle, backend: Backend | OnlineModel, src: Source, sinks: list[Sink], summary: RunSummary,
          max_frames: int | None, decisions: Decisions, tracker: ActionTracker | None, max_reconnects: int,
          stable_s: float) -> None:
    """One connection after another until EOS or ``max_frames``. Once the run has had frames, a drop or
    a failed reopen is retried after 0.25 s doubling up to 8 s; the count of consecutive failures (which
    sets the delay and is bounded by ``max_reconnects``) only resets after ``stable_s`` of frames, so a
    flapping source backs off instead of reconnecting at the first step forever."""
    failures = 0
    watchdog = Watchdog()  # READY=1 / WATCHDOG=1 under systemd (jetson/edge.service); a no-op elsewhere
    while True:
        window, smoother, current, up_since = SlidingWindow(bundle.clip), decisions.smoother(), None, None
        feed = FrameFeed(bundle.motion, bundle.preprocess.resize)  # a reconnect restarts the motion as the window
        if isinstance(backend, OnlineModel):
            backend.reset()  # and the online model's buffers
        try:
            for rgb, t, fps in frames(src, reconnect=summary.frames > 0):
                now = time.monotonic()
                if up_since is None:
                    up_since = now
                    if failures:
                        log.info("%s: reconnected", src.uri)
                elif now - up_since >= stable_s:
                    failures = 0
                decision = _step(bundle, backend, feed, window, smoother, rgb, t, summary)
                if decision is not None:
                    current = decision
                    events = tracker.update(decision.probs, decision.t, decision.frame) if tracker else []
                    for s in sinks:
                        s.decision(decision)
                        for e in events:
                            s.event(e)
                for s in sinks:
                    s.frame(rgb, fps, current)
                summary.frames += 1
                summary.last_t = t
                watchdog.alive()
                if max_frames is not None and summary.frames >= max_frames:
                    return
            return
        except SourceDropped as e:
            if max_reconnects and failures >= max_reconnects:
                raise EdgeError(f"--source {src.uri}: still failing; giving up after {failures} reconnect "
                                f"attempts ({e})") from None
            failures += 1
            summary.reconnects += 1
            delay = min(BACKOFF_S * 2 ** (failures - 1), BACKOFF_MAX_S)
            log.warning("%s: dropped (%s); reconnect %d in %.2f s", src.uri, e, failures, delay)
            watchdog.alive()  # waiting on purpose, not hung
            time.sleep(delay)


def _step(bundle: Bundle, backend: Backend | OnlineModel, feed: FrameFeed, window: SlidingWindow,
          smoother: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray, t: float,
          summary: RunSummary) -> Decision | None:
    if isinstance(backend, OnlineModel):
        if not backend.wants():
            return None
        frame = bundle.preprocess.frame(rgb)
        t_inf = time.perf_counter()
        logits = backend.step(frame)
    else:
        clips = [c for image in feed(rgb) if (c := window.push(bundle.preprocess.frame(image))) is not None]
        if not clips:
            return None
        t_inf = time.perf_counter()
        logits = backend.infer(clips[-1])[0]
    ms = (time.perf_counter() - t_inf) * 1e3
    probs = smoother(softmax(logits))
    order = np.argsort(probs)[::-1][:5]
    summary.decisions += 1
    summary.infer_ms.append(ms)
    return Decision(t=t, frame=summary.frames, label=bundle.labels[order[0]], score=float(probs[order[0]]),
                    top5=[(bundle.labels[i], float(probs[i])) for i in order], infer_ms=ms, probs=probs)
