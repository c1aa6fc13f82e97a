"""A QAT model in ONNX Runtime's Q/DQ layout (export/qat_ort.py): the same int8 weights and the scales QAT
trained with, the additions and concatenations fused into integer kernels, the same decisions."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edge.backends.ort import OrtBackend
from export.qat_ort import float_graph, qat_for_ort, sharing
from export.qdq import constants, export_qdq
from train.compress import qat
from train.models import build_model


@pytest.fixture(scope="module")
def qat_model(tmp_path_factory):
    """A width-8 TSM ResNet-18 fake-quantized and exported as its Q/DQ graph, with inputs like its own."""
    torch.manual_seed(0)
    model = build_model("tsm_resnet18", num_classes=3, num_segments=2, width=8).eval()
    for m in model.modules():  # a trained model's BatchNorms, not the initial ones (some zero-initialized)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    clips = [torch.randn(1, 2, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(6)]
    fq = qat.quantized(model, qat.calibrate(model, clips))
    path = export_qdq(fq, clips[0], tmp_path_factory.mktemp("qat") / "m.qat.onnx")
    return path, [c[0].numpy() for c in clips]


def _producers(g: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in g.node for o in n.output}


def test_the_float_graph_keeps_every_weight_on_its_int8_grid_and_pins_every_activation(qat_model):
    path, _ = qat_model
    src = onnx.load(str(path))
    qs = [n for n in src.graph.node if n.op_type == "QuantizeLinear"]
    before = constants(src.graph)
    model, pinned = float_graph(onnx.load(str(path)))
    g = model.graph
    assert not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in g.node)
    producers = _producers(src.graph)
    chains = [sharing(q.input[0], producers) for q in qs]
    assert pinned.keys() == {x for chain in chains for x in chain}
    assert any(len(chain) > 1 for chain in chains)  # the shift's and the clip's reshapes: pinned above them too
    for q, chain in zip(qs, chains, strict=True):  # the same scale; zero point 0 exactly where a ReLU made it non-negative
        after_relu = chain[-1] in producers and producers[chain[-1]].op_type == "Relu"
        assert all(pinned[x] == (pytest.approx(float(before[q.input[1]])), 0 if after_relu else 128) for x in chain)
    assert {z for _, z in pinned.values()} == {0, 128}
    dqs = {n.output[0]: n for n in src.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in before}
    floats = constants(g)
    for name, dq in dqs.items():  # requantized per channel as ORT does (max |w| / 127): the same integers
        w, q = floats[f"{name}_float"], before[dq.input[0]]
        scale = np.abs(w).reshape(w.shape[0], -1).max(1) / 127
        scale = np.where(scale > 0, scale, 1).reshape(-1, *[1] * (w.ndim - 1))
        assert np.array_equal(np.rint(w / scale).astype(np.int8), q), name


def test_onnx_runtime_fuses_the_additions_and_shift_concatenations_and_keeps_the_qat_scales(qat_model, tmp_path):
    path, clips = qat_model
    out = qat_for_ort(path, tmp_path / "m.int8.onnx", clips)
    fg, pinned = float_graph(onnx.load(str(path)))
    g = onnx.load(str(out)).graph
    values = constants(g)
    quantized = {n.input[0]: (float(values[n.input[1]]), int(values[n.input[2]]))
                 for n in g.node if n.op_type == "QuantizeLinear"}
    for q in (n for n in onnx.load(str(path)).graph.node if n.op_type == "QuantizeLinear"):
        x = q.input[0]
        if [n.op_type for n in fg.graph.node if x in n.input] == ["Relu"]:
            continue  # a BatchNorm's output before its ReLU: ORT fuses the ReLU into the conv and quantizes after
        got = [quantized[t] for t in sharing(x, _producers(fg.graph)) if t in quantized]
        assert got and all(p == (pytest.approx(pinned[x][0]), pinned[x][1]) for p in got), x
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    # the QAT graph runs these in float; here every residual addition and shift concatenation is integer
    assert ops.count("QLinearAdd") == 8 and "Add" not in ops and ops.count("QLinearConv") == 20
    assert ops.count("QLinearConcat") > 0 and "Relu" not in ops


def test_the_onnx_runtime_layout_decides_as_the_qat_graph_does(qat_model, tmp_path):
    path, clips = qat_model
    out = qat_for_ort(path, tmp_path / "m.int8.onnx", clips)
    x = np.stack(clips)
    want = OrtBackend(path, "int8").infer(x)
    got = OrtBackend(out, "int8").infer(x)
    # the same weights and conv-input scales; the additions' outputs are quantized here and float there
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()
    assert (got.argmax(1) == want.argmax(1)).all()
