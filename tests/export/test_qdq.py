"""QAT fake quantization -> Q/DQ ONNX: int8 weights in the file, ONNX Runtime computing what the
fake-quantized torch model computes, and the scales TensorRT's explicit quantization expects."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from edge.backends.ort import OrtBackend
from export.qdq import export_qdq
from export.trt_qdq import tensorrt_qdq_problems
from train.compress import qat
from train.compress.masks import targets
from train.models import build_model


def test_weight_scales_are_per_output_channel_and_symmetric():
    w = torch.tensor([[0.333, -1.27], [0.0, 0.0], [2.54, 1.011]])
    assert qat.weight_scales(w).tolist() == pytest.approx([0.01, 1.0, 0.02])
    q = qat.fake_weight(w, qat.weight_scales(w))  # each value to the nearest step of its channel's scale
    assert torch.allclose(q, torch.tensor([[0.33, -1.27], [0.0, 0.0], [2.54, 1.02]]), atol=1e-6)


def test_calibration_takes_the_largest_input_of_each_layer():
    torch.manual_seed(0)
    model = build_model("tsn_resnet18", num_classes=3, num_segments=2, width=4)
    x = torch.randn(2, 2, 3, 16, 16)
    scales = qat.calibrate(model, [x, 2 * x])
    assert scales.keys() == targets(model).keys() | qat.norms(model).keys()
    assert scales["backbone.stem.0.0"] == pytest.approx(2 * x.abs().max().item() / 127)


@pytest.mark.parametrize("name", ["tsm_resnet18", "mstsm_mobilenetv2"])
def test_qdq_export_has_int8_weights_and_matches_the_fake_quantized_model(name, tmp_path):
    torch.manual_seed(0)
    cfg = {"num_classes": 3, "num_segments": 2, "width": 4 if "resnet" in name else 0.25}
    model = build_model(name, **cfg).eval()
    x = torch.randn(2, 2, 3, 32, 32)
    fq = qat.quantized(model, qat.calibrate(model, [x]))
    path = export_qdq(fq, x[:1], tmp_path / "m.int8.onnx")
    graph = onnx.load(str(path)).graph
    layers = targets(model)
    weights = [i for i in graph.initializer if numpy_helper.to_array(i).ndim >= 2]
    assert len(weights) == len(layers) and all(i.data_type == onnx.TensorProto.INT8 for i in weights)
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] in {w.name for w in weights} for n in graph.node)
    # one QuantizeLinear per layer input and per BatchNorm output; every BatchNorm folded into its conv
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) == len(layers) + len(qat.norms(model))
    assert not any(n.op_type == "BatchNormalization" for n in graph.node)
    assert tensorrt_qdq_problems(onnx.load(str(path))) == []  # `edge build` compiles it as it is
    with torch.no_grad():
        want = fq(x).numpy()
    got = OrtBackend(path, "int8").infer(x.numpy())
    # the same int8 grids; folding the BatchNorm into the weight scale changes float rounding, so a value
    # near a rounding tie may land one step away, and that step travels on: through this width-4 ResNet, up to
    # 2.8% of the largest logit with ONNX Runtime 1.32 (a wrong scale or a missing Q/DQ costs tens of %)
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
    assert (got.argmax(1) == want.argmax(1)).all()


def test_onnx_runtime_fuses_every_conv_into_an_int8_convolution(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model("tsm_resnet18", num_classes=3, num_segments=2, width=8).eval()
    x = torch.randn(1, 2, 3, 32, 32)
    path = export_qdq(qat.quantized(model, qat.calibrate(model, [x])), x, tmp_path / "m.int8.onnx")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    assert ops.count("QLinearConv") == 20 and "Conv" not in ops
