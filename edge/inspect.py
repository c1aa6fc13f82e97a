"""What a model costs, counted on the ONNX graph that runs: parameters, multiply-adds per clip, its inputs
and one row per weighted layer. ``edge info`` prints it; the compression report's ``gflops`` column
(export/compress.py) is the same count, so the two never disagree.

The counter is onnx-tool (numpy + onnx + tabulate, no torch, so it runs on a Jetson image): its shape
inference gives every tensor's shape at batch 1 and its per-node profile the multiply-adds. Our MACs are
the multiply-adds of the weighted products (Conv, ConvTranspose, Gemm, MatMul and their integer/QLinear
forms), the TSM paper's "FLOPs": each such node is profiled on its product inputs only, because onnx-tool
would add one add per output element for a bias, which torch's FlopCounterMode and the papers leave out.
Pooling, activations, the shift's slices and residual additions count nothing. docs/design.md, "FLOPs on
the graph", has the cross-check against torch.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from edge.errors import EdgeError

# op type -> how many leading inputs form the product (what onnx-tool profiles); a bias comes after them
PRODUCT_INPUTS: dict[str, int] = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2, "MatMul": 2, "ConvInteger": 2,
                                  "MatMulInteger": 2, "QLinearConv": 8, "QLinearMatMul": 8}
# op type -> the inputs that hold weights or a bias (counted as the layer's parameters when constant)
WEIGHT_INPUTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1), "ConvInteger": (1,),
    "MatMulInteger": (0, 1), "QLinearConv": (3, 8), "QLinearMatMul": (0, 3)}
# op type -> inputs that are quantization scales / zero points: not parameters
_SCALE_INPUTS: dict[str, tuple[int, ...]] = {
    "QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2), "QLinearConv": (1, 2, 4, 5, 6, 7),
    "QLinearMatMul": (1, 2, 4, 5, 6, 7), "ConvInteger": (2, 3), "MatMulInteger": (2, 3)}
_PASS_THROUGH = ("DequantizeLinear", "Identity")  # a weight reaches its layer through these unchanged in size


@dataclass(frozen=True)
class Layer:
    """One weighted node: its name, op type, output shape at batch 1, parameters (of the constants in
    ``weights``) and multiply-adds."""

    name: str
    op: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    weights: tuple[str, ...] = ()


@dataclass(frozen=True)
class Input:
    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class ModelInfo:
    """``params``: elements of the graph's weights (every floating-point initializer but quantization
    scales, and the integer weights that DequantizeLinear reads: an INT8 model counts its int8 weights);
    ``macs``: multiply-adds of one batch-1 forward at ``inputs``' shapes, the sum of ``layers``' MACs."""

    path: Path
    inputs: tuple[Input, ...]
    params: int
    macs: int
    layers: tuple[Layer, ...]
    weights: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)  # name -> elements

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def _load(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise EdgeError(f"model {path}: no such file")
    try:
        return onnx.load(str(path))
    except Exception as e:  # protobuf's DecodeError and friends on a file that is not an ONNX model
        raise EdgeError(f"model {path}: not an ONNX model ({type(e).__name__}: "
                        f"{str(e).strip().partition(chr(10))[0]})") from None


def constants(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """Every tensor known without running the graph: initializers and Constant nodes' values."""
    consts = {i.name: i for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            value = next((a.t for a in n.attribute if a.name == "value"), None)
            if value is not None:
                consts[n.output[0]] = value
    return consts


def _parameters(graph: onnx.GraphProto, consts: Mapping[str, onnx.TensorProto]) -> set[str]:
    """The constants that are weights: read at some weight position. Integer constants only count where a
    DequantizeLinear or an integer/QLinear op reads them as weights (int64 shape constants never do); a
    constant read only as a quantization scale or zero point is not a weight."""
    found: set[str] = set()
    for n in graph.node:
        scales = _SCALE_INPUTS.get(n.op_type, ())
        for i, name in enumerate(n.input):
            if name not in consts or i in scales:
                continue
            floating = consts[name].data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16,
                                                  onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)
            integer_weight = (n.op_type in ("DequantizeLinear", "QuantizeLinear") and i == 0) or (
                n.op_type in _SCALE_INPUTS and i in WEIGHT_INPUTS.get(n.op_type, ()))
            if floating or integer_weight:
                found.add(name)
    return found


def _size(t: onnx.TensorProto) -> int:
    return int(np.prod(t.dims, dtype=np.int64))


