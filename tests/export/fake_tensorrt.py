"""A FAKE of the `tensorrt` module: TensorRT cannot run on the machines this project is tested on, so the
builder's own logic (flags, profiles, timing cache, DLA, parse-error reporting, what lands in the bundle)
is tested against this stand-in. It mimics the TensorRT 10 Python calls export/tensorrt.py makes and
records them; it builds nothing. ``fake(...)`` returns a fresh module to put in ``sys.modules``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import onnx
from onnx import numpy_helper


class _Error:
    def __init__(self, node: int, desc: str) -> None:
        self._node, self._desc = node, desc

    def node(self) -> int:
        return self._node

    def desc(self) -> str:
        return self._desc


class _Tensor(SimpleNamespace):
    pass


class _Network:
    def __init__(self) -> None:
        self.inputs: list[_Tensor] = []

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i: int) -> _Tensor:
        return self.inputs[i]


def _trt_quantization(node: onnx.NodeProto, values: dict) -> bool:
    """TensorRT's parser restriction on Q/DQ (onnx-tensorrt docs/operators.md): INT8 with zero point 0; a
    QuantizeLinear without a zero point makes uint8, a DequantizeLinear of an int32 bias is not INT8."""
    if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
        return True
    zp = values.get(node.input[2]) if len(node.input) > 2 else None
    if node.op_type == "DequantizeLinear" and node.input[0] in values and values[node.input[0]].dtype.name != "int8":
        return False
    return zp is not None and zp.dtype.name == "int8" and not zp.any()


class _Parser:
    def __init__(self, network: _Network, logger: object, unsupported: set[str]) -> None:
        self.network, self.unsupported, self.errors = network, unsupported, []

    def parse(self, data: bytes) -> bool:
        graph = onnx.load_from_string(data).graph
        inits = {i.name for i in graph.initializer}
        for v in graph.input:
            if v.name not in inits:
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
                self.network.inputs.append(_Tensor(name=v.name, shape=tuple(dims)))
        self.errors = [_Error(k, f"No importer registered for op: {n.op_type}")
                       for k, n in enumerate(graph.node) if n.op_type in self.unsupported]
        values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        values.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                       if n.op_type == "Constant" and n.attribute[0].name == "value"})
        self.errors += [_Error(k, "Assertion failed: zero point must be INT8 and 0")
                        for k, n in enumerate(graph.node) if not _trt_quantization(n, values)]
        return not self.errors

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> _Error:
        return self.errors[i]


class _Cache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return self.data + b"+tactics"


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name: str, lo: list[int], opt: list[int], hi: list[int]) -> None:
        self.shapes[name] = (list(lo), list(opt), list(hi))


class _Config:
    def __init__(self) -> None:
        self.flags: list[str] = []
        self.pools: dict[str, int] = {}
        self.profiles: list[_Profile] = []
        self.default_device_type = "GPU"
        self.DLA_core = -1
        self.cache: _Cache | None = None

    def set_memory_pool_limit(self, pool: str, size: int) -> None:
        self.pools[pool] = size

    def set_flag(self, flag: str) -> None:
        self.flags.append(flag)

    def add_optimization_profile(self, profile: _Profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> _Cache:
        return _Cache(bytes(data))

    def set_timing_cache(self, cache: _Cache, ignore_mismatch: bool) -> bool:
        assert ignore_mismatch is False
        self.cache = cache
        return True

    def get_timing_cache(self) -> _Cache:
        return self.cache


EXPLICIT_BATCH = 0  # TensorRT's enum value


def fake(unsupported: set[str] = frozenset(), dla_cores: int = 0, fail_build: bool = False,
         version: str = "10.3.0 (fake)") -> SimpleNamespace:
    """A fake `tensorrt` module. ``built`` collects each (network, config) passed to the build; the
    "engine" it returns is the config's state as JSON, so a test can read back what was asked. ``version``
    8.x is JetPack 5's TensorRT 8.5, whose networks are implicit-batch unless created with EXPLICIT_BATCH."""
    major = int(version.split(".")[0])
    built: list[tuple[_Network, _Config]] = []

    class Builder:
        num_DLA_cores = dla_cores

        def __init__(self, logger: object) -> None:
            self.logger = logger

        def create_network(self, flags: int) -> _Network:
            if major >= 10:
                assert flags == 0  # TensorRT 10: explicit batch is implied; the old flag is deprecated
            else:  # TensorRT 8's ONNX parser refuses an implicit-batch network
                assert flags == 1 << EXPLICIT_BATCH, "TensorRT 8: the ONNX parser needs an explicit-batch network"
            return _Network()

        def create_builder_config(self) -> _Config:
            return _Config()

        def create_optimization_profile(self) -> _Profile:
            return _Profile()

        def build_serialized_network(self, network: _Network, config: _Config) -> bytes | None:
            built.append((network, config))
            if fail_build:
                return None
            return json.dumps({"flags": config.flags, "profiles": [p.shapes for p in config.profiles],
                               "device": config.default_device_type, "dla": config.DLA_core}).encode()

    return SimpleNamespace(
        __version__=version, Builder=Builder,
        NetworkDefinitionCreationFlag=SimpleNamespace(EXPLICIT_BATCH=EXPLICIT_BATCH),
        Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None}),
        OnnxParser=lambda network, logger: _Parser(network, logger, set(unsupported)),
        BuilderFlag=SimpleNamespace(FP16="FP16", INT8="INT8", SPARSE_WEIGHTS="SPARSE_WEIGHTS",
                                    GPU_FALLBACK="GPU_FALLBACK"),
        MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"), DeviceType=SimpleNamespace(GPU="GPU", DLA="DLA"),
        built=built)
