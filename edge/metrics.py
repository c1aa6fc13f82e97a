"""What a run measures, per stream: frames, decisions, drops, reconnects, and the latency of each stage
(capture, preprocess, inference, postprocess, output) and from a frame's capture to its decision.

The percentiles printed by ``--stats`` and at exit come from the most recent samples we keep; Prometheus
(``--metrics-port``) gets the same through prometheus-client's counters and histograms on a registry of the
run's own, served by prometheus-client's HTTP server (we write no exporter).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily

# flow: a two-stream model's optical flow of each frame (not part of preprocess)
STAGES = ("capture", "flow", "preprocess", "inference", "postprocess", "output", "end_to_end")
KEEP = 4096  # samples kept per stream and stage for the printed percentiles
# 100 us .. 10 s: a tiny model's preprocessing up to a CPU 3D CNN's end-to-end latency
BUCKETS = tuple(1e-4 * 2**k for k in range(18))


class _Counts:
    """Prometheus counters read from the streams' own summaries when scraped (no second bookkeeping)."""

    FIELDS = (("frames", "frames", "Frames processed"), ("decisions", "decisions", "Decisions made"),
              ("dropped_frames", "dropped", "Frames a live source dropped because its worker was behind"),
              ("reconnects", "reconnects", "Reconnects of a dropped source"))

    def __init__(self, summaries: list[Any]) -> None:
        self.summaries = summaries

    def collect(self) -> Any:
        for name, attribute, help_text in self.FIELDS:
            family = CounterMetricFamily(f"edge_{name}", help_text, labels=["stream"])
            for i, summary in enumerate(self.summaries):
                family.add_metric([str(i)], getattr(summary, attribute))
            yield family


class Metrics:
    """One run's metrics over its streams' summaries (``RunSummary``: frames, decisions, dropped, reconnects).
    ``stage`` is called from the streams' threads; ``line`` reads from the main thread."""

    def __init__(self, summaries: list[Any]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_Counts(summaries))
        self._latency = Histogram("edge_stage_latency_seconds", "Latency of each stage, and capture to decision",
                                  ["stream", "stage"], buckets=BUCKETS, registry=self.registry)
        self._samples = {(i, s): deque(maxlen=KEEP) for i in range(len(summaries)) for s in STAGES}
        # each (stream, stage)'s histogram child, looked up once (at its first sample, so a stage that never
        # runs is not exported): ``labels()`` costs more than ``observe``, and ``stage`` runs several times a
        # frame in every stream's threads
        self._children: dict[tuple[int, str], Any] = {}
        self._lock = threading.Lock()
        self._server: Any = None

    def serve(self, port: int) -> None:
        """Serve the Prometheus text format on ``port`` (any path, ``/metrics`` by convention) until ``close``."""
        self._server, _ = start_http_server(port, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def stage(self, stream: int, name: str, seconds: float) -> None:
        child = self._children.get((stream, name))
        if child is None:  # two threads may both get here: labels() hands both the same child
            child = self._children[stream, name] = self._latency.labels(str(stream), name)
        child.observe(seconds)
        with self._lock:
            self._samples[stream, name].append(seconds)

    def percentiles(self, stream: int, name: str) -> tuple[float, float, float] | None:
        """(p50, p95, p99) in ms of the kept samples, None before the first."""
        with self._lock:
            v = np.asarray(self._samples[stream, name])
        return None if v.size == 0 else tuple(float(x) for x in np.percentile(v * 1e3, [50, 95, 99]))

    def line(self, stream: int) -> str:
        """The stages' p50/p95/p99 (ms) of one stream, one line."""
        parts = []
        for name in STAGES:
            p = self.percentiles(stream, name)
            if p is not None:
                parts.append(f"{name} {p[0]:.2f}/{p[1]:.2f}/{p[2]:.2f}")
        return "latency ms p50/p95/p99: " + ("; ".join(parts) or "no frames yet")
