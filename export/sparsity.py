"""The 2:4 check on an ONNX graph: which Conv / Gemm / MatMul weights have at most 2 non-zeros in every 4
consecutive input-channel weights, read from the initializers TensorRT will see. `edge build --sparse`
runs it before asking TensorRT for SPARSE_WEIGHTS (issue 8), so the user learns which layers can use the
sparse tensor cores; the pattern itself is `train.compress.schedule` (the one the `semi_structured` stage
prunes to).

Weights are brought to (out, in, ...) first: a Conv's already is, a Gemm's is (in, out) unless ``transB``,
a MatMul's B is (in, out). In a Q/DQ graph a weight reaches its layer through DequantizeLinear (and, in an
unfolded QAT export, QuantizeLinear before it); the check reads the stored initializer behind them, whose
zeros are the float weight's zeros.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from train.compress.schedule import TwoFourRow, two_four_report

WEIGHT_OPS = ("Conv", "Gemm", "MatMul")


def layer_weights(model: onnx.ModelProto) -> list[tuple[str, str, np.ndarray]]:
    """(layer name, op type, weight as (out, in, ...)) of every Conv / Gemm / MatMul whose weight is an
    initializer, in graph order; a MatMul of two activations has none and is left out."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    rows = []
    for node in graph.node:
        if node.op_type not in WEIGHT_OPS or len(node.input) < 2:
            continue
        name = node.input[1]
        while name in producer and producer[name].op_type in ("DequantizeLinear", "QuantizeLinear"):
            name = producer[name].input[0]
        if name not in inits:
            continue
        w = numpy_helper.to_array(inits[name])
        if node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            w = w if trans_b else w.T
        elif node.op_type == "MatMul":
            if w.ndim != 2:
                continue
            w = w.T
        rows.append((node.name or name, node.op_type, w))
    return rows


def two_four_table(path: str | Path) -> list[TwoFourRow]:
    """One row per weighted layer of the ONNX file: name, (out, in, ...) shape, 2:4 met, density."""
    return two_four_report((name, w) for name, _, w in layer_weights(onnx.load(str(path))))


def format_table(rows: list[TwoFourRow]) -> str:
    """The table `edge build --sparse` prints: one line per layer."""
    width = max((len(r.name) for r in rows), default=5)
    lines = [f"{'layer':{width}s}  {'shape':18s}  2:4  density"]
    lines += [f"{r.name:{width}s}  {'x'.join(map(str, r.shape)):18s}  {'yes' if r.met else 'no ':3s}  {r.density:.3f}"
              for r in rows]
    met = sum(r.met for r in rows)
    return "\n".join([*lines, f"{met} of {len(rows)} layers meet 2:4"])