def _input_shapes(graph: onnx.GraphProto, path: Path, shapes: Mapping[str, Sequence[int]]) -> list[Input]:
    """Every graph input at the shape to count at: ``shapes[name]`` where given, else its static dims with a
    symbolic batch axis (the first) set to 1."""
    init = {i.name for i in graph.initializer}
    out = []
    for vi in graph.input:
        if vi.name in init:
            continue
        tt = vi.type.tensor_type
        dtype = str(np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)))
        if vi.name in shapes:
            shape = tuple(int(d) for d in shapes[vi.name])
            if len(shape) != len(tt.shape.dim):
                raise EdgeError(f"model {path}: input {vi.name!r} has rank {len(tt.shape.dim)}, "
                                f"the given shape {list(shape)} has rank {len(shape)}")
        else:
            dims = []
            for axis, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value"):
                    dims.append(int(d.dim_value))
                elif axis == 0:
                    dims.append(1)
                else:
                    raise EdgeError(f"model {path}: input {vi.name!r} has a symbolic axis {axis} "
                                    f"({d.dim_param!r}); its shape must be given to count MACs")
            shape = tuple(dims)
        out.append(Input(vi.name, shape, dtype))
    unknown = set(shapes) - {i.name for i in out}
    if unknown:
        raise EdgeError(f"model {path}: no input named {sorted(unknown)[0]!r} "
                        f"(it has: {', '.join(i.name for i in out)})")
    return out


def inspect_onnx(path: str | Path, shapes: Mapping[str, Sequence[int]] | None = None) -> ModelInfo:
    """Parameters, batch-1 MACs and the weighted layers (in graph order) of the ONNX model at ``path``."""
    try:
        import onnx_tool  # numpy + onnx only; imported here so `edge run` never pays for it
    except ImportError:  # not installed on Python < 3.10, which onnx-tool 1.0 needs (JetPack 5 has 3.8)
        raise EdgeError(f"model {path}: counting parameters and MACs needs onnx-tool, which is not installed "
                        f"here (it needs Python 3.10+; this is {sys.version_info[0]}.{sys.version_info[1]})") from None

    path = Path(path)
    proto = _load(path)
    graph = proto.graph
    inputs = _input_shapes(graph, path, shapes or {})
    consts = constants(graph)
    weights = _parameters(graph, consts)
    producer = {o: n for n in graph.node for o in n.output}

    def weight_of(name: str) -> str | None:
        """The weight constant behind a layer input, through DequantizeLinear / Identity."""
        while name not in weights:
            node = producer.get(name)
            if node is None or node.op_type not in _PASS_THROUGH:
                return None
            name = node.input[0]
        return name

    where = ", ".join(f"{i.name} {list(i.shape)}" for i in inputs)
    try:
        g = onnx_tool.Model(proto, {"verbose": False}).graph
        order = list(g.nodemap)  # the file's (topological) order; the profile below runs in its own
        g.graph_reorder_nodes()
        g.shape_infer({i.name: np.zeros(i.shape, dtype=i.dtype) for i in inputs})
    except Exception as e:  # onnx-tool raises plain exceptions on graphs it cannot shape
        raise EdgeError(f"model {path}: onnx-tool cannot infer its shapes at {where} "
                        f"({type(e).__name__}: {str(e).partition(chr(10))[0]})") from None
    layers = []
    for key in order:
        node = g.nodemap.get(key)
        if node is None or node.op_type not in PRODUCT_INPUTS:
            continue
        ins = [g.tensormap[i] for i in node.input[:PRODUCT_INPUTS[node.op_type]]]
        outs = [g.tensormap[o] for o in node.output]
        try:
            macs = int(round(node.profile(ins, outs)[0]))  # onnx-tool's count of the product alone
        except Exception as e:
            raise EdgeError(f"model {path}: onnx-tool cannot count {node.op_type} node {key!r} at {where} "
                            f"({type(e).__name__}: {str(e).partition(chr(10))[0]})") from None
        owned = [w for i in WEIGHT_INPUTS[node.op_type] if i < len(node.input) and (w := weight_of(node.input[i]))]
        layers.append(Layer(key, node.op_type, tuple(int(d) for d in outs[0].get_shape()),
                            sum(_size(consts[w]) for w in owned), macs, tuple(owned)))
    sizes = {w: _size(consts[w]) for w in sorted(weights)}
    return ModelInfo(path, tuple(inputs), sum(sizes.values()), sum(lay.macs for lay in layers), tuple(layers), sizes)


def bundle_shapes(manifest: Mapping[str, Any]) -> dict[str, list[int]]:
    """The batch-1 input shape a manifest (or a checkpoint's manifest-like dict) declares, by input name."""
    spec = manifest.get("input") or {}
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape[1:]):
        return {}  # no static shape declared: the graph's own dims
    return {str(spec.get("name", "clip")): [1, *shape[1:]]}


