"""source ! videoconvert ! videoscale ! appsink -> window -> backend -> smoothing -> overlay -> sinks.

GStreamer does decoding, colour conversion and (on Jetson) the camera. Each stream has a capture thread
that pulls RGB frames from its appsink into a small bounded queue, a prepare thread that keeps the clip
window (or the online model's buffers) and asks the one inference thread (edge/batcher.py, which batches
the streams' requests) for scores, and an output thread that smooths them and feeds the stream's sinks:
the three overlap, so a frame is encoded while the next one's clip is inferred. EOS and Ctrl-C (or SIGTERM from
a service manager) end the run cleanly with every output finalized. A live source that drops after it
delivered frames is reconnected with backoff; a first connection that fails is a one-line EdgeError.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.backends import Backend
from edge.backends.tensorrt import in_fixed_batches
from edge.batcher import IN_FLIGHT, Batcher, Request
from edge.bundle import Bundle
from edge.errors import EdgeError
from edge.events import ActionTracker, Ema, Thresholds
from edge.gst import gst, launch
from edge.metrics import Metrics
from edge.motion import FrameFeed
from edge.online import OnlineModel
from edge.sinks import Decision, Sink, open_sink
from edge.sources import Source, parse_source
from edge.systemd import Watchdog
from edge.window import FlowWindow, ScoreSmoother, SlidingWindow, softmax

log = logging.getLogger(__name__)

PULL_TIMEOUT_S = 5.0  # no frame for this long: a stalled source
FRAME_QUEUE = 4  # frames a stream's capture (and prepare) thread may be ahead of the next thread
TRUNCATED_S = 0.25  # a file whose frames end this much before its declared duration is incomplete
JOIN_S = 5.0  # at shutdown, how long each thread gets to finish
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
    dropped: int = 0  # frames a live source dropped because the stream was behind
    batches: list[int] = field(default_factory=list)  # the size of every inference batch (all streams)
    latency: str = ""  # the stages' p50/p95/p99 (edge/metrics.py), filled at the end

    def counts(self, seconds: float) -> str:
        """The running counts, for ``--stats`` lines."""
        return (f"{self.frames} frames ({self.frames / max(seconds, 1e-9):.1f}/s), {self.decisions} decisions, "
                f"dropped {self.dropped}, reconnects {self.reconnects}")

    def describe(self) -> str:
        t = np.asarray(self.infer_ms or [0.0])
        how = "interrupted" if self.interrupted else "done"
        return (f"{how}: {self.frames} frames, {self.decisions} decisions in {self.wall_s:.1f} s "
                f"({self.frames / max(self.wall_s, 1e-9):.1f} fps); inference p50 {np.percentile(t, 50):.2f} ms, "
                f"p95 {np.percentile(t, 95):.2f} ms; reconnects {self.reconnects}; dropped {self.dropped}")


class SourceDropped(Exception):
    """A live source errored, ended, stalled or failed to reopen: retry it."""


class FrameReader:
    """Copies RGB frames out of one connection's samples, honouring the row stride. The layout (stride,
    size, fps) is read from the caps only when they change: PyGObject's VideoInfo and its fields cost about
    15 us a frame, which every stream's capture thread would otherwise spend holding the GIL."""

    def __init__(self, uri: str) -> None:
        self.uri = uri  # named in errors
        self._caps: Any = None
        self._layout: tuple[int, int, int, float] = (0, 0, 0, 0.0)

    def __call__(self, sample: Any) -> tuple[np.ndarray, float, float]:
        """(RGB frame in its own memory, not to be written to (unpadded rows come as a read-only view of the
        buffer's copy), stream time s, fps)."""
        Gst, GstVideo = gst()
        caps = sample.get_caps()
        if self._caps is None or not caps.is_equal(self._caps):
            info = GstVideo.VideoInfo.new_from_caps(caps)
            fps = info.fps_n / info.fps_d if info.fps_d and info.fps_n else 0.0
            self._caps, self._layout = caps, (info.stride[0], info.height, info.width, fps)
        stride, height, width, fps = self._layout
        buf = sample.get_buffer()
        data = buf.extract_dup(0, stride * height)
        if len(data) < stride * height:
            raise EdgeError(f"--source {self.uri}: a GStreamer buffer of {len(data)} bytes is too small for a "
                            f"{width}x{height} RGB frame")
        rows = np.frombuffer(data, np.uint8).reshape(height, stride)
        frame = rows.reshape(height, width, 3) if stride == width * 3 else rows[:, : width * 3].reshape(
            height, width, 3).copy()
        pts = buf.pts
        return frame, (pts / Gst.SECOND if pts != Gst.CLOCK_TIME_NONE else float("nan")), fps


