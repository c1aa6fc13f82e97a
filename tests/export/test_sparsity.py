"""The 2:4 check on ONNX graphs `edge build --sparse` runs: hand-made graphs with each weight layout
(Conv, Gemm with and without transB, MatMul, a Q/DQ weight), then a real semi_structured model's files
(tests/export/test_compress_cli.py)."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.sparsity import format_table, layer_weights, two_four_table


def two_four(out: int, cin: int) -> np.ndarray:
    """(out, in) weight, 2 non-zeros (channels 0, 1 of every 4) per group of 4 input channels."""
    w = np.zeros((out, cin), np.float32)
    w[:, 0::4], w[:, 1::4] = 1.5, -2.0
    return w


def graph(tmp_path) -> str:
    conv = two_four(2, 8).reshape(2, 8, 1, 1)
    dense_conv = np.ones((2, 8, 1, 1), np.float32)
    gemm_t = two_four(3, 8)  # transB=1: stored (out, in)
    gemm = two_four(3, 8).T.copy()  # transB=0: stored (in, out); as stored its rows would break 2:4
    matmul = two_four(4, 8).T.copy()  # MatMul's B is (in, out)
    q = two_four(2, 8).astype(np.int8).reshape(2, 8, 1, 1)
    inits = [numpy_helper.from_array(a, n) for a, n in ((conv, "w_conv"), (dense_conv, "w_dense"), (gemm_t, "w_gemm_t"),
                                                          (gemm, "w_gemm"), (matmul, "w_matmul"), (q, "w_q"))]
    inits += [numpy_helper.from_array(np.float32(0.1), "s"), numpy_helper.from_array(np.int8(0), "z")]
    nodes = [
        helper.make_node("Conv", ["x", "w_conv"], ["a"], name="conv"),
        helper.make_node("Conv", ["x", "w_dense"], ["b"], name="dense_conv"),
        helper.make_node("DequantizeLinear", ["w_q", "s", "z"], ["w_q_f"], name="dq"),
        helper.make_node("Conv", ["x", "w_q_f"], ["c"], name="qdq_conv"),
        helper.make_node("Gemm", ["v", "w_gemm_t"], ["d"], name="gemm_t", transB=1),
        helper.make_node("Gemm", ["v", "w_gemm"], ["e"], name="gemm"),
        helper.make_node("MatMul", ["v", "w_matmul"], ["f"], name="matmul"),
        helper.make_node("MatMul", ["v", "u"], ["g"], name="activations"),  # no weight: left out
    ]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("x", "v", "u")]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "abcdefg"]
    path = str(tmp_path / "g.onnx")
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", vi, outs, inits)), path)
    return path


def test_each_layout_is_read_as_out_by_in(tmp_path):
    layers = {name: (op, w.shape) for name, op, w in layer_weights(onnx.load(graph(tmp_path)))}
    assert layers == {"conv": ("Conv", (2, 8, 1, 1)), "dense_conv": ("Conv", (2, 8, 1, 1)),
                      "qdq_conv": ("Conv", (2, 8, 1, 1)), "gemm_t": ("Gemm", (3, 8)), "gemm": ("Gemm", (3, 8)),
                      "matmul": ("MatMul", (4, 8))}


def test_the_table_says_which_layers_meet_2_4(tmp_path):
    rows = {r.name: r for r in two_four_table(graph(tmp_path))}
    assert {n for n, r in rows.items() if r.met} == {"conv", "qdq_conv", "gemm_t", "gemm", "matmul"}
    assert rows["conv"].density == 0.5 and rows["dense_conv"].density == 1.0
    text = format_table(list(rows.values()))
    assert "5 of 6 layers meet 2:4" in text
    assert any(line.split()[:3] == ["dense_conv", "2x8x1x1", "no"] for line in text.splitlines())