# ------------------------------------------------------------------------------------------- printing


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.2f} MB" if path.is_file() else "missing"


def _g(macs: int) -> str:
    return f"{macs:,} MACs = {macs / 1e9:.4g} GMACs"


def layer_table(info: ModelInfo) -> list[str]:
    """Aligned text: one row per weighted layer in graph order, then their total."""
    rows = [("name", "op", "output", "params", "MACs", "MACs %")]
    total = max(info.macs, 1)
    for lay in info.layers:
        rows.append((lay.name, lay.op, "x".join(map(str, lay.output_shape)), f"{lay.params:,}", f"{lay.macs:,}",
                     f"{100 * lay.macs / total:.1f}"))
    rows.append(("total", "", "", f"{sum(lay.params for lay in info.layers):,}", f"{info.macs:,}", "100.0"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    right = (False, False, False, True, True, True)
    return ["  ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row, widths, right))
            .rstrip() for row in rows]


def _table_notes(info: ModelInfo) -> list[str]:
    """Why the table's params column may not add up to the model's: weights stored once and read by several
    layers (onnxsim merges identical tensors, e.g. the all-zero convolutions of an untrained zero-init
    residual), and weights outside the weighted layers (a BatchNorm that could not be folded)."""
    uses: dict[str, int] = {}
    for lay in info.layers:
        for w in lay.weights:
            uses[w] = uses.get(w, 0) + 1
    notes = []
    shared = [w for w, n in uses.items() if n > 1]
    if shared:
        notes.append(f"note: {len(shared)} weight tensor(s) are shared by several layers and stored once, so the "
                     f"rows add up to more than the model's {info.params:,} params")
    listed = {w for lay in info.layers for w in lay.weights}
    outside = info.params - sum(info.weights[w] for w in listed)
    if outside > 0:
        notes.append(f"note: {outside:,} params are outside the weighted layers (e.g. an unfolded BatchNorm)")
    return notes


def _sampled(clip: Mapping[str, Any]) -> str:
    """What a clip holds: TSN segments' frames, or clips of frames a step apart (edge.bundle.ClipSpec)."""
    if clip.get("sampling", "segments") != "clips":
        return f"{clip['num_segments']} frames sampled"
    k = clip["num_segments"] // clip["num_clips"]
    return f"{clip['num_clips']} clip(s) of {k} frames up to {clip['clip_step']} apart"


def summary(manifest: Mapping[str, Any], infos: Mapping[str, ModelInfo], source: str,
            files: Mapping[str, Path]) -> str:
    """The human ``edge info``: model, input spec, parameters and GMACs per clip of each precision's model,
    the files, then the first model's per-layer table. ``infos`` maps a precision to its model's info."""
    lines = [f"model        {manifest.get('name', '?')}", f"source       {source}"]
    for i in next(iter(infos.values())).inputs:
        layout = (manifest.get("input") or {}).get("layout", "")
        lines.append(f"input        {i.name}  {i.dtype}  {list(i.shape)}  {layout}".rstrip())
    pre, clip = manifest.get("preprocess"), manifest.get("clip")
    if pre:
        lines.append(f"preprocess   resize short side {pre['resize']}, center crop {pre['size']}x{pre['size']}, "
                     f"mean {tuple(pre['mean'])}, std {tuple(pre['std'])}")
    if clip:
        lines.append(f"clip         {clip.get('mode', 'clip')} mode: {_sampled(clip)} from the last "
                     f"{clip['window_frames']}, a decision every {clip['stride_frames']}")
    if manifest.get("motion"):
        lines.append(f"motion       {manifest['motion']['kind']} images, computed from the frames (training cached "
                     "them; the runtime computes them live)")
    if "labels" in manifest:
        lines.append(f"labels       {len(manifest['labels'])}")
    for precision, info in infos.items():
        lines.append(f"{precision:<12} params {info.params:,}; {_g(info.macs)} per clip ({info.path.name})")
    lines.append("files        " + "; ".join(f"{role} {p.name} ({_mb(p)})" for role, p in files.items()))
    precision, first = next(iter(infos.items()))
    lines += ["", f"layers of the {precision} model ({len(first.layers)} weighted, in graph order; "
                  "MACs = multiply-adds of the product, bias adds not counted)"]
    lines += layer_table(first)
    lines += _table_notes(first)
    return "\n".join(lines)


__all__ = ["Input", "Layer", "ModelInfo", "bundle_shapes", "inspect_onnx", "layer_table", "summary"]