def _bus_error(pipe) -> str | None:
    Gst, _ = gst()
    msg = pipe.get_bus().pop_filtered(Gst.MessageType.ERROR)
    if msg is None:
        return None
    err, _debug = msg.parse_error()
    return err.message


def _truncated(pipe: Any, end_s: float) -> str | None:
    """Why a file that reached EOS is incomplete: its frames stop well before the duration its container
    declares (a recording cut off mid-write). None when it is whole or declares no duration."""
    Gst, _ = gst()
    ok, duration = pipe.query_duration(Gst.Format.TIME)
    total = duration / Gst.SECOND if ok and duration > 0 else 0.0
    if total and end_s < total - TRUNCATED_S:
        return f"truncated or corrupt: its frames stop at {end_s:.2f} s of the {total:.2f} s it declares"
    return None


def frames(source: Source, reconnect: bool = False,
           stop: threading.Event | None = None) -> Iterator[tuple[np.ndarray, float, float, float]]:
    """(RGB frame, stream time, fps, seconds its sample took to copy out) for each frame of one connection
    to ``source``, ending at EOS. A live source that errors, ends or stalls
    for PULL_TIMEOUT_S after it started (or, when ``reconnect``, before) raises SourceDropped so the caller
    can retry; any other failure is a one-line EdgeError, so a first connection to a bad URI fails fast.
    Pulls in short slices to see bus errors (a vanished RTSP server) at once, not after the timeout."""
    Gst, _ = gst()
    pipe = launch(source.description)
    sink = pipe.get_by_name("sink")
    started, reason, end_s, read = False, None, 0.0, FrameReader(source.uri)
    try:
        if pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            reason = f"cannot be opened ({_bus_error(pipe) or 'state change failed'})"
        deadline = time.monotonic() + PULL_TIMEOUT_S
        while reason is None:
            if stop is not None and stop.is_set():
                return
            sample = sink.emit("try-pull-sample", int(POLL_S * Gst.SECOND))
            if sample is not None:
                started = True
                t0 = time.perf_counter()
                rgb, t, fps = read(sample)
                end_s = t + (1 / fps if fps else 0.0)
                yield rgb, t, fps, time.perf_counter() - t0
                deadline = time.monotonic() + PULL_TIMEOUT_S
            elif (error := _bus_error(pipe)) is not None:
                reason = error
            elif sink.props.eos:
                reason = EOS if source.live else _truncated(pipe, end_s) or EOS
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


@dataclass(frozen=True)
class Batching:
    """Frames of several streams in one backend call: up to ``max_batch``, waiting at most ``max_wait_ms``
    for the other streams after the first request (a lone stream never waits)."""

    max_batch: int = 8
    max_wait_ms: float = 10.0


_RESET, _END = "reset", "end"  # markers from a stream's capture thread down to its output thread


