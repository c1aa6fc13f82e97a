"""FAKES of `tensorrt`'s runtime side and of `pycuda` (neither can run here): enough of TensorRT 10's engine /
execution-context API and pycuda's driver for `edge.backends.tensorrt` to run its own logic - buffer
bookkeeping, the two buffer sets, the version / GPU checks. The fake engine computes a known function (the
mean of each clip times a per-class weight) when its stream is synchronised, so a test sees which buffers
were read and written, and when. ``install(monkeypatch, ...)`` puts both into ``sys.modules``."""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace

import numpy as np

CLASSES = 3
WEIGHTS = np.arange(1, CLASSES + 1, dtype=np.float32)


class Memory:
    """Device memory: a numpy buffer behind an integer address, as pycuda's DeviceAllocation."""

    registry: dict[int, np.ndarray] = {}

    def __init__(self, nbytes: int) -> None:
        self.buf = np.zeros(nbytes, np.uint8)
        Memory.registry[id(self)] = self.buf

    def __int__(self) -> int:
        return id(self)


class Stream:
    """Work is queued and runs when an event recorded on the stream is synchronised, so a test can see what
    was in flight."""

    by_handle: dict[int, Stream] = {}

    def __init__(self) -> None:
        self.queue: list = []
        self.handle = id(self)
        Stream.by_handle[self.handle] = self

    def run(self) -> None:
        while self.queue:
            self.queue.pop(0)()


class Event:
    def record(self, stream: Stream) -> None:
        self.stream = stream

    def synchronize(self) -> None:
        self.stream.run()


def _as(mem: Memory, like: np.ndarray) -> np.ndarray:
    return mem.buf.view(like.dtype).reshape(like.shape)


def fake_pycuda(compute_capability: tuple[int, int] = (8, 7)) -> tuple[ModuleType, ModuleType]:
    driver = ModuleType("pycuda.driver")
    driver.Stream, driver.Event, driver.mem_alloc = Stream, Event, Memory
    driver.pagelocked_empty = lambda shape, dtype: np.zeros(shape, dtype)
    driver.memcpy_htod_async = lambda dst, src, stream: stream.queue.append(
        lambda: np.copyto(_as(dst, src), src))
    driver.memcpy_dtoh_async = lambda dst, src, stream: stream.queue.append(
        lambda: np.copyto(dst, _as(src, dst)))
    driver.Device = lambda i: SimpleNamespace(compute_capability=lambda: compute_capability, name=lambda: "fake GPU")
    package = ModuleType("pycuda")
    package.driver, package.autoinit = driver, ModuleType("pycuda.autoinit")
    return package, driver


def clip_model(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The default fake engine: each clip's mean times a per-class weight."""
    x = inputs["clip"]
    return {"logits": x.reshape(len(x), -1).mean(1, keepdims=True) * WEIGHTS}


class Context:
    def __init__(self, engine: Engine) -> None:
        self.engine, self.addresses, self.shapes = engine, {}, {}
        self.runs = 0

    def set_input_shape(self, name: str, shape: tuple) -> bool:
        if not 1 <= shape[0] <= self.engine.max_batch:
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        mode, item = self.engine.io[name]
        return self.shapes[name] if mode == "INPUT" else (next(iter(self.shapes.values()))[0], *item)

    def set_tensor_address(self, name: str, address: int) -> None:
        self.addresses[name] = address

    def execute_async_v3(self, stream_handle: int) -> bool:
        stream = Stream.by_handle[stream_handle]

        def view(name: str) -> np.ndarray:
            return Memory.registry[self.addresses[name]].view(np.float32).reshape(self.get_tensor_shape(name))

        def compute() -> None:
            outputs = self.engine.compute({n: view(n) for n, (m, _) in self.engine.io.items() if m == "INPUT"})
            for name, value in outputs.items():
                view(name)[:] = value
            self.runs += 1
        stream.queue.append(compute)
        return True


class Engine:
    """``io``: name -> (mode, shape of one batch item), in the engine's tensor order; ``compute``: the function
    the engine computes, inputs by name -> outputs by name."""

    def __init__(self, io: dict[str, tuple[str, tuple]], max_batch: int, compute) -> None:
        self.io, self.max_batch, self.compute = io, max_batch, compute
        self.num_io_tensors = len(io)
        self.contexts: list[Context] = []

    def get_tensor_name(self, i: int) -> str:
        return list(self.io)[i]

    def get_tensor_mode(self, name: str) -> str:
        return self.io[name][0]

    def get_tensor_shape(self, name: str) -> tuple:
        return (-1, *self.io[name][1])

    def get_tensor_dtype(self, name: str) -> str:
        return "FLOAT"

    def create_execution_context(self) -> Context:
        self.contexts.append(Context(self))
        return self.contexts[-1]


def fake_tensorrt(clip_shape: tuple, max_batch: int = 4, version: str = "10.3.0",
                  io: dict[str, tuple[str, tuple]] | None = None, compute=clip_model) -> ModuleType:
    """A fake ``tensorrt`` whose engines take ``clip_shape`` clips to CLASSES logits (``clip_model``), or, given
    ``io`` and ``compute``, any named inputs and outputs."""
    io = io or {"clip": ("INPUT", tuple(clip_shape)), "logits": ("OUTPUT", (CLASSES,))}
    trt = ModuleType("tensorrt")
    trt.__version__ = version
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.TensorIOMode = SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.nptype = lambda dtype: np.float32
    engines: list[Engine] = []

    class Runtime:
        def __init__(self, logger: object) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            if data != b"fake engine":
                return None
            engines.append(Engine(io, max_batch, compute))
            return engines[-1]

    trt.Runtime, trt.engines = Runtime, engines
    return trt


def install(monkeypatch, clip_shape: tuple, compute_capability: tuple[int, int] = (8, 7), **kw) -> ModuleType:
    """Both fakes in sys.modules; returns the fake tensorrt (its ``engines`` list holds what was loaded)."""
    package, driver = fake_pycuda(compute_capability)
    trt = fake_tensorrt(clip_shape, **kw)
    for name, module in (("tensorrt", trt), ("pycuda", package), ("pycuda.driver", driver),
                         ("pycuda.autoinit", package.autoinit)):
        monkeypatch.setitem(sys.modules, name, module)
    return trt
