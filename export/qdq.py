"""A fake-quantized (QAT) model -> Q/DQ ONNX with int8 weights.

torch exports each fake quantization as QuantizeLinear -> DequantizeLinear. On a weight that leaves the
float weight in the file and quantizes it at every run; ``fold_weight_quantizers`` computes those
QuantizeLinear nodes once, so the file holds int8 weights feeding DequantizeLinear: the layout ONNX
Runtime's own quantizer writes (``export --int8``) and TensorRT's explicit quantization reads.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from onnxsim import simplify
from torch import nn

from edge.atomic import atomic_path
from export.onnx import INPUT_NAME, OPSET, OUTPUT_NAME


def constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Every value known without running the graph: initializers, Constant nodes, and Identity nodes of
    either (the exporter shares equal buffers, such as zero BatchNorm means, through Identity)."""
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            values[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        elif n.op_type == "Identity" and n.input[0] in values:
            values[n.output[0]] = values[n.input[0]]
    return values


def fold_weight_quantizers(model: onnx.ModelProto) -> int:
    """Replace every QuantizeLinear of a constant by its int8 result; drop what no node reads any more.
    Returns how many were folded. Rounding is ONNX's (half to even), as QuantizeLinear would do."""
    g = model.graph
    consts = constants(g)
    folded = []
    for node in g.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in consts:
            continue
        x, scale, zero = (consts[i] for i in node.input[:3])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim:
            shape = [1] * x.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        info = np.iinfo(zero.dtype)
        q = np.clip(np.rint(x / scale) + zero.astype(np.int64), info.min, info.max).astype(zero.dtype)
        g.initializer.append(numpy_helper.from_array(q, node.output[0]))
        folded.append(node)
    for node in folded:
        g.node.remove(node)
    drop_unused(g)
    return len(folded)


def drop_unused(g: onnx.GraphProto) -> None:
    """Remove initializers and Constant nodes that no node or graph output reads."""
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)
    for node in [n for n in g.node if n.op_type == "Constant" and n.output[0] not in used]:
        g.node.remove(node)


def fold_batchnorm(model: onnx.ModelProto) -> int:
    """Fold each BatchNormalization that follows a Conv with int8 weights into that Conv, exactly: the BN
    factor gamma / sqrt(var + eps) of a channel multiplies its weight scale (its sign flips the int8
    weights, so scales stay positive) and the BN shift becomes the Conv's bias. Without this the
    BatchNormalization sits between the Conv and the next QuantizeLinear and no INT8 kernel is fused.
    Returns how many were folded."""
    g = model.graph
    consts = constants(g)
    producer = {o: n for n in g.node for o in n.output}
    readers: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    folded = 0
    for bn in [n for n in g.node if n.op_type == "BatchNormalization"]:
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or len(conv.input) > 2 or readers[conv.output[0]] != 1:
            continue
        dq = producer.get(conv.input[1])
        if dq is None or dq.op_type != "DequantizeLinear" or not all(i in consts for i in dq.input[:2]):
            continue
        gamma, beta, mean, var = (consts[i].astype(np.float64) for i in bn.input[1:5])
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        factor = gamma / np.sqrt(var + eps)
        q, scale = consts[dq.input[0]], consts[dq.input[1]].astype(np.float64)
        sign = np.where(factor < 0, -1, 1).reshape(-1, *[1] * (q.ndim - 1))
        base = conv.output[0]
        g.initializer.extend([numpy_helper.from_array((q * sign).astype(q.dtype), f"{base}_w_folded"),
                              numpy_helper.from_array((scale * np.abs(factor)).astype(np.float32), f"{base}_scale_folded"),
                              numpy_helper.from_array((beta - mean * factor).astype(np.float32), f"{base}_bias_folded")])
        dq.input[0], dq.input[1] = f"{base}_w_folded", f"{base}_scale_folded"
        conv.input.append(f"{base}_bias_folded")
        conv.output[0] = bn.output[0]
        g.node.remove(bn)
        folded += 1
    drop_unused(g)
    return folded


def export_qdq(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Export a fake-quantized ``model`` (train.compress.qat.quantized) as Q/DQ ONNX with int8 weights."""
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        proto = onnx.load(str(tmp))
        if fold_weight_quantizers(proto) == 0:
            raise RuntimeError("export_qdq: the model has no fake-quantized weights")
        fold_batchnorm(proto)
        proto, ok = simplify(proto)  # shape arithmetic folded; Q/DQ on int8 weights are left alone
        if not ok:
            raise RuntimeError("onnxsim could not validate the simplified Q/DQ model")
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return Path(path)
