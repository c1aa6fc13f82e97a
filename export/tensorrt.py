"""ONNX -> TensorRT engine (`edge build`), written against TensorRT 10's Python API for a Jetson or desktop
GPU user to run unchanged: `build_serialized_network`, memory-pool limits, optimization profiles on named
inputs, a timing cache, explicit quantization from the bundle's TensorRT-placed Q/DQ model
(export/trt_qdq.py), SPARSE_WEIGHTS after our own 2:4 check, DLA with GPU fallback. TensorRT cannot run
where this project is developed and tested, so the logic here is unit-tested against a fake `tensorrt`
module (tests/export/fake_tensorrt.py) and docs/tensorrt.md lists what has not run on the real one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import onnx

from edge.atomic import atomic_path
from edge.bundle import Bundle
from edge.errors import EdgeError
from export.sparsity import format_table, two_four_table
from export.trt_qdq import tensorrt_qdq_problems

BUILD_PRECISIONS = ("fp32", "fp16", "int8", "best")


@dataclass(frozen=True)
class BuildOptions:
    """``precision``: fp32 / fp16 / int8 (the bundle's Q/DQ model, explicit quantization) / best (int8 with
    fp16 for the layers INT8 cannot serve); ``max_batch``: the profile's batch range is 1..max_batch;
    ``calib``: a dataset to calibrate the Q/DQ model from first when the bundle has none."""

    precision: str = "int8"
    sparse: bool = False
    workspace_mb: int = 1024
    max_batch: int = 1
    timing_cache: Path | None = None
    dla: int | None = None
    calib: Path | None = None
    calib_clips: int = 64


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt
    except ImportError as e:
        raise EdgeError(f"TensorRT is not installed: {e} (JetPack ships it; elsewhere pip install -e .[jetson]; "
                        "`edge doctor` says what this machine has)") from None
    return tensorrt


def needs_calibration(bundle: Bundle) -> bool:
    """True when the bundle has no INT8 model TensorRT can build: none at all, or only ONNX Runtime's CPU
    layout (uint8 activations with zero points, which TensorRT's parser refuses)."""
    if "int8-trt" in bundle.files:
        return False
    return "int8" not in bundle.files or bool(tensorrt_qdq_problems(onnx.load(str(bundle.path("int8")))))


def source_model(bundle: Bundle, precision: str) -> Path:
    """The ONNX file an engine of ``precision`` is built from: for int8 and best the Q/DQ model placed for
    TensorRT (``model.int8.trt.onnx``: calibrated, or a QAT model's own graph), or the bundle's only Q/DQ
    model when TensorRT takes it (a QAT bundle exported before it carried both)."""
    if precision not in BUILD_PRECISIONS:
        raise EdgeError(f"--precision: expected one of {', '.join(BUILD_PRECISIONS)}, got {precision!r}")
    if precision not in ("int8", "best"):
        return bundle.path("fp32")
    if "int8-trt" in bundle.files:
        return bundle.path("int8-trt")
    if "int8" not in bundle.files:
        raise EdgeError(f"bundle {bundle.root}: no INT8 Q/DQ model for --precision {precision}; pass --calib DATA "
                        "or run `edge export --int8` first (TensorRT's implicit calibrator is deprecated "
                        "since 10.1)")
    problems = tensorrt_qdq_problems(onnx.load(str(bundle.path("int8"))))
    if problems:
        raise EdgeError(f"bundle {bundle.root}: {bundle.files['int8']['path']} is laid out for ONNX Runtime on a CPU "
                        f"and TensorRT refuses {len(problems)} of its Q/DQ nodes ({problems[0]}); pass --calib DATA "
                        "to calibrate one for TensorRT, or re-export with `edge export --int8`")
    return bundle.path("int8")


def parse_errors(parser: Any, model: onnx.ModelProto) -> list[str]:
    """One line per parser error: the ONNX node (index, name, op type, from our own copy of the graph, so
    every TensorRT version reports the same) and TensorRT's message."""
    nodes = model.graph.node
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        k = err.node()
        where = f"node {k} {nodes[k].name or '?'} ({nodes[k].op_type})" if 0 <= k < len(nodes) else "graph"
        lines.append(f"{where}: {err.desc()}")
    return lines


def configure(trt: ModuleType, builder: Any, network: Any, options: BuildOptions) -> Any:
    """The builder config for ``options``: precision flags, workspace, a batch profile per input, DLA."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    flags = {"fp32": [], "fp16": ["FP16"], "int8": ["INT8"], "best": ["INT8", "FP16"]}[options.precision]
    if options.sparse:
        flags.append("SPARSE_WEIGHTS")
    for flag in flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = list(tensor.shape)
        if shape[0] == -1:  # the dynamic batch axis every export has; the other axes are fixed
            profile.set_shape(tensor.name, [1, *shape[1:]], [options.max_batch, *shape[1:]],
                              [options.max_batch, *shape[1:]])
    config.add_optimization_profile(profile)
    if options.dla is not None:
        if builder.num_DLA_cores <= options.dla:
            raise EdgeError(f"--dla {options.dla}: this device has {builder.num_DLA_cores} DLA core(s)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    return config


def build_engine(bundle_dir: Path, options: BuildOptions, gpu: dict[str, str] | None = None) -> Path:
    """Build ``model.<precision>.engine`` into the bundle and record it (and its metadata) in the manifest;
    a bundle with an online model also gets ``model.online.<precision>.engine`` (frame and shift buffers,
    the same batch profile). ``gpu``: name and compute capability for the metadata (default: pycuda's)."""
    bundle = Bundle.load(bundle_dir)
    if bundle.flow is not None:
        raise EdgeError(f"edge build: {bundle_dir} is a two-stream bundle (RGB and flow inputs); TensorRT engines "
                        "are built for one-input models - run it with --backend ort")
    trt = import_tensorrt()
    gpu = gpu or gpu_identity()
    if options.calib is not None and options.precision in ("int8", "best") and needs_calibration(bundle):
        try:
            from export.bundle import add_int8  # torch and the dataset reader: only for this step
        except ImportError as e:  # a runtime-only install (JetPack 5's Python 3.8)
            raise EdgeError(f"--calib needs {e.name or e}, which is not installed here: calibrate on a host with "
                            "`edge export --int8`, then copy the bundle here") from None
        bundle = add_int8(bundle.root, options.calib, options.calib_clips)
    onnx_path = source_model(bundle, options.precision)
    online_path = online_source(bundle, options.precision)
    sparse_rows = two_four_table(onnx_path) if options.sparse else []
    if options.sparse:
        print(format_table(sparse_rows))
    engine, seconds = _serialize(trt, onnx_path, options)
    name = f"model.{options.precision}.engine"
    with atomic_path(bundle.root / name) as tmp:
        tmp.write_bytes(engine)
    bundle.add_file(f"engine-{options.precision}", name)
    meta = {"file": name, "tensorrt": trt.__version__, **gpu, "precision": options.precision,
            "max_batch": options.max_batch, "dla": options.dla,
            "timing_cache": None if options.timing_cache is None else str(options.timing_cache),
            "build_seconds": round(seconds, 1), "source": onnx_path.name,
            "sparse_layers": [r.name for r in sparse_rows if r.met] if options.sparse else None,
            **({"two_four": [r._asdict() for r in sparse_rows]} if options.sparse else {})}
    if online_path is not None:
        engine, seconds = _serialize(trt, online_path, options)
        online_name = f"model.online.{options.precision}.engine"
        with atomic_path(bundle.root / online_name) as tmp:
            tmp.write_bytes(engine)
        bundle.add_file(f"engine-online-{options.precision}", online_name)
        meta["online"] = {"file": online_name, "source": online_path.name, "build_seconds": round(seconds, 1)}
    bundle.extra.setdefault("engines", {})[options.precision] = meta
    bundle.save()
    return bundle.root / name


def online_source(bundle: Bundle, precision: str) -> Path | None:
    """The per-frame model's ONNX file an online engine of ``precision`` is built from (None: no online
    model in the bundle)."""
    if "online" not in bundle.files:
        return None
    if precision not in ("int8", "best"):
        return bundle.path("online")
    if "online-int8-trt" not in bundle.files:
        raise EdgeError(f"bundle {bundle.root}: its online model has no INT8 form for TensorRT; re-export with "
                        "`edge export --online --int8`")
    return bundle.path("online-int8-trt")


def _serialize(trt: ModuleType, onnx_path: Path, options: BuildOptions) -> tuple[bytes, float]:
    """Parse ``onnx_path`` and build it with ``options``: the serialized engine and the build's seconds.
    The timing cache is read first and written back after, so each build starts from the previous one's."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        model = onnx.load(str(onnx_path))
        raise EdgeError(f"{onnx_path}: TensorRT's ONNX parser refused it:\n" + "\n".join(parse_errors(parser, model)))
    config = configure(trt, builder, network, options)
    _load_timing_cache(config, options.timing_cache)
    t0 = time.time()
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise EdgeError(f"{onnx_path}: TensorRT could not build an engine (its log above says why)")
    seconds = time.time() - t0
    if options.timing_cache is not None:
        with atomic_path(options.timing_cache) as tmp:
            tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(engine), seconds


def network_flags(trt: ModuleType) -> int:
    """TensorRT 8 (JetPack 5's 8.5) makes an implicit-batch network unless asked, which its ONNX parser
    refuses; TensorRT 10 has explicit batch only, and the flag is deprecated there."""
    if int(trt.__version__.split(".")[0]) >= 10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def _load_timing_cache(config: Any, path: Path | None) -> None:
    """Start from the timing cache at ``path`` when there is one (builds of the same layers reuse their
    measured tactics); a cache from another TensorRT or GPU is refused by TensorRT, not silently used."""
    if path is None:
        return
    data = path.read_bytes() if path.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(data), ignore_mismatch=False)


def gpu_identity() -> dict[str, str]:
    """This GPU's name and compute capability, from pycuda (the runtime's CUDA binding)."""
    try:
        import pycuda.driver as cuda
    except ImportError as e:
        raise EdgeError(f"pycuda is not installed: {e} (pip install -e .[jetson])") from None
    cuda.init()
    dev = cuda.Device(0)
    major, minor = dev.compute_capability()
    return {"gpu": dev.name(), "compute_capability": f"{major}.{minor}"}