class _Stream:
    """One source, three threads joined by bounded queues: capture (GStreamer frames, reconnects), prepare
    (window or online step, preprocessing, the request to the batcher) and output (smoothing, events,
    outputs). While the batcher runs one frame's inference, the next frame is preprocessed and the last
    one encoded, so a fast backend is not held up by the stages around it."""

    def __init__(self, index: int, source: Source, sinks: list[Sink], run: _Run) -> None:
        self.index, self.src, self.sinks, self.run = index, source, sinks, run
        self.summary = RunSummary()
        self.frames: queue.Queue[Any] = queue.Queue(maxsize=FRAME_QUEUE)
        self.pending: queue.Queue[Any] = queue.Queue(maxsize=FRAME_QUEUE)  # prepared frames awaiting output
        self.error: BaseException | None = None
        self.partial = False  # its source failed after delivering frames: finalize the outputs anyway
        self.delivered = 0
        self.tracker = ActionTracker(run.bundle.labels, run.decisions.thresholds) if run.decisions.thresholds else None
        self.threads = [threading.Thread(target=self._guard, args=(body,), name=f"edge-{what}-{index}", daemon=True)
                        for what, body in (("capture", self._capture), ("prepare", self._prepare),
                                           ("output", self._output))]

    def _guard(self, body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as e:  # noqa: BLE001 - the main thread re-raises it and stops the other streams
            if self.error is None:  # the first error is the stream's
                self.error = e
                # a source that fails after it delivered frames (a truncated file, a camera given up on):
                # what it gave is kept
                self.partial = body == self._capture and isinstance(e, EdgeError) and self.delivered > 0
            self.run.stop.set()
        finally:
            if body == self._capture:
                self._put(_END)
            elif body == self._prepare:
                self._hand(_END)

    def _put(self, item: Any) -> None:
        """Queue an item for the prepare thread. A live source that is behind drops its oldest frame (counted)
        instead of growing latency; a file source waits for room (never drops), unless the run is stopping."""
        while True:
            try:
                self.frames.put(item, timeout=POLL_S)
                return
            except queue.Full:
                if self.src.live:
                    try:
                        if isinstance(self.frames.get_nowait(), tuple):
                            self.summary.dropped += 1  # Prometheus reads it from the summary (edge/metrics.py)
                    except queue.Empty:
                        pass
                elif self.run.stop.is_set():
                    return

    def _capture(self) -> None:
        """One connection after another until EOS, ``max_frames`` or stop. Once the stream has had frames,
        a drop or a failed reopen is retried after 0.25 s doubling up to 8 s; the count of consecutive
        failures (which sets the delay and is bounded by ``max_reconnects``) only resets after ``stable_s``
        of frames, so a flapping source backs off instead of reconnecting at the first step forever."""
        failures, run = 0, self.run
        while not run.stop.is_set():
            up_since = None
            try:
                for rgb, t, fps, capture_s in frames(self.src, reconnect=self.delivered > 0, stop=run.stop):
                    run.metrics.stage(self.index, "capture", capture_s)
                    item = (rgb, t, fps, time.perf_counter())  # when captured: the end-to-end clock starts
                    now = time.monotonic()
                    if up_since is None:
                        up_since = now
                        if failures:
                            log.info("%s: reconnected", self.src.uri)
                    elif now - up_since >= run.stable_s:
                        failures = 0
                    self._put(item)
                    self.delivered += 1
                    if run.max_frames is not None and self.delivered >= run.max_frames:
                        return
                return
            except SourceDropped as e:
                if run.max_reconnects and failures >= run.max_reconnects:
                    raise EdgeError(f"--source {self.src.uri}: still failing; giving up after {failures} "
                                    f"reconnect attempts ({e})") from None
                failures += 1
                self.summary.reconnects += 1
                delay = min(BACKOFF_S * 2 ** (failures - 1), BACKOFF_MAX_S)
                log.warning("%s: dropped (%s); reconnect %d in %.2f s", self.src.uri, e, failures, delay)
                self._put(_RESET)  # a reconnect restarts the window, the motion and the buffers
                run.watchdog.alive()  # waiting on purpose, not hung
                run.stop.wait(delay)

    def _prepare(self) -> None:
        """Window (or online step), preprocessing and the request for scores, frame by frame; every frame then
        goes on to the output thread in order. Preprocessing the next frame overlaps this one's inference,
        and a stream has at most ``IN_FLIGHT`` requests unscored (the batcher's rule): the next one waits
        for the oldest."""
        run, inflight = self.run, deque()
        try:
            state = self._fresh()
            while (item := self._next(self.frames)) is not _END:
                if item == _RESET:
                    self._settle(inflight, 0)  # the online buffers restart after the old connection's last frame
                    state = self._fresh()
                    self._hand(_RESET)
                    continue
                rgb, t, fps, captured = item
                x = self._prepared(state, rgb)
                request = None
                if x is not None:
                    self._settle(inflight, IN_FLIGHT - 1)
                    request = run.batcher.submit(self.index, x)
                    inflight.append(request)
                self._hand((rgb, t, fps, captured, request, time.perf_counter()))
        finally:
            self._settle(inflight, 0)  # counted as running until its last request is scored: later batches stay full
            run.batcher.stream_ended()

    def _output(self) -> None:
        """Scores to decisions, events and outputs, frame by frame in capture order."""
        run, smoother, current = self.run, self.run.decisions.smoother(), None
        scored = 0.0  # when this stream's last request got its scores: the next one was queued behind it
        while (item := self._next(self.pending)) is not _END:
            if item == _RESET:
                smoother = run.decisions.smoother()
                continue
            rgb, t, fps, captured, request, submitted = item
            if request is not None:
                current = self._decision(request, max(submitted, scored), smoother, t)
                scored = request.finished
                run.metrics.stage(self.index, "end_to_end", time.perf_counter() - captured)
                events = self.tracker.update(current.probs, current.t, current.frame) if self.tracker else []
                for s in self.sinks:
                    s.decision(current)
                    for e in events:
                        s.event(e)
            t_out = time.perf_counter()
            for s in self.sinks:
                s.frame(rgb, fps, current)
            run.metrics.stage(self.index, "output", time.perf_counter() - t_out)
            self.summary.frames += 1
            self.summary.last_t = t
            run.watchdog.alive()

    def _next(self, q: queue.Queue[Any]) -> Any:
        """The next item of ``q``; _END once the run stops with nothing more queued."""
        while True:
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                if self.run.stop.is_set():
                    return _END

    def _hand(self, item: Any) -> None:
        """Pass an item to the output thread, waiting for room (never dropped) unless the run is stopping."""
        while not self.run.stop.is_set():
            try:
                self.pending.put(item, timeout=POLL_S)
                return
            except queue.Full:
                pass

    def _settle(self, inflight: deque[Request], keep: int) -> None:
        """Wait until at most ``keep`` of this stream's requests (oldest first) are unscored, or the run stops."""
        while len(inflight) > keep:
            request = inflight.popleft()
            while not request.done.wait(POLL_S) and not self.run.stop.is_set():
                pass

    def _fresh(self) -> tuple[SlidingWindow, FrameFeed, FlowWindow | None]:
        bundle = self.run.bundle
        if isinstance(self.run.backend, OnlineModel):
            self.run.backend.reset(self.index)
        flow = FlowWindow(bundle.clip, bundle.flow) if bundle.flow is not None else None
        return SlidingWindow(bundle.clip), FrameFeed(bundle.motion, bundle.preprocess.resize), flow

    def _prepared(self, state: tuple, rgb: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray] | None:
        """The model's input when a decision is due at this frame (None: not yet)."""
        window, feed, flow = state
        bundle, backend, metrics = self.run.bundle, self.run.backend, self.run.metrics
        t0 = time.perf_counter()
        if flow is not None:  # a two-stream model: this frame's optical flow, its own stage
            flow.push(rgb)
            flow_done = time.perf_counter()
            metrics.stage(self.index, "flow", flow_done - t0)
            t0 = flow_done
        x: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None
        if isinstance(backend, OnlineModel):
            if backend.wants(self.index):
                x = bundle.preprocess.frame(rgb)
        else:
            clips = [c for image in feed(rgb) if (c := window.push(bundle.preprocess.frame(image))) is not None]
            if clips:
                x = clips[-1] if flow is None else (clips[-1], flow.clip())
        metrics.stage(self.index, "preprocess", time.perf_counter() - t0)
        return x

    def _decision(self, request: Request, due: float, smoother: Callable[[np.ndarray], np.ndarray],
                  t: float) -> Decision:
        """``due``: when the request could start, its submission or its stream's previous result if later."""
        logits = request.wait()
        t2 = time.perf_counter()
        # due to scored: the wait for a batch included, the output thread's delay in noticing not
        self.run.metrics.stage(self.index, "inference", request.finished - due)
        probs = smoother(softmax(logits))
        order = np.argsort(probs)[::-1][:5]
        labels = self.run.bundle.labels
        self.summary.decisions += 1
        self.summary.infer_ms.append(request.ms)
        self.run.metrics.stage(self.index, "postprocess", time.perf_counter() - t2)
        return Decision(t=t, frame=self.summary.frames, label=labels[order[0]], score=float(probs[order[0]]),
                        top5=[(labels[i], float(probs[i])) for i in order], infer_ms=request.ms, probs=probs)

    def finish(self, ok: bool) -> None:
        """Close the actions still on, then the outputs (``ok``: finalize the files). A stream whose source
        failed after frames also finalizes them, with an ``error`` event as the last line."""
        ok = ok or self.partial
        events = self.tracker.finish(self.summary.last_t, self.summary.frames) if self.tracker and ok else []
        if self.partial:
            events.append({"event": "error", "t": self.summary.last_t, "frame": self.summary.frames,
                           "message": str(self.error)})
        for e in events:
            for s in self.sinks:
                s.event(e)
        for s in self.sinks:
            s.close(ok)


@dataclass
class _Run:
    bundle: Bundle
    backend: Backend | OnlineModel
    decisions: Decisions
    max_frames: int | None
    max_reconnects: int
    stable_s: float
    stop: threading.Event = field(default_factory=threading.Event)
    watchdog: Watchdog = field(default_factory=Watchdog)  # READY=1 / WATCHDOG=1 under systemd; else a no-op
    batcher: Any = None
    metrics: Any = None


def _run_batch(backend: Backend | OnlineModel) -> Callable[[list[Request]], list[np.ndarray]]:
    """One backend call for a batch of requests: clips stacked on the batch axis (in a TensorRT engine's
    fixed batch: split and padded to it), or the online model's frames with each stream's buffers."""
    if isinstance(backend, OnlineModel):
        return lambda batch: backend.step_batch([(r.stream, r.x) for r in batch])
    fixed = getattr(backend, "batch", None)

    def run_batch(batch: list[Request]) -> list[np.ndarray]:
        if isinstance(batch[0].x, tuple):  # a two-stream model: each input stacked on its own
            return list(backend.infer(tuple(np.concatenate(xs) for xs in zip(*(r.x for r in batch)))))
        x = batch[0].x if len(batch) == 1 else np.concatenate([r.x for r in batch])  # a lone clip: no copy
        if fixed:
            return list(in_fixed_batches(lambda f: {"y": backend.infer(f["x"])}, {"x": x}, fixed)["y"])
        return list(backend.infer(x))

    return run_batch


@dataclass(frozen=True)
class Monitoring:
    """``stats_s``: log every stream's counts and stage latencies this often (None: only at exit);
    ``metrics_port``: serve them in Prometheus' text format on this port (None: not served)."""

    stats_s: float | None = None
    metrics_port: int | None = None


def run_streams(bundle: Bundle, backend: Backend | OnlineModel, sources: list[str], outputs: list[list[str]],
                max_frames: int | None = None, max_reconnects: int = 0, stable_s: float = STABLE_S,
                decisions: Decisions | None = None, batching: Batching | None = None,
                monitoring: Monitoring | None = None) -> list[RunSummary]:
    """Classify every source until each ends (EOS or ``max_frames``) or Ctrl-C / SIGTERM; ``outputs[i]`` are
    stream i's output URIs. Each stream has its own window (or online buffers), reconnects and outputs; their
    inference requests are batched (``batching``). The first error in any stream stops them all and is
    raised here once every output is closed. Returns each stream's summary, its stage latencies included."""
    batching, monitoring = batching or Batching(), monitoring or Monitoring()
    run = _Run(bundle, backend, decisions or Decisions(), max_frames, max_reconnects, stable_s)
    srcs = [parse_source(s) for s in sources]
    streams: list[_Stream] = []
    t0 = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # systemd stop == Ctrl-C
    interrupted = False
    try:
        for i, (src, uris) in enumerate(zip(srcs, outputs)):
            streams.append(_Stream(i, src, [], run))
            for u in uris:  # one by one: those opened before a bad one are closed (and removed) below
                streams[-1].sinks.append(open_sink(u))
        run.metrics = Metrics([st.summary for st in streams])
        if monitoring.metrics_port is not None:
            try:
                run.metrics.serve(monitoring.metrics_port)
            except OSError as e:
                raise EdgeError(f"--metrics-port {monitoring.metrics_port}: cannot listen ({e.strerror})") from None
        run.batcher = Batcher(_run_batch(backend), len(streams), batching.max_batch, batching.max_wait_ms / 1e3)
        for st in streams:
            for th in st.threads:
                th.start()
        next_stats = time.monotonic() + (monitoring.stats_s or float("inf"))
        while any(th.is_alive() for st in streams for th in st.threads):
            for st in streams:
                for th in st.threads:
                    th.join(POLL_S)
            if time.monotonic() >= next_stats:
                next_stats += monitoring.stats_s
                for st in streams:
                    log.info("%s: %s; %s", st.src.uri, st.summary.counts(time.perf_counter() - t0),
                             run.metrics.line(st.index))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        run.stop.set()
        for st in streams:
            for th in st.threads:
                if th.ident is not None:  # started
                    th.join(JOIN_S)  # bounded: a stuck thread is a daemon and dies with the process
        if run.batcher is not None:
            run.batcher.close()
        signal.signal(signal.SIGTERM, previous)
        error = next((st.error for st in streams if st.error is not None), None)
        ok = error is None or isinstance(error, KeyboardInterrupt)
        for st in streams:
            st.finish(ok)
            st.summary.interrupted = interrupted
            st.summary.wall_s = time.perf_counter() - t0
            if run.batcher is not None:
                st.summary.batches = run.batcher.sizes
            if run.metrics is not None:
                st.summary.latency = run.metrics.line(st.index)
        if run.metrics is not None:
            run.metrics.close()
    if error is not None and not isinstance(error, KeyboardInterrupt):
        raise error
    return [st.summary for st in streams]


def read_sources(path: Path) -> list[str]:
    """``--sources FILE``: one URI per line; blank lines and # comments skipped."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise EdgeError(f"--sources {path}: cannot read it ({e.strerror})") from None
    uris = [ln.split("#", 1)[0].strip() for ln in lines]
    if not any(uris):
        raise EdgeError(f"--sources {path}: no source URIs in it")
    return [u for u in uris if u]


def stream_outputs(outputs: list[str], n: int) -> list[list[str]]:
    """Each stream's output URIs: ``{stream}`` becomes its number. With several streams every output except
    display:// must name the stream, so two streams never write one file or one port."""
    if n > 1:
        shared = [o for o in outputs if "{stream}" not in o and not o.startswith("display://")]
        if shared:
            raise EdgeError(f"--output {shared[0]}: {n} streams would share it; put {{stream}} in it "
                            "(file://out_{stream}.mp4)")
    return [[o.replace("{stream}", str(i)) for o in outputs] for i in range(n)]


def describe_pipelines(sources: list[str], outputs: list[list[str]]) -> str:
    """Every stream's GStreamer source pipeline and output branches, as this machine would build them (its
    decoders, converters and encoders; W, H and FPS are the source's, known at its first frame). Nothing
    is opened for writing: each output is built and dropped."""
    lines = []
    for i, (uri, uris) in enumerate(zip(sources, outputs)):
        lines.append(f"stream {i} source {uri}: {parse_source(uri).description}")
        for u in uris:
            sink = open_sink(u)
            lines.append(f"stream {i} output {u}: {sink.description}")
            sink.close(False)
    return "\n".join(lines)


def run(bundle: Bundle, backend: Backend | OnlineModel, source: str, outputs: list[str],
        max_frames: int | None = None, smoothing: int = 1, max_reconnects: int = 0,
        stable_s: float = STABLE_S, decisions: Decisions | None = None) -> RunSummary:
    """Classify ``source`` until EOS, ``max_frames`` or Ctrl-C; returns what happened (``run_streams`` with
    one stream). A live source that drops is reconnected with backoff, forever unless ``max_reconnects``
    bounds the consecutive attempts. ``backend``: a clip model's (sliding window), or an ``OnlineModel``
    (a decision per frame it takes); ``smoothing``: decisions are the mean of the last that many
    probability vectors (``decisions`` gives the EMA and action thresholds instead). Actions still on at
    the end are closed with an event."""
    return run_streams(bundle, backend, [source], [outputs], max_frames, max_reconnects, stable_s,
                       decisions or Decisions(smoothing))[0]
