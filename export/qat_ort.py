"""A QAT model's Q/DQ graph re-laid for ONNX Runtime's CPU kernels, keeping the scales QAT trained with.

The QAT graph (export/qdq.py) quantizes what TensorRT's explicit quantization wants: every Conv/Gemm
input and weight, int8 with zero point 0. ONNX Runtime runs it, but its residual additions, ReLUs and the
temporal shift's concatenations stay in float between DequantizeLinear and QuantizeLinear nodes, so on a
CPU it ran slower than ORT's own post-training layout of the same model (docs/compression.md). This module
gives ORT that layout without giving up the training: the QAT graph's float model (weights still on
their int8 grid) goes through ORT's quantizer with every tensor QAT quantized pinned to QAT's scale
(``TensorQuantOverrides``); only the tensors QAT left in float (additions' and concatenations' outputs,
which ORT quantizes to fuse them) are calibrated, min/max, on real clips.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import onnx
from onnx import numpy_helper

from export.int8 import Calibration, quantize_int8
from export.qdq import constants, drop_unused

# typing's generics: evaluated at import, and `edge build --calib` imports this on Python 3.8 (JetPack 5)
Pinned = Dict[str, Tuple[float, int]]  # tensor name -> (scale, uint8 zero point)
# ops whose output ONNX Runtime's Q/DQ quantizer quantizes with its input's scale (its QDQDirect8BitOp & co)
SHARES_SCALE = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Slice", "MaxPool",
                          "AveragePool", "Gather", "Split"})


def float_graph(model: onnx.ModelProto) -> tuple[onnx.ModelProto, Pinned]:
    """The float model under a Q/DQ one, and the activation quantization it had (``model`` is changed).

    Each weight's DequantizeLinear becomes a float initializer of its dequantized values: still on the
    int8 grid, so ORT's per-channel symmetric quantizer gives back the same integers. Each activation
    QuantizeLinear -> DequantizeLinear pair is removed and its tensor (with the ones it is a reshape or slice
    of: ``sharing``) pinned to the same scale with the uint8 zero point that holds the same values: 128
    (int8's -128..127 shifted), or 0 after a ReLU, where the tensor is non-negative and 0..127 is all QAT
    could hold (uint8 also holds 128..255 beyond it)."""
    g = model.graph
    consts = constants(g)
    producer = {o: n for n in g.node for o in n.output}
    rename: dict[str, str] = {}
    pinned: Pinned = {}
    for dq in [n for n in g.node if n.op_type == "DequantizeLinear"]:
        src = dq.input[0]
        if src in consts:  # an int8 weight
            g.initializer.append(numpy_helper.from_array(_dequantized(dq, consts), f"{dq.output[0]}_float"))
            rename[dq.output[0]] = f"{dq.output[0]}_float"
            g.node.remove(dq)
        elif src in producer and producer[src].op_type == "QuantizeLinear":
            q = producer[src]
            chain = sharing(q.input[0], producer)
            after_relu = chain[-1] in producer and producer[chain[-1]].op_type == "Relu"
            for x in chain:
                pinned.setdefault(x, (float(consts[q.input[1]]), 0 if after_relu else 128))
            rename[dq.output[0]] = q.input[0]
            g.node.remove(dq)
            g.node.remove(q)
    for n in g.node:
        for i, name in enumerate(n.input):
            n.input[i] = rename.get(name, name)
    for o in g.output:
        if o.name in rename:
            raise ValueError(f"float_graph: graph output {o.name} is a DequantizeLinear's; expected a float op's")
    drop_unused(g)
    return model, pinned


def sharing(tensor: str, producer: dict[str, onnx.NodeProto]) -> list[str]:
    """``tensor`` and the tensors it is a reshape, slice or pooling of, nearest first: ORT's quantizer gives
    such an op's output its input's scale when the input is quantized too (and its own when not), so a
    scale pinned on ``tensor`` must be pinned on all of them."""
    chain = [tensor]
    while chain[-1] in producer and producer[chain[-1]].op_type in SHARES_SCALE:
        chain.append(producer[chain[-1]].input[0])
    return chain


def _dequantized(dq: onnx.NodeProto, consts: dict[str, np.ndarray]) -> np.ndarray:
    q = consts[dq.input[0]].astype(np.float32)
    scale = consts[dq.input[1]].astype(np.float32)
    zero = consts[dq.input[2]].astype(np.float32) if len(dq.input) > 2 else np.zeros_like(scale)
    if scale.ndim:
        shape = [1] * q.ndim
        shape[next((a.i for a in dq.attribute if a.name == "axis"), 1)] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((q - zero) * scale).astype(np.float32)


def qat_for_ort(qat_path: str | Path, out_path: str | Path, clips: Calibration) -> Path:
    """Write ``qat_path``'s model in ONNX Runtime's Q/DQ layout with QAT's scales; ``clips`` calibrate the
    tensors QAT did not quantize."""
    model, pinned = float_graph(onnx.load(str(qat_path)))
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "float.onnx"
        onnx.save(model, str(float_path))
        return quantize_int8(float_path, out_path, clips, pinned)
