"""INT8 Q/DQ placed for TensorRT: what `edge build --precision int8|best` compiles.

The bundle's ``model.int8.onnx`` is laid out for ONNX Runtime on a CPU: uint8 activations with zero points
and a Q/DQ pair after every op, so ORT's QDQ fusions find integer kernels everywhere. TensorRT's ONNX
parser refuses that file (its QuantizeLinear / DequantizeLinear take INT8 with a zero point of 0 only),
and its fusions want a different placement (TensorRT developer guide, "Q/DQ layer-placement
recommendations"; nvidia-modelopt's ONNX quantizer implements them). The rules here are those:

- every weighted layer TensorRT has INT8 kernels worth using for (``int8_layers``: modelopt's channel and
  GEMM-size rules): its activation input quantized, its weight stored int8 with a per-output-channel
  symmetric scale feeding DequantizeLinear, its bias left float (TensorRT folds it);
- an Add of a weighted layer's output and a residual: the residual input quantized, so TensorRT fuses the
  addition into the layer's INT8 output;
- a pooling layer's input and output quantized (pooling commutes with quantization: TensorRT runs it in INT8);
- nothing else: no Q/DQ on weighted layers' outputs, none inside the temporal shift's copies; TensorRT
  propagates the scales through them itself.

Scales are symmetric, ``max |x| / 127`` over the calibration clips (weights: per output channel).
docs/tensorrt.md compares this placement with modelopt's, node by node, on the demo's TSM.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edge.atomic import atomic_path
from edge.inspect import constants
from export.int8 import Calibration, feeds

WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
POOLS = ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")


def int8_layers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The weighted layers TensorRT has INT8 kernels worth using for, by modelopt's rules (its
    ``find_nodes_from_convs_to_exclude`` and small-GEMM exclusion): a Conv with at least 16 input and output
    channels, or a smaller one that is ungrouped, square-kerneled, with a channel count a multiple of 8 and
    (the first conv, or the other count >= 16), or grouped with output channels a multiple of 8 and kernels
    >= 3; never a Gemm (one row per clip: a GEMV at batch 1) nor a MatMul with K or N under 16."""
    inits = {i.name: i for i in model.graph.initializer}
    layers, first = [], True
    for n in model.graph.node:
        if n.op_type not in WEIGHTED or len(n.input) < 2 or n.input[1] not in inits:
            continue
        dims = list(inits[n.input[1]].dims)
        if n.op_type in ("Conv", "ConvTranspose"):
            oc, ic = (dims[0], dims[1]) if n.op_type == "Conv" else (dims[1], dims[0])
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            group, kernel = attrs.get("group", 1), list(attrs.get("kernel_shape", dims[2:]))
            ok = (oc >= 16 and ic >= 16) or (
                group == 1 and (oc % 8 == 0 or ic % 8 == 0) and (first or oc >= 16 or ic >= 16)
                and len(set(kernel)) == 1) or (group > 1 and oc % 8 == 0 and min(kernel) >= 3)
            first = False
        else:
            ok = n.op_type == "MatMul" and min(dims[-2:]) >= 16
        if ok:
            layers.append(n)
    return layers


def activation_targets(model: onnx.ModelProto) -> list[str]:
    """The activation tensors the rules above quantize, in graph order; every reader of one reads it
    dequantized (as modelopt does), so the shift's copies of a quantized block input move INT8 data."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    layers = {n.name for n in int8_layers(model)}
    targets = []
    for n in g.node:
        if n.name in layers:
            targets += [x for x in n.input[:2] if x and x not in inits]
        elif n.op_type in POOLS:
            targets += [n.input[0], n.output[0]]
        elif n.op_type == "Add" and not any(x in inits for x in n.input):
            fused = [i for i, x in enumerate(n.input) if x in producer and producer[x].name in layers]
            residual = [i for i in range(len(n.input)) if i not in fused]
            targets += [n.input[i] for i in (residual[-1:] if fused and residual else [1] if len(fused) == 2 else [])]
    return list(dict.fromkeys(targets))


def activation_amax(model: onnx.ModelProto, tensors: list[str], clips: Calibration) -> dict[str, float]:
    """max |x| of each named tensor over the calibration samples (``export.int8.feeds``), by running the float
    model with them as extra outputs."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None)
                              for t in tensors if t not in known)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor observable
    session = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    amax = dict.fromkeys(tensors, 0.0)
    seen = 0
    for feed in feeds(clips):
        values = session.run(tensors, feed)
        for t, v in zip(tensors, values):
            amax[t] = max(amax[t], float(np.abs(v).max(initial=0.0)))
        seen += 1
    if not seen:
        raise ValueError("no calibration clips")
    return amax


def _scale(amax: np.ndarray) -> np.ndarray:
    """Symmetric int8 scale; an all-zero tensor (a pruned channel) gets 1 so it stays exactly zero."""
    return np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)


