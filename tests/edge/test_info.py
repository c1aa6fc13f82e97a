"""``edge info`` and edge.inspect on real exported models: parameters, multiply-adds per clip (equal to torch's
own count), the per-layer table, INT8 models, the bundle command's JSON and summary, and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from edge.bundle import Bundle, ClipSpec
from edge.cli import main
from edge.errors import EdgeError
from edge.inspect import inspect_onnx
from edge.preprocess import Preprocess

pytest.importorskip("torch", reason="builds its models with torch: not on a runtime-only install (Python 3.8)")

import onnx_tool  # noqa: E402 - onnx-tool 1.0 needs Python 3.10 too
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from export.int8 import quantize_int8  # noqa: E402
from export.onnx import export_onnx  # noqa: E402
from train.models import build_model  # noqa: E402

MODELS = {  # name -> (config, clip shape (T, C, H, W))
    "tsm_resnet18": ({"num_classes": 6, "num_segments": 4, "width": 8}, (4, 3, 32, 32)),
    "c3d_b5": ({"num_classes": 6, "num_segments": 8, "width": 8, "size": 32}, (8, 3, 32, 32)),
}
# torch's FlopCounterMode on these models, pinned so a change of either counter shows
TORCH_MACS = {"tsm_resnet18": 3_368_448, "c3d_b5": 17_020_416}


def tiny(name: str) -> torch.nn.Module:
    """A model with BatchNorms that are not identity (an untrained zero-init residual BN would fold into
    all-zero convolutions, which onnxsim then stores once)."""
    torch.manual_seed(0)
    config, shape = MODELS[name]
    m = build_model(name, **config)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d):
                torch.nn.init.uniform_(mod.weight, 0.5, 1.5)
                torch.nn.init.uniform_(mod.bias, -0.1, 0.1)
    return m.eval()


def torch_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (model, example clip, fp32 ONNX path)."""
    out = tmp_path_factory.mktemp("models")
    result = {}
    for name, (_, shape) in MODELS.items():
        model = tiny(name)
        x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(1))
        result[name] = (model, x, export_onnx(model, x, out / f"{name}.onnx"))
    return result


@pytest.mark.parametrize("name", list(MODELS))
def test_macs_per_clip_equal_torchs_count_on_the_same_model(exported, name):
    model, x, path = exported[name]
    info = inspect_onnx(path)
    assert info.inputs[0].name == "clip" and info.inputs[0].shape == (1, *MODELS[name][1])
    assert info.inputs[0].dtype == "float32"
    assert info.macs == torch_macs(model, x) == TORCH_MACS[name]
    assert info.gmacs == pytest.approx(TORCH_MACS[name] / 1e9)


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_tools_own_total_adds_one_add_per_output_of_a_layer_with_a_bias(exported, name):
    """The difference docs/design.md names: onnx-tool's Conv/Gemm profile counts the bias add, we do not."""
    _, _, path = exported[name]
    g = onnx_tool.Model(str(path)).graph
    g.shape_infer({"clip": np.zeros((1, *MODELS[name][1]), np.float32)})
    g.profile()
    weighted = [n for n in g.nodemap.values() if n.op_type in ("Conv", "Gemm")]
    with_bias = sum(int(np.prod(n.outshape)) for n in weighted if len(n.input) == 3)
    assert with_bias > 0
    assert sum(n.macs[0] for n in weighted) == TORCH_MACS[name] + with_bias


