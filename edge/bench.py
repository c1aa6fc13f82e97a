"""Throughput, latency, size and accuracy of each backend/precision of a bundle, measured in one run.

Speed is reported, never asserted: the README quotes ratios against the torch fp32 eager row measured in
the same run on the same machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edge.atomic import write_text
from edge.backends import Backend, open_backend
from edge.bundle import Bundle
from edge.errors import EdgeError
from edge.machine import cpu_name
from edge.plugins import plugins


@dataclass
class BenchRow:
    model: str
    backend: str
    precision: str
    accuracy: float | None
    clips_per_s: float
    frames_per_s: float
    latency_ms_p50: float
    latency_ms_p95: float
    size_mb: float


def eval_clips(bundle: Bundle, data: Path) -> Iterator[tuple[np.ndarray, int]]:
    """Test-split clips, decoded and preprocessed by the training package (found by entry point, since
    the runtime may not import it)."""
    eps = plugins("edge.datasets", "eval_clips")
    if not eps:
        raise EdgeError("--data: accuracy needs the training package's dataset loaders (pip install -e .)")
    return next(iter(eps)).load()(data, bundle.preprocess, bundle.clip, bundle.labels, bundle.motion, bundle.flow)


def one_batch(x: np.ndarray | tuple[np.ndarray, ...]) -> np.ndarray | tuple[np.ndarray, ...]:
    """A batch of one: a clip, or a two-stream model's (RGB clip, flow clip)."""
    return tuple(a[None] for a in x) if isinstance(x, tuple) else x[None]


def accuracy(backend: Backend, clips: Iterable[tuple[np.ndarray, int]]) -> float:
    hits = total = 0
    for clip, label in clips:
        hits += int(np.argmax(backend.infer(one_batch(clip))[0]) == label)
        total += 1
    return hits / max(total, 1)


def latency_ms(backend: Backend, clip: np.ndarray, iters: int, warmup: int = 5) -> np.ndarray:
    for _ in range(warmup):
        backend.infer(clip)
    times = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        backend.infer(clip)
        times[i] = (time.perf_counter() - t0) * 1e3
    return times


def _size_mb(bundle: Bundle, backend: str, precision: str) -> float:
    role = {"torch": "checkpoint", "tensorrt": f"engine-{precision}", "trt": f"engine-{precision}"}.get(backend, precision)
    return bundle.path(role).stat().st_size / 2**20


def random_input(bundle: Bundle) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """A batch-1 input of the bundle's shape (speed does not depend on the values)."""
    rng = np.random.default_rng(0)
    rgb = rng.standard_normal(bundle.input_shape(), dtype=np.float32)
    if bundle.flow is None:
        return rgb
    s = bundle.flow.preprocess
    return rgb, rng.standard_normal((1, bundle.clip.num_segments, s.channels, s.size, s.size), dtype=np.float32)


def bench_bundle(bundle: Bundle, rows: list[tuple[str, str]], clips: list[tuple[np.ndarray, int]] | None,
                 iters: int = 50, device: str = "cpu") -> list[BenchRow]:
    probe = one_batch(clips[0][0]) if clips else random_input(bundle)
    out = []
    for backend_name, precision in rows:
        backend = open_backend(bundle, backend_name, precision, device)
        acc = accuracy(backend, clips) if clips else None
        t = latency_ms(backend, probe, iters)
        mean_s = float(np.mean(t)) / 1e3
        out.append(BenchRow(bundle.name, backend.name, precision, acc, 1 / mean_s,
                            bundle.clip.num_segments / mean_s, float(np.percentile(t, 50)),
                            float(np.percentile(t, 95)), _size_mb(bundle, backend_name, precision)))
    return out


def bench_bundles(paths: list[Path], rows: list[tuple[str, str]], data: Path | None = None, iters: int = 50,
                  device: str = "cpu") -> list[BenchRow]:
    results: list[BenchRow] = []
    for p in paths:
        bundle = Bundle.load(p)
        clips = list(eval_clips(bundle, data)) if data else None
        results += bench_bundle(bundle, rows, clips, iters, device)
    return results


def print_table(rows: list[BenchRow]) -> None:
    table = Table(title=f"edge bench (batch 1, {cpu_name()})")
    for col in ("model", "backend", "precision", "accuracy", "clips/s", "frames/s", "p50 ms", "p95 ms", "MB"):
        table.add_column(col, justify="left" if col in ("model", "backend", "precision") else "right")
    for r in rows:
        table.add_row(r.model, r.backend, r.precision, "-" if r.accuracy is None else f"{r.accuracy:.3f}",
                      f"{r.clips_per_s:.1f}", f"{r.frames_per_s:.1f}", f"{r.latency_ms_p50:.2f}",
                      f"{r.latency_ms_p95:.2f}", f"{r.size_mb:.2f}")
    Console().print(table)


def write_json(rows: list[BenchRow], path: Path) -> None:
    """The rows, with the CPU they were measured on (their speeds compare only on the same one)."""
    write_text(path, json.dumps({"cpu": cpu_name(), "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
