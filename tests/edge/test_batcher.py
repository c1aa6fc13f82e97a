"""The inference thread's batching rules (edge/batcher.py), with a real Batcher and a recording batch
function: at most one request per stream in a batch, each stream's requests run in order, and nothing is
left waiting when it closes."""

import threading

import numpy as np
import pytest

from edge.batcher import Batcher


def recording(delay_s: float = 0.0):
    """A batch function that remembers each batch as (stream, value) pairs and returns each clip's value."""
    batches: list[list[tuple[int, float]]] = []

    def run(batch):
        threading.Event().wait(delay_s)
        batches.append([(r.stream, float(r.x[0])) for r in batch])
        return [r.x.copy() for r in batch]

    return run, batches


def scored(request) -> float:
    """The request's value once scored; a request never scored fails the test instead of hanging it."""
    assert request.done.wait(10), f"stream {request.stream}'s request was never scored"
    return float(request.wait()[0])


def test_a_streams_next_request_waits_for_the_next_batch():
    run, batches = recording()
    b = Batcher(run, streams=2, max_batch=2, max_wait_s=0.2)
    a1, a2, b1 = b.submit(0, np.array([1.0])), b.submit(0, np.array([2.0])), b.submit(1, np.array([10.0]))
    assert (scored(a2), scored(a1), scored(b1)) == (2.0, 1.0, 10.0)
    b.close()
    assert batches == [[(0, 1.0), (1, 10.0)], [(0, 2.0)]]  # not [(0, 1.0), (0, 2.0)], then [(1, 10.0)]
    assert a1.finished < a2.finished and b.sizes == [2, 1]


def test_held_requests_go_first_and_keep_their_order():
    run, batches = recording(delay_s=0.05)
    b = Batcher(run, streams=2, max_batch=2, max_wait_s=0.1)
    reqs = [b.submit(0, np.array([float(i)])) for i in range(3)] + [b.submit(1, np.array([9.0]))]
    assert [scored(r) for r in reqs] == [0.0, 1.0, 2.0, 9.0]
    b.close()
    stream0 = [v for batch in batches for s, v in batch if s == 0]
    assert stream0 == [0.0, 1.0, 2.0]
    assert all(len({s for s, _ in batch}) == len(batch) for batch in batches)


def test_closing_fails_a_held_request_instead_of_leaving_it_waiting():
    run, batches = recording()
    b = Batcher(run, streams=2, max_batch=2, max_wait_s=5.0)
    a1, a2 = b.submit(0, np.array([1.0])), b.submit(0, np.array([2.0]))
    b.close(timeout=10)
    assert scored(a1) == 1.0
    assert a2.done.wait(10)
    with pytest.raises(RuntimeError, match="closed"):
        a2.wait()
    assert batches == [[(0, 1.0)]]