def _weight_axis(node: onnx.NodeProto) -> int:
    """The output-channel axis of a weighted layer's weight: 0 for Conv and Gemm with transB (torch's
    Linear), 1 for ConvTranspose, MatMul's B (in, out) and Gemm without transB."""
    if node.op_type == "Gemm":
        return 0 if any(a.name == "transB" and a.i == 1 for a in node.attribute) else 1
    return 0 if node.op_type == "Conv" else 1


def quantize_weight(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """int8 weight and its per-channel scale along ``axis`` (rounding half to even, as QuantizeLinear)."""
    reduce = tuple(d for d in range(w.ndim) if d != axis)
    scale = _scale(np.abs(w).max(axis=reduce))
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def quantize_for_tensorrt(fp32_path: str | Path, out_path: str | Path, clips: Calibration) -> Path:
    """Write the TensorRT-placed Q/DQ model of ``fp32_path`` calibrated on ``clips`` ((T, C, H, W) float32,
    or the online model's feed dicts)."""
    model = onnx.load(str(fp32_path))
    g = model.graph
    tensors = activation_targets(model)
    amax = activation_amax(model, tensors, clips)
    inits = {i.name: i for i in g.initializer}
    zero = numpy_helper.from_array(np.zeros((), np.int8), "trt_qdq_zero")
    added, head = [zero], []
    dq_of: dict[str, str] = {}
    after: dict[str, list[onnx.NodeProto]] = {}
    for t in tensors:
        scale = numpy_helper.from_array(_scale(np.array(amax[t])), f"{t}_trt_scale")
        added.append(scale)
        q = helper.make_node("QuantizeLinear", [t, scale.name, zero.name], [f"{t}_trt_q"], name=f"{t}_trt_Q")
        dq = helper.make_node("DequantizeLinear", [q.output[0], scale.name, zero.name], [f"{t}_trt_dq"],
                              name=f"{t}_trt_DQ")
        after[t] = [q, dq]
        dq_of[t] = dq.output[0]
    layers = int8_layers(model)
    for n in g.node:
        n.input[:] = [dq_of.get(x, x) for x in n.input]
    for n in layers:  # the exporter shares equal weights between layers: each is quantized once
        axis = _weight_axis(n)
        base = f"{n.input[1]}_axis{axis}"
        if f"{base}_dq" not in {h.output[0] for h in head}:
            q, scale = quantize_weight(numpy_helper.to_array(inits[n.input[1]]), axis)
            added += [numpy_helper.from_array(q, f"{base}_int8"), numpy_helper.from_array(scale, f"{base}_scale"),
                      numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{base}_zero")]
            head.append(helper.make_node("DequantizeLinear", [f"{base}_int8", f"{base}_scale", f"{base}_zero"],
                                         [f"{base}_dq"], name=f"{base}_trt_DQ", axis=axis))
        n.input[1] = f"{base}_dq"
    nodes = list(head) + [q for i in g.input for q in after.pop(i.name, [])]  # a graph input read by a conv
    for n in g.node:
        nodes.append(n)
        for o in n.output:
            nodes += after.get(o, [])
    del g.node[:]
    g.node.extend(nodes)
    used = {x for n in g.node for x in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept + added)
    onnx.checker.check_model(model)
    with atomic_path(out_path) as tmp:
        onnx.save(model, str(tmp))
    return Path(out_path)


def tensorrt_qdq_problems(model: onnx.ModelProto) -> list[str]:
    """Why TensorRT's ONNX parser would refuse this Q/DQ model, one line per node (empty: it would not):
    it quantizes to and dequantizes from INT8 only (FP8/INT4 too, which we never write), zero point 0."""
    g = model.graph
    consts = {k: numpy_helper.to_array(v) for k, v in constants(g).items()}  # torch writes zero points as Constant

    def zero_point(n: onnx.NodeProto) -> np.ndarray | None:
        return consts.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None

    # a QuantizeLinear without a zero point outputs uint8 (ONNX's default)
    qtype = {n.output[0]: np.dtype(np.uint8) if zero_point(n) is None else zero_point(n).dtype
             for n in g.node if n.op_type == "QuantizeLinear"}
    problems = []
    for n in g.node:
        if n.op_type == "QuantizeLinear":
            dtype = qtype[n.output[0]]
        elif n.op_type == "DequantizeLinear":
            dtype = consts[n.input[0]].dtype if n.input[0] in consts else qtype.get(n.input[0])
        else:
            continue
        zp = zero_point(n)
        if dtype is not None and dtype != np.int8:
            problems.append(f"{n.op_type} {n.name}: {dtype} (TensorRT takes INT8 only)")
        elif zp is not None and np.any(zp != 0):
            problems.append(f"{n.op_type} {n.name}: zero point {zp.ravel()[:3].tolist()} (TensorRT needs 0)")
    return problems


__all__ = ["activation_targets", "int8_layers", "quantize_for_tensorrt", "quantize_weight", "tensorrt_qdq_problems"]
