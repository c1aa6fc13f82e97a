"""Export path on tiny models: parity with torch (the TSM shift must not be traced as constants) and a
Q/DQ INT8 model that is smaller and agrees with fp32."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export.int8 import quantize_int8
from export.onnx import OPSET, export_onnx, parity_error
from train.models import build_model, list_models

WIDTH = {"resnet18": 8, "resnet50": 8, "mobilenetv2": 0.25}
# every TSN / TSM / MSTSM backbone (TFDEM: tests/train/test_models_tfdem.py)
SEGMENT_MODELS = [n for n in list_models() if n.split("_")[0] in ("tsn", "tsm", "mstsm") and "tfdem" not in n]


def tiny(name):
    torch.manual_seed(0)
    m = build_model(name, num_classes=6, num_segments=4, width=WIDTH[name.rsplit("_", 1)[1]])
    with torch.no_grad():  # realistic BN statistics, non-zero residual branches
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                torch.nn.init.uniform_(mod.weight, 0.5, 1.5)
                mod.momentum = None
        m.train()(torch.randn(4, 4, 3, 32, 32))
    return m.eval()


@pytest.mark.parametrize("name", SEGMENT_MODELS)
def test_onnx_matches_torch_on_new_inputs_and_keeps_time_order(name, tmp_path):
    m = tiny(name)
    path = export_onnx(m, torch.randn(1, 4, 3, 32, 32), tmp_path / "m.onnx")
    model = onnx.load(str(path))
    assert model.opset_import[0].version == OPSET
    x = np.random.default_rng(1).standard_normal((3, 4, 3, 32, 32), dtype=np.float32)  # batch 3: dynamic
    assert parity_error(m, path, x) <= 1e-4  # edge export's bound (logits here reach 2-4)
    rev = np.ascontiguousarray(x[:, ::-1])
    assert parity_error(m, path, rev) <= 1e-4  # a shift traced as constants would fail here
    assert not list(tmp_path.glob(".*part*"))


@pytest.mark.parametrize("scale", [0.01, 100.0])
def test_parity_error_is_absolute_for_unit_logits_and_relative_beyond(scale, tmp_path):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    with torch.no_grad():
        m[1].weight.mul_(scale)
    x = np.random.default_rng(0).standard_normal((2, 1, 3, 2, 2), dtype=np.float32)
    path = export_onnx(m, torch.from_numpy(x[:1]), tmp_path / "m.onnx")
    with torch.no_grad():
        m[1].bias.add_(1e-3)  # torch now differs from the file by 1e-3 on every logit
        largest = m(torch.from_numpy(x)).abs().max().item()
    assert (largest < 1) == (scale < 1)
    assert parity_error(m, path, x) == pytest.approx(1e-3 / max(1.0, largest), rel=1e-2)


def test_int8_qdq_is_smaller_and_agrees_with_fp32(tmp_path):
    m = tiny("tsm_resnet18")
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal((4, 3, 32, 32), dtype=np.float32) for _ in range(16)]
    fp32 = export_onnx(m, torch.from_numpy(clips[0][None]), tmp_path / "m.onnx")
    int8 = quantize_int8(fp32, tmp_path / "m.int8.onnx", clips)
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    s32 = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    s8 = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    x = np.stack(clips[:8])
    a, b = s32.run(None, {"clip": x})[0], s8.run(None, {"clip": x})[0]
    a, b = a - a.mean(0), b - b.mean(0)  # what varies from clip to clip
    corr = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert corr > 0.9, f"int8 logits correlate only {corr:.3f} with fp32"