def test_params_are_the_torch_models_with_batchnorm_folded(exported):
    """The exporter folds each BatchNorm (gamma, beta: 2 per channel) into its convolution's new bias (1 per
    channel): the graph has one parameter per BatchNorm channel fewer than the torch model."""
    for name, (model, _, path) in exported.items():
        info = inspect_onnx(path)
        torch_params = sum(p.numel() for p in model.parameters())
        bn_channels = sum(m.num_features for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
        assert info.params == torch_params - bn_channels, name
        assert sum(lay.params for lay in info.layers) == info.params, name  # every weight sits in a layer
    assert inspect_onnx(exported["tsm_resnet18"][2]).params == 177_102 - 600
    assert inspect_onnx(exported["c3d_b5"][2]).params == 173_702  # C3D has no BatchNorm


@pytest.mark.parametrize("name", list(MODELS))
def test_the_table_has_one_row_per_conv_and_gemm_in_graph_order_summing_to_the_total(exported, name):
    _, _, path = exported[name]
    info = inspect_onnx(path)
    nodes = [n for n in onnx.load(str(path)).graph.node if n.op_type in ("Conv", "Gemm")]
    assert [(lay.name, lay.op) for lay in info.layers] == [(n.name, n.op_type) for n in nodes]
    assert sum(lay.macs for lay in info.layers) == info.macs
    assert all(lay.macs > 0 and lay.params > 0 for lay in info.layers)


def test_a_rows_numbers_are_its_convolutions(exported):
    """The TSM stem on 4 segments of 32 px: 8 filters of 3x7x7 at stride 2 -> 4x8x16x16 outputs."""
    layer = inspect_onnx(exported["tsm_resnet18"][2]).layers[0]
    assert layer.op == "Conv" and layer.output_shape == (4, 8, 16, 16)
    assert layer.params == 8 * 3 * 7 * 7 + 8  # weights and the folded BatchNorm's bias
    assert layer.macs == 4 * 8 * 16 * 16 * 3 * 7 * 7


def test_an_int8_qdq_model_counts_its_int8_weights_and_the_same_macs(exported, tmp_path):
    _, x, path = exported["tsm_resnet18"]
    rng = np.random.default_rng(0)
    int8 = quantize_int8(path, tmp_path / "m.int8.onnx", [rng.standard_normal(x.shape[1:], dtype=np.float32)
                                                          for _ in range(4)])
    graph = onnx.load(str(int8)).graph
    assert any(i.data_type == onnx.TensorProto.INT8 for i in graph.initializer)
    fp32, q = inspect_onnx(path), inspect_onnx(int8)
    assert q.params == fp32.params  # int8 weights and int32 biases count; scales and zero points do not
    assert q.macs == fp32.macs == TORCH_MACS["tsm_resnet18"]
    assert [lay.name for lay in q.layers] == [lay.name for lay in fp32.layers]
    assert [lay.params for lay in q.layers] == [lay.params for lay in fp32.layers]


def test_a_matmul_graph_counts_its_matmul_and_not_its_int64_constants(tmp_path):
    from conftest import write_color_model  # tests/edge/conftest.py: a hand-built ONNX graph

    write_color_model(tmp_path / "color.onnx", t=4, s=16, classes=5)  # ReduceMean then (1x3) @ (3x5)
    info = inspect_onnx(tmp_path / "color.onnx")
    assert info.params == 15  # the float weights; the int64 axes constant is not a parameter
    assert [(lay.op, lay.output_shape, lay.params, lay.macs) for lay in info.layers] == [("MatMul", (1, 5), 15, 15)]
    assert inspect_onnx(tmp_path / "color.onnx", {"clip": [1, 4, 3, 64, 64]}).macs == 15  # pooled first


def test_bad_models_and_shapes_are_one_line_errors(tmp_path, exported):
    with pytest.raises(EdgeError, match="no such file"):
        inspect_onnx(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a protobuf" * 10)
    with pytest.raises(EdgeError, match=r"junk\.onnx: not an ONNX model") as e:
        inspect_onnx(tmp_path / "junk.onnx")
    assert "\n" not in str(e.value)
    path = exported["tsm_resnet18"][2]
    with pytest.raises(EdgeError, match="rank 5, the given shape"):
        inspect_onnx(path, {"clip": [1, 3, 32, 32]})
    with pytest.raises(EdgeError, match="no input named 'frames'"):
        inspect_onnx(path, {"frames": [1, 4, 3, 32, 32]})
    m = onnx.load(str(path))
    m.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "height"
    onnx.save(m, str(tmp_path / "symbolic.onnx"))
    with pytest.raises(EdgeError, match="symbolic axis 3 \\('height'\\)"):
        inspect_onnx(tmp_path / "symbolic.onnx")


# ------------------------------------------------------------------------------------------ the command


@pytest.fixture(scope="module")
def bundle(exported, tmp_path_factory):
    """A real bundle around the exported TSM: fp32 + INT8 Q/DQ."""
    root = tmp_path_factory.mktemp("bundle")
    _, x, path = exported["tsm_resnet18"]
    (root / "model.onnx").write_bytes(path.read_bytes())
    rng = np.random.default_rng(0)
    quantize_int8(root / "model.onnx", root / "model.int8.onnx",
                  [rng.standard_normal(x.shape[1:], dtype=np.float32) for _ in range(4)])
    b = Bundle(root=root, name="tsm-tiny", labels=list("abcdef"), preprocess=Preprocess(size=32, resize=36),
               clip=ClipSpec(4, 16, 4), files={})
    b.add_file("fp32", "model.onnx")
    b.add_file("int8", "model.int8.onnx")
    b.save()
    return root


def invoke(*args):
    return CliRunner().invoke(main, ["info", *map(str, args)])


def test_info_on_a_bundle_prints_its_manifest_as_json_by_default(bundle):
    for args in ((bundle,), (bundle, "--json")):
        r = invoke(*args)
        assert r.exit_code == 0, r.output
        m = json.loads(r.stdout)
        assert m == Bundle.load(bundle).manifest() and m["name"] == "tsm-tiny"


def test_info_summary_on_a_bundle_prints_params_gmacs_and_the_layer_table(bundle):
    r = invoke(bundle, "--summary")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "model        tsm-tiny" in out
    assert "input        clip  float32  [1, 4, 3, 32, 32]  NTCHW" in out
    assert "fp32         params 176,502; 3,368,448 MACs = 0.003368 GMACs per clip (model.onnx)" in out
    assert "int8         params 176,502; 3,368,448 MACs = 0.003368 GMACs per clip (model.int8.onnx)" in out
    assert "clip mode: 4 frames sampled from the last 16, a decision every 4" in out
    rows = out[out.index("layers of the fp32 model"):].splitlines()
    assert "(21 weighted" in rows[0] and rows[1].split() == ["name", "op", "output", "params", "MACs", "MACs", "%"]
    body = rows[2:-1]
    assert len(body) == 21 and rows[-1].split() == ["total", "176,502", "3,368,448", "100.0"]
    stem = body[0].split()
    assert stem == ["/backbone/stem/stem.0/stem.0.0/Conv", "Conv", "4x8x16x16", "1,184", "1,204,224", "35.8"]
    assert sum(int(r.split()[4].replace(",", "")) for r in body) == 3_368_448
    assert "note:" not in out  # no shared weights, none outside the layers


@pytest.mark.parametrize("args, message", [
    ((), "edge info: give either a bundle directory or --ckpt CHECKPOINT (exactly one)"),
    (("somedir", "--ckpt", "x.pt"), "edge info: give either a bundle directory or --ckpt CHECKPOINT (exactly one)"),
    (("no-such-bundle",), "bundle no-such-bundle: not a directory"),
    (("--ckpt", "no-such.pt"), "checkpoint no-such.pt: no such file"),
])
def test_bad_arguments_are_one_line_errors_with_exit_code_2(args, message):
    r = invoke(*args)
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: {message}") and r.stderr.count("\n") == 1
    assert r.stdout == ""


def test_a_bundle_whose_onnx_is_not_onnx_is_a_one_line_error(bundle, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    (broken / "model.onnx").write_bytes(b"garbage")
    b = Bundle.load(broken, verify_hashes=False)
    b.add_file("fp32", "model.onnx")  # re-hash, so the manifest is valid and only the model is bad
    b.save()
    r = invoke(broken, "--summary")
    assert r.exit_code == 2 and "model.onnx: not an ONNX model" in r.stderr and r.stderr.count("\n") == 1


def test_counting_needs_no_torch(exported):
    """A Jetson image runs `edge info` on a bundle with the runtime alone."""
    import subprocess
    import sys

    code = ("import sys; from edge.inspect import inspect_onnx; "
            f"print(inspect_onnx({str(exported['c3d_b5'][2])!r}).macs); print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == [str(TORCH_MACS["c3d_b5"]), "False"]


def test_the_manifest_input_shape_is_counted_at_batch_1():
    from edge.inspect import bundle_shapes

    assert bundle_shapes({"input": {"name": "clip", "shape": ["batch", 4, 3, 32, 32]}}) == {"clip": [1, 4, 3, 32, 32]}
    assert bundle_shapes({"input": {"name": "x", "shape": [8, 2, 3, 16, 16]}}) == {"x": [1, 2, 3, 16, 16]}
    assert bundle_shapes({"input": {"shape": [1, "t", 3, 16, 16]}}) == {} == bundle_shapes({})


def test_weights_outside_the_weighted_layers_count_and_are_noted(tmp_path):
    from conftest import write_color_model
    from onnx import TensorProto, helper

    from edge.inspect import _table_notes

    write_color_model(tmp_path / "color.onnx", classes=5)
    m = onnx.load(str(tmp_path / "color.onnx"))  # logits + a float offset: a parameter no Conv/MatMul owns
    m.graph.node[-1].output[0] = "mm"
    m.graph.node.append(helper.make_node("Add", ["mm", "offset"], ["logits"]))
    m.graph.initializer.append(helper.make_tensor("offset", TensorProto.FLOAT, [5], [0.0, 1, 2, 3, 4]))
    onnx.save(m, str(tmp_path / "offset.onnx"))
    info = inspect_onnx(tmp_path / "offset.onnx")
    assert (info.params, info.macs, [lay.params for lay in info.layers]) == (20, 15, [15])
    assert _table_notes(info) == ["note: 5 params are outside the weighted layers (e.g. an unfolded BatchNorm)"]
