"""`edge compress` on tiny data: every stage kind in one recipe through the real command, a report row per
stage, a final checkpoint and a .edgez that `edge export` takes, resume after an interrupted stage, and
bad recipes refused before the output directory exists."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from edge.backends.torch import TorchBackend
from edge.errors import EdgeError
from edge.preprocess import Preprocess
from export.bundle import export_bundle
from export.compress import compress
from export.sparsity import two_four_table
from train.compress import masks
from train.data import dataset_from_dir
from train.data.synth import generate
from train.engine import Checkpoint
from train.models import build_model

pytestmark = pytest.mark.slow  # end-to-end: fine-tunes through every stage kind

RECIPE = """
[[stage]]
kind = "filter_prune"
criterion = "geometric_median"
ratio = 0.5
finetune_epochs = 1

[[stage]]
kind = "magnitude_prune"
conv_sparsity = 0.6
fc_sparsity = 0.5
step = 0.3
finetune_epochs = 1

[[stage]]
kind = "dsd"
epochs = 1

[[stage]]
kind = "kmeans"
conv_bits = 5
fc_bits = 3
finetune_epochs = 1

[[stage]]
kind = "store"
"""


def edge(*args):
    return subprocess.run([sys.executable, "-m", "edge.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("compress")
    data = generate(root / "data", classes=2, videos_per_class=4, seed=1, frames=8, size=32, progress=False).out
    pre = Preprocess(16, 18)
    torch.manual_seed(0)
    model = build_model("tsm_resnet18", num_classes=2, num_segments=2, width=4)
    ckpt = Checkpoint("tsm_resnet18", {"num_classes": 2, "num_segments": 2, "width": 4}, model.state_dict(),
                      dataset_from_dir(data, "train")[1],
                      {"preprocess": pre.to_dict(), "clip": {"num_segments": 2, "window_frames": 8, "stride_frames": 2}},
                      {"fit": {"batch_size": 4, "seed": 0}})
    ckpt.save(root / "in.pt")
    (root / "recipe.toml").write_text(RECIPE)
    return root, data


def test_every_stage_runs_and_reports_through_the_command(setup):
    root, data = setup
    out = root / "out"
    r = edge("compress", "--ckpt", root / "in.pt", "--recipe", root / "recipe.toml", "--data", data, "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads((out / "report.json").read_text())["stages"]
    assert [x["kind"] for x in rows] == ["input", "filter_prune", "magnitude_prune", "dsd", "kmeans", "store"]
    assert set(rows[0]) == {"stage", "kind", "accuracy", "params", "params_nonzero", "gflops", "size_mb",
                            "latency_ms_p50"}
    assert rows[1]["params"] < rows[0]["params"] and rows[1]["gflops"] < rows[0]["gflops"]  # real surgery
    assert rows[2]["params_nonzero"] < 0.6 * rows[2]["params"]  # 60% of conv weights gone (BN stays)
    # DSD prunes every layer back to the sparsity it had (BatchNorm, never pruned, may gain or lose exact zeros)
    before, after = (masks.sparsity(Checkpoint.load(out / "stages" / d / "checkpoint.pt").build())
                     for d in ("2-magnitude_prune", "3-dsd"))
    assert after == before and before["fc"] == 0.5 and before["backbone.stages.3.1.conv2.0"] == pytest.approx(0.6, abs=1e-3)
    assert rows[5]["size_mb"] < rows[4]["size_mb"] / 3  # the .edgez against the fp32 ONNX
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "report.md").read_text().count("\n") == 2 + len(rows)
    final = Checkpoint.load(out / "checkpoint.pt")
    stored = Checkpoint.load(out / "model.edgez")
    assert final.config["inner_widths"] == stored.config["inner_widths"] == [2, 2, 4, 4, 8, 8, 16, 16]
    for k, v in final.state_dict.items():
        assert torch.equal(stored.state_dict[k], v), k
    for name, (m, kind) in masks.targets(final.build()).items():
        assert torch.unique(m.weight).numel() <= (32 if kind == "conv" else 8), name
    r = edge("export", "--ckpt", out / "model.edgez", "--out", root / "bundle", "--data", data)
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((root / "bundle" / "manifest.json").read_text())
    sparsity = manifest["sparsity"]
    assert sparsity["overall"] > 0.55 and sparsity["layers"]["fc"]["sparsity"] == pytest.approx(0.5)
    assert len(sparsity["layers"]) == len(masks.targets(final.build()))
    # the torch backend runs the pruned classifier from CSR (the CUDA kernel's reference path here)
    dense, csr = (TorchBackend(root / "bundle" / "checkpoint.pt", sparse=s) for s in (False, True))
    assert (dense.sparse_layers, csr.sparse_layers) == ([], ["fc"])
    clip = np.random.default_rng(0).standard_normal((2, 2, 3, 16, 16), dtype=np.float32)
    assert np.allclose(csr.infer(clip), dense.infer(clip), atol=1e-5)


def test_resume_skips_finished_stages_and_redoes_the_interrupted_one(setup, tmp_path):
    root, data = setup
    recipe = tmp_path / "r.toml"
    recipe.write_text('[[stage]]\nkind = "magnitude_prune"\nsparsity = 0.5\n\n[[stage]]\nkind = "kmeans"\n')
    out = tmp_path / "out"
    first = compress(root / "in.pt", recipe, data, out, progress=False)
    final = Checkpoint.load(out / "checkpoint.pt").state_dict
    done = (out / "stages" / "1-magnitude_prune" / "checkpoint.pt").stat().st_mtime_ns
    (out / "stages" / "2-kmeans" / "row.json").unlink()  # as if Ctrl-C hit during stage 2
    again = compress(root / "in.pt", recipe, data, out, resume=True, progress=False)
    assert (out / "stages" / "1-magnitude_prune" / "checkpoint.pt").stat().st_mtime_ns == done
    assert again[:2] == first[:2]  # read back, latency included: not re-measured
    timeless = [{k: v for k, v in r.items() if k != "latency_ms_p50"} for r in (first[2], again[2])]
    assert timeless[0] == timeless[1]
    for k, v in Checkpoint.load(out / "checkpoint.pt").state_dict.items():  # the redone stage is seeded
        assert torch.equal(v, final[k]), k
    other = tmp_path / "other.toml"
    other.write_text('[[stage]]\nkind = "magnitude_prune"\nsparsity = 0.6\n\n[[stage]]\nkind = "kmeans"\n')
    with pytest.raises(EdgeError, match="was made with a different recipe"):
        compress(root / "in.pt", other, data, out, resume=True, progress=False)


@pytest.mark.parametrize("recipe, message", [
    ('[[stage]]\nkind = "prune"\n', "stage 1: kind: unknown 'prune'"),
    ('[[stage]]\nkind = "magnitude_prune"\nsparsity = 1.0\n', "sparsity: 1.0 is outside [0, 1)"),
    ('[[stage]]\nkind = "filter_prune"\ncriterion = "l1"\nratio = 0.3\nlayers = "nothing.*"\n',
     "layers: 'nothing.*' matches no module"),
    ('[[stage]]\nkind = "store"\n', "'store' comes before any pruning or quantization stage"),
])
def test_a_bad_recipe_is_one_line_and_creates_nothing(setup, tmp_path, recipe, message):
    root, data = setup
    (tmp_path / "bad.toml").write_text(recipe)
    r = edge("compress", "--ckpt", root / "in.pt", "--recipe", tmp_path / "bad.toml", "--data", data,
             "--out", tmp_path / "out")
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "out").exists()


def test_two_four_and_int8_stages_keep_their_pattern_into_the_onnx_files(setup, tmp_path):
    root, data = setup
    recipe = tmp_path / "r.toml"
    recipe.write_text('[[stage]]\nkind = "semi_structured"\nfinetune_epochs = 1\n\n'
                      '[[stage]]\nkind = "int8"\nfinetune_epochs = 1\n')
    out = tmp_path / "out"
    rows = compress(root / "in.pt", recipe, data, out, progress=False)
    report = json.loads((out / "stages" / "1-semi_structured" / "two_four.json").read_text())
    by_name = {r["name"]: r for r in report}
    assert not by_name["backbone.stem.0.0"]["met"]  # 3 input channels: no groups of 4
    assert all(r["met"] for n, r in by_name.items() if r["shape"][1] % 4 == 0)  # through the fine-tune too
    assert by_name["fc"]["density"] == pytest.approx(0.5)
    # what TensorRT will see (`edge build --sparse`'s check): every ONNX Conv/Gemm weight with 4k input
    # channels still meets 2:4, BN folded in, and through the Q/DQ export of the int8 stage too
    int8_dir = out / "stages" / "2-int8"  # the QAT graph (TensorRT's) and ONNX Runtime's layout of it
    for onnx_file in (out / "stages" / "1-semi_structured" / "model.onnx", int8_dir / "model.int8.trt.onnx",
                      int8_dir / "model.int8.onnx"):
        table = two_four_table(onnx_file)
        assert len(table) == len(by_name)
        assert all(r.met for r in table if r.shape[1] % 4 == 0) and not all(r.met for r in table), onnx_file
    assert [r["kind"] for r in rows] == ["input", "semi_structured", "int8"]
    assert rows[2]["size_mb"] < rows[1]["size_mb"]  # the Q/DQ file (at this size, mostly graph, not weights)
    for name in ("model.int8.onnx", "model.int8.trt.onnx"):
        q = onnx.load(str(int8_dir / name)).graph
        assert {i.data_type for i in q.initializer if len(i.dims) == 4} == {onnx.TensorProto.INT8}
    assert "qat" in Checkpoint.load(out / "checkpoint.pt").train_state
    # `edge export --int8` of a QAT checkpoint writes its own Q/DQ graph (for TensorRT: the fake-quantized
    # model's decisions) and ONNX Runtime's layout of it instead of calibrating them
    report = export_bundle(out / "checkpoint.pt", tmp_path / "bundle", data=data, int8=True)
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["int8"]["method"] == "qat" and manifest["int8"]["tensorrt"]["method"] == "qat"
    assert report.accuracy["int8-trt"] == pytest.approx(rows[2]["accuracy"]) and "int8" in report.accuracy
    assert manifest["sparsity"]["layers"]["fc"]["two_four"]
