"""What every benchmark page shares: its options, how it is written, and batch-1 throughput measured one way
(the CPU each page names comes from ``edge.machine.cpu_name``)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from edge.backends import Backend

def parse_args(doc: str, work: str) -> argparse.Namespace:
    """The options every one-run benchmark takes: ``--work`` (kept between runs: a re-run reuses what it
    trained), ``--out`` (the results page) and ``--quick`` (a smoke test)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path(work))
    ap.add_argument("--out", type=Path, default=Path("docs/results"))
    ap.add_argument("--quick", action="store_true", help="a smoke test: tiny data, one epoch, few timed calls")
    return ap.parse_args()


def write_results(out: Path, name: str, result: Mapping[str, Any], markdown: Callable[[Any], str]) -> None:
    """``out/<name>.json`` and the page ``out/<name>.md`` rendered from it (both atomically), and the page on
    stdout."""
    import json

    from edge.atomic import write_text

    out.mkdir(parents=True, exist_ok=True)
    page = markdown(result)
    write_text(out / f"{name}.json", json.dumps(result, indent=2) + "\n")
    write_text(out / f"{name}.md", page)
    print(page)


MIN_RUNS = 3  # a time-bounded round still times this many calls, so its median is not one outlier


def clips_per_s(backends: Mapping[str, Backend], clip: np.ndarray, runs: int, rounds: int = 5,
                budget_s: float | None = None) -> dict[str, float]:
    """Batch-1 clips/s of each backend: ``rounds`` interleaved rounds of ``runs`` calls (so a slow spell of
    a shared machine hits every row alike), the median of the rounds' median latencies. ``budget_s`` bounds a
    round of a slow model (c3d_b8: 1.5 clips/s on 2 busy cores): one warm-up call, then calls until
    ``runs`` or until ``budget_s`` has passed, at least ``MIN_RUNS``."""
    from edge.bench import latency_ms

    per_round: dict[str, list[float]] = {k: [] for k in backends}
    for _ in range(rounds):
        for name, backend in backends.items():
            times = latency_ms(backend, clip, runs) if budget_s is None else bounded_latency_ms(
                backend, clip, runs, budget_s)
            per_round[name].append(float(np.median(times)))
    return {k: 1000.0 / float(np.median(v)) for k, v in per_round.items()}


def bounded_latency_ms(backend: Backend, clip: np.ndarray, runs: int, budget_s: float) -> np.ndarray:
    """Latencies (ms) of at most ``runs`` calls after one warm-up, stopping once ``budget_s`` has passed
    and ``MIN_RUNS`` calls were timed."""
    backend.infer(clip)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs:
        t0 = time.perf_counter()
        backend.infer(clip)
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1e3)
        if len(times) >= MIN_RUNS and t1 - start >= budget_s:
            break
    return np.asarray(times)
