"""One inference thread for every stream (`edge run --source A --source B ...`).

Each stream's prepare thread submits a request (its clip, or its frame for the online model); its output
thread waits for the result. The inference thread takes the first request, then gathers more until it holds one from every
stream still running, ``max_batch`` of them, or ``max_wait_s`` has passed since the first, whichever is
first, and runs them as one batch. A lone stream never waits: its batch is full at one.

A batch holds at most one request per stream: a stream's next request, if it comes while its previous one
is still being gathered, waits for the next batch (``_held``), so each stream's requests run in order, one
per call. That lets a stream have ``IN_FLIGHT`` = 2 requests unscored: its next clip (or frame) is queued
while the current one runs, so the inference thread goes from one call to the next without waiting for
the prepare thread to wake up and submit (measured in docs/runtime.md). The online model is still stepped
frame after frame: frame t+1's call starts after frame t's returned the shift buffers it reads.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

IN_FLIGHT = 2  # requests a stream may have submitted and not yet scored


@dataclass
class Request:
    stream: int
    x: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None
    ms: float = 0.0  # the batch's inference time
    finished: float = 0.0  # perf_counter when its result (or error) was set

    def wait(self) -> np.ndarray:
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class Batcher:
    """``run_batch(requests)`` returns one result row per request, in order."""

    def __init__(self, run_batch: Callable[[list[Request]], list[np.ndarray]], streams: int, max_batch: int,
                 max_wait_s: float) -> None:
        self.run_batch, self.max_batch, self.max_wait_s = run_batch, max(1, max_batch), max_wait_s
        self.running = streams  # streams that may still submit: a batch of that many is full
        self.sizes: list[int] = []  # every batch's size, for the summary
        self._q: queue.Queue[Request | None] = queue.Queue()
        self._held: list[Request] = []  # taken from the queue while their stream was already in the batch
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="edge-inference", daemon=True)
        self._thread.start()

    def submit(self, stream: int, x: np.ndarray) -> Request:
        r = Request(stream, x)
        self._q.put(r)
        return r

    def stream_ended(self) -> None:
        with self._lock:
            self.running -= 1

    def close(self, timeout: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)

    def _full(self, n: int) -> bool:
        with self._lock:
            return n >= min(self.max_batch, max(1, self.running))

    def _gather(self) -> tuple[list[Request], bool]:
        """The next batch, at most one request per stream, held requests first (oldest first), and whether
        the queue was closed while gathering it."""
        batch: list[Request] = []
        for r in list(self._held):  # each from a stream of the last batch: they never overfill this one
            if all(b.stream != r.stream for b in batch):
                self._held.remove(r)
                batch.append(r)
        if not batch:
            first = self._q.get()
            if first is None:
                return [], True
            batch.append(first)
        deadline = time.monotonic() + self.max_wait_s
        while not self._full(len(batch)):
            try:
                r = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if r is None:
                return batch, True
            if any(b.stream == r.stream for b in batch):
                self._held.append(r)  # its stream's earlier request is in this batch: the next one takes it
            else:
                batch.append(r)
        return batch, False

    def _loop(self) -> None:
        while True:
            batch, closed = self._gather()
            if batch:
                self._run(batch)
            if closed:
                break
        leftover = self._held
        while True:  # closing: nobody should be waiting, but never leave a waiter hanging
            try:
                r = self._q.get_nowait()
            except queue.Empty:
                break
            if r is not None:
                leftover.append(r)
        for r in leftover:
            r.error = RuntimeError("the inference thread was closed")
            r.done.set()

    def _run(self, batch: list[Request]) -> None:
        t0 = time.perf_counter()
        try:
            rows = self.run_batch(batch)
            ms = (time.perf_counter() - t0) * 1e3
            if len(rows) != len(batch):
                raise RuntimeError(f"the backend returned {len(rows)} results for a batch of {len(batch)}")
            for r, row in zip(batch, rows):
                r.result, r.ms = row, ms
        except BaseException as e:  # noqa: BLE001 - handed to every waiter, re-raised in its thread
            for r in batch:
                r.error = e
        finally:
            self.sizes.append(len(batch))
            finished = time.perf_counter()
            for r in batch:
                r.finished = finished
                r.done.set()
