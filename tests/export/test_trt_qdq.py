"""The Q/DQ model placed for TensorRT (export/trt_qdq.py): modelopt's layer rules on hand-made graphs,
symmetric per-channel weights, the placement on a real exported TSM (weighted-layer inputs, the residual
of each Add, pooling, nothing on the shift), TensorRT's INT8 / zero-point restriction, and ONNX Runtime
running the result close to the float model."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from export.onnx import INPUT_NAME, export_onnx
from export.trt_qdq import (
    activation_targets,
    int8_layers,
    quantize_for_tensorrt,
    quantize_weight,
    tensorrt_qdq_problems,
)
from train.models import build_model


def _conv(name, x, out, oc, ic, k=3, group=1):
    w = numpy_helper.from_array(np.ones((oc, ic // group, k, k), np.float32), f"{name}_w")
    return helper.make_node("Conv", [x, w.name], [out], name=name, kernel_shape=[k, k], group=group), w


def test_int8_layers_follow_modelopts_channel_and_gemm_rules():
    specs = [("first", 8, 3, 3, 1), ("small", 4, 8, 3, 1), ("wide", 32, 32, 3, 1), ("odd", 12, 12, 3, 1),
             ("mixed", 8, 24, 1, 1), ("dw_ok", 8, 8, 3, 8), ("dw_1x1", 8, 8, 1, 8)]
    nodes, inits, x = [], [], "x"
    for name, oc, ic, k, group in specs:
        n, w = _conv(name, x, f"{name}_out", oc, ic, k, group)
        nodes.append(n)
        inits.append(w)
        x = n.output[0]
    for name, shape in [("fc", (4, 32)), ("mm_big", (32, 32)), ("mm_small", (8, 32))]:
        w = numpy_helper.from_array(np.ones(shape, np.float32), f"{name}_w")
        op = "Gemm" if name == "fc" else "MatMul"
        nodes.append(helper.make_node(op, [x, w.name], [f"{name}_out"], name=name))
        inits.append(w)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], inits)
    picked = [n.name for n in int8_layers(helper.make_model(graph))]
    # first: 3 -> 8, the graph's first conv with 8 channels; mixed: 24 >= 16 and 8 % 8; dw_ok: grouped 3x3
    assert picked == ["first", "wide", "mixed", "dw_ok", "mm_big"]


def test_weights_are_symmetric_per_output_channel_and_a_pruned_channel_stays_zero():
    w = np.array([[[[1.0, -0.5]]], [[[0.0, 0.0]]], [[[0.2, 0.1]]]], np.float32)  # (3, 1, 1, 2)
    q, scale = quantize_weight(w, axis=0)
    assert q.dtype == np.int8 and scale.tolist() == pytest.approx([1 / 127, 1.0, 0.2 / 127])
    assert q[:, 0, 0, :].tolist() == [[127, -64], [0, 0], [127, 64]]  # -63.5 and 63.5 round half to even
    q1, s1 = quantize_weight(w.reshape(3, 2).T.copy(), axis=1)  # MatMul's B is (in, out)
    assert s1.tolist() == pytest.approx(scale.tolist()) and q1.T.tolist() == q[:, 0, 0, :].tolist()


def test_problems_name_uint8_int32_and_nonzero_zero_points():
    zp_u8 = numpy_helper.from_array(np.array(128, np.uint8), "zp_u8")
    zp_i8 = numpy_helper.from_array(np.array(3, np.int8), "zp_i8")
    s = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    bias = numpy_helper.from_array(np.array([5], np.int32), "bias")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s"], ["a"], name="no_zp"),
             helper.make_node("QuantizeLinear", ["x", "s", "zp_u8"], ["b"], name="u8"),
             helper.make_node("DequantizeLinear", ["b", "s", "zp_u8"], ["c"], name="u8_dq"),
             helper.make_node("QuantizeLinear", ["x", "s", "zp_i8"], ["d"], name="shifted"),
             helper.make_node("DequantizeLinear", ["bias", "s"], ["e"], name="bias_dq")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], [],
                              [zp_u8, zp_i8, s, bias])
    assert tensorrt_qdq_problems(helper.make_model(graph)) == [
        "QuantizeLinear no_zp: uint8 (TensorRT takes INT8 only)",
        "QuantizeLinear u8: uint8 (TensorRT takes INT8 only)",
        "DequantizeLinear u8_dq: uint8 (TensorRT takes INT8 only)",
        "QuantizeLinear shifted: zero point [3] (TensorRT needs 0)",
        "DequantizeLinear bias_dq: int32 (TensorRT takes INT8 only)"]


@pytest.fixture(scope="module")
def tsm(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("tsm_resnet18", num_classes=5, num_segments=4, width=16).eval()
    root = tmp_path_factory.mktemp("trtqdq")
    export_onnx(model, torch.randn(1, 4, 3, 32, 32), root / "model.onnx")
    clips = [np.random.default_rng(i).standard_normal((4, 3, 32, 32)).astype(np.float32) for i in range(4)]
    quantize_for_tensorrt(root / "model.onnx", root / "trt.onnx", clips)
    return root, clips


def test_placement_on_a_tsm(tsm):
    root, _ = tsm
    fp32, q = onnx.load(str(root / "model.onnx")), onnx.load(str(root / "trt.onnx"))
    assert tensorrt_qdq_problems(q) == []
    producer = {o: n for n in q.graph.node for o in n.output}

    def dq_fed(n):
        return [i for i, x in enumerate(n.input) if x in producer and producer[x].op_type == "DequantizeLinear"]

    layers = {n.name for n in int8_layers(fp32)}
    nodes = {n.name: n for n in q.graph.node}
    assert len(layers) == 20  # width 16: every conv qualifies; the classifier Gemm does not
    for name in layers:  # activation and int8 weight
        assert dq_fed(nodes[name]) == [0, 1]
    adds = [n for n in q.graph.node if n.op_type == "Add"]
    assert len(adds) == 8 and all(len(dq_fed(n)) == 1 for n in adds)  # the residual only
    quantized = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert quantized == set(activation_targets(fp32))
    shift = [n for n in q.graph.node if n.op_type in ("Slice", "Concat") and "temporal" in n.name]
    assert shift and not any(dq_fed(n) for n in shift)  # the shift moves data; TensorRT propagates scales


def test_onnx_runtime_runs_it_close_to_the_float_model(tsm):
    root, clips = tsm

    def run(path):
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.concatenate([s.run(None, {INPUT_NAME: c[None]})[0] for c in clips])

    ref, got = run(root / "model.onnx"), run(root / "trt.onnx")
    assert not np.array_equal(ref, got)  # it is quantized
    assert np.abs(got - ref).max() <= 0.1 * np.abs(ref).max()
