"""Native TensorRT engine backend, written against TensorRT 10 and pycuda; it imports no torch.

The engine is deserialized with ``tensorrt.Runtime`` and run by named I/O tensors (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``). Host buffers are pinned (page-locked) so copies run
asynchronously. There are two buffer sets, each with its own execution context and CUDA stream: ``submit``
queues a clip's host-to-device copy, inference and device-to-host copy on one set and returns at once, so the
next clip's copies overlap this one's compute; ``collect`` waits for the oldest. ``infer`` is both, for the
one-clip-at-a-time pipeline. An engine with several inputs and outputs (the online model's: the frame and its
shift buffers in, the logits and the next buffers out) is fed a dict by name and ``run`` returns every output
by name. Every input takes the same batch, fixed when the backend opens. An engine is refused, in one line naming both sides, when the manifest says it
was built by another TensorRT version or for another GPU (TensorRT would fail on it, less clearly).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgeError

BUFFER_SETS = 2


def _import() -> tuple[Any, Any]:
    try:
        import tensorrt as trt
    except ImportError as e:
        raise EdgeError(f"backend tensorrt: TensorRT is not installed ({e}); JetPack ships it, elsewhere "
                        "pip install -e .[jetson]") from None
    try:
        import pycuda.autoinit  # noqa: F401  (creates the CUDA context on the first GPU)
        import pycuda.driver as cuda
    except ImportError as e:
        raise EdgeError(f"backend tensorrt: pycuda is not installed ({e}); pip install -e .[jetson]") from None
    return trt, cuda


def check_engine_matches(meta: dict[str, Any], trt_version: str, compute_capability: str, path: Path) -> None:
    """One-line refusal of an engine built by another TensorRT or for another GPU (``meta``: the manifest's
    ``engines.<precision>`` entry written by `edge build`)."""
    if meta.get("tensorrt") != trt_version:
        raise EdgeError(f"engine {path}: built by TensorRT {meta.get('tensorrt')}, this is TensorRT {trt_version}; "
                        "rebuild it here with `edge build`")
    if meta.get("compute_capability") != compute_capability:
        raise EdgeError(f"engine {path}: built for {meta.get('gpu')} (compute capability "
                        f"{meta.get('compute_capability')}), this GPU has compute capability {compute_capability}; "
                        "rebuild it here with `edge build`")


def in_fixed_batches(run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], feed: dict[str, np.ndarray],
                     batch: int) -> dict[str, np.ndarray]:
    """``run`` (an engine call at exactly ``batch`` rows per input) over ``feed``'s N rows: in chunks of
    ``batch``, the last padded with zeros, the padding's outputs dropped. Several streams' requests can
    outnumber an engine's batch, or fall short of it."""
    n = len(next(iter(feed.values())))
    parts: list[dict[str, np.ndarray]] = []
    for i in range(0, n, batch):
        chunk = {k: v[i : i + batch] for k, v in feed.items()}
        short = batch - len(next(iter(chunk.values())))
        if short:
            chunk = {k: np.concatenate([v, np.zeros((short, *v.shape[1:]), v.dtype)]) for k, v in chunk.items()}
        parts.append({k: v[: batch - short] for k, v in run(chunk).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class _BufferSet:
    """Pinned host and device memory for one clip in flight, with its context and stream."""

    def __init__(self, cuda: Any, context: Any, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, Any]) -> None:
        self.context, self.stream, self.done = context, cuda.Stream(), cuda.Event()
        self.host = {n: cuda.pagelocked_empty(shapes[n], dtypes[n]) for n in shapes}
        self.device = {n: cuda.mem_alloc(self.host[n].nbytes) for n in shapes}
        for name, mem in self.device.items():
            context.set_tensor_address(name, int(mem))


class TensorRTBackend:
    """``meta``: the manifest's entry for this engine (version and GPU checks); ``batch``: the clips per call
    (within the engine's profile, 1..max_batch)."""

    def __init__(self, engine_path: str | Path, meta: dict[str, Any], precision: str, batch: int = 1) -> None:
        trt, cuda = _import()
        self._cuda = cuda
        path = Path(engine_path)
        major, minor = cuda.Device(0).compute_capability()
        check_engine_matches(meta, trt.__version__, f"{major}.{minor}", path)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise EdgeError(f"engine {path}: TensorRT could not deserialize it (corrupt, or from another build)")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs, self.outputs = [n for n in names if is_input[n]], [n for n in names if not is_input[n]]
        if not self.inputs or not self.outputs:
            raise EdgeError(f"engine {path}: expected input and output tensors, got {self.inputs} / {self.outputs}")
        self.input_name, self.output_name = self.inputs[0], self.outputs[0]  # a clip model's clip and logits
        self.batch = batch
        shapes = {n: (batch, *tuple(self.engine.get_tensor_shape(n))[1:]) for n in self.inputs}
        contexts = [self.engine.create_execution_context() for _ in range(BUFFER_SETS)]
        for ctx in contexts:
            for name, shape in shapes.items():
                if not ctx.set_input_shape(name, shape):
                    raise EdgeError(f"engine {path}: batch {batch} is outside its profile (rebuild with --max-batch)")
        shapes.update({n: tuple(contexts[0].get_tensor_shape(n)) for n in self.outputs})
        dtypes = {n: trt.nptype(self.engine.get_tensor_dtype(n)) for n in names}
        self._sets = [_BufferSet(cuda, ctx, shapes, dtypes) for ctx in contexts]
        self._next, self._pending = 0, deque()  # of _BufferSet
        self.precision, self.name = precision, "tensorrt"

    def submit(self, x: np.ndarray | dict[str, np.ndarray]) -> None:
        """Queue the copies in (a clip, or every input by name), the inference and the copies out on the next
        free buffer set; returns at once."""
        feed = x if isinstance(x, dict) else {self.input_name: x}
        if set(feed) != set(self.inputs):
            raise EdgeError(f"backend tensorrt: the engine takes {self.inputs}, given {sorted(feed)}")
        if len(self._pending) == BUFFER_SETS:
            raise EdgeError(f"backend tensorrt: {BUFFER_SETS} clips already in flight; collect() one first")
        s = self._sets[self._next]
        self._next = (self._next + 1) % BUFFER_SETS
        cuda = self._cuda
        for name, value in feed.items():
            np.copyto(s.host[name], value, casting="same_kind")
            cuda.memcpy_htod_async(s.device[name], s.host[name], s.stream)
        if not s.context.execute_async_v3(s.stream.handle):
            raise EdgeError("backend tensorrt: execute_async_v3 failed (see TensorRT's log)")
        for name in self.outputs:
            cuda.memcpy_dtoh_async(s.host[name], s.device[name], s.stream)
        s.done.record(s.stream)
        self._pending.append(s)

    def collect_all(self) -> dict[str, np.ndarray]:
        """Every output of the oldest submitted call, by name, once its stream has finished."""
        s = self._pending.popleft()
        s.done.synchronize()
        return {name: s.host[name].copy() for name in self.outputs}

    def collect(self) -> np.ndarray:
        """The logits of the oldest submitted clip, once its stream has finished."""
        return self.collect_all()[self.output_name]

    def infer(self, clip: np.ndarray) -> np.ndarray:
        self.submit(clip)
        return self.collect()

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One call of a several-input engine: every output by name."""
        self.submit(feed)
        return self.collect_all()
