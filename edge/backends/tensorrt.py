"""Native TensorRT engine backend, written against TensorRT 10 and pycuda; it imports no torch.

The engine is deserialized with ``tensorrt.Runtime`` and run by named I/O tensors (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``). Host buffers are pinned (page-locked) so copies run
asynchronously. There are two buffer sets, each with its own execution context and CUDA stream: ``submit``
queues a clip's host-to-device copy, inference and device-to-host copy on one set and returns at once, so the
next clip's copies overlap this one's compute; ``collect`` waits for the oldest. ``infer`` is both, for the
one-clip-at-a-time pipeline. An engine is refused, in one line naming both sides, when the manifest says it
was built by another TensorRT version or for another GPU (TensorRT would fail on it, less clearly).
"""

from __future__ import annotations

from collections import deque
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
        inputs, outputs = [n for n in names if is_input[n]], [n for n in names if not is_input[n]]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EdgeError(f"engine {path}: expected one input and one output tensor, got {inputs} / {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        in_shape = (batch, *tuple(self.engine.get_tensor_shape(self.input_name))[1:])
        contexts = [self.engine.create_execution_context() for _ in range(BUFFER_SETS)]
        for ctx in contexts:
            if not ctx.set_input_shape(self.input_name, in_shape):
                raise EdgeError(f"engine {path}: batch {batch} is outside its profile (rebuild with --max-batch)")
        out_shape = tuple(contexts[0].get_tensor_shape(self.output_name))
        dtypes = {n: trt.nptype(self.engine.get_tensor_dtype(n)) for n in names}
        shapes = {self.input_name: in_shape, self.output_name: out_shape}
        self._sets = [_BufferSet(cuda, ctx, shapes, dtypes) for ctx in contexts]
        self._next, self._pending = 0, deque[_BufferSet]()
        self.precision, self.name = precision, "tensorrt"

    def submit(self, clip: np.ndarray) -> None:
        """Queue ``clip``'s copy in, inference and copy out on the next free buffer set; returns at once."""
        if len(self._pending) == BUFFER_SETS:
            raise EdgeError(f"backend tensorrt: {BUFFER_SETS} clips already in flight; collect() one first")
        s = self._sets[self._next]
        self._next = (self._next + 1) % BUFFER_SETS
        np.copyto(s.host[self.input_name], clip, casting="same_kind")
        cuda = self._cuda
        cuda.memcpy_htod_async(s.device[self.input_name], s.host[self.input_name], s.stream)
        if not s.context.execute_async_v3(s.stream.handle):
            raise EdgeError("backend tensorrt: execute_async_v3 failed (see TensorRT's log)")
        cuda.memcpy_dtoh_async(s.host[self.output_name], s.device[self.output_name], s.stream)
        s.done.record(s.stream)
        self._pending.append(s)

    def collect(self) -> np.ndarray:
        """The logits of the oldest submitted clip, once its stream has finished."""
        s = self._pending.popleft()
        s.done.synchronize()
        return s.host[self.output_name].copy()

    def infer(self, clip: np.ndarray) -> np.ndarray:
        self.submit(clip)
        return self.collect()
