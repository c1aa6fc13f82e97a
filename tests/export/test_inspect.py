"""``edge info --ckpt``: the ``edge.checkpoints`` entry point exports a real checkpoint (.pt, .edgez, one
trained for INT8) to ONNX and the runtime counts on it; bad checkpoints are one-line errors, exit code 2."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest
import torch
from click.testing import CliRunner

from edge.bundle import ClipSpec
from edge.cli import main
from edge.errors import EdgeError
from edge.preprocess import Preprocess
from export.inspect import to_onnx
from train.compress import qat
from train.compress.store import write_edgez
from train.engine import Checkpoint
from train.models import build_model

TSM = {"num_classes": 6, "num_segments": 4, "width": 8}
C3D = {"num_classes": 6, "num_segments": 8, "width": 8, "size": 32}


def checkpoint(name: str, config: dict, train_state: dict | None = None) -> Checkpoint:
    torch.manual_seed(0)
    model = build_model(name, **config)
    with torch.no_grad():  # BatchNorms that are not identity, as after training: folded, an untrained one
        for m in model.modules():  # gives all-zero biases that onnxsim stores once (a note in the table)
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d):
                torch.nn.init.uniform_(m.weight, 0.5, 1.5)
                torch.nn.init.uniform_(m.bias, -0.1, 0.1)
    t = config["num_segments"]
    return Checkpoint(name, config, model.state_dict(), list("abcdef"),
                      {"preprocess": Preprocess(size=32, resize=36).to_dict(), "clip": ClipSpec(t, 2 * t, 4).to_dict(),
                       "shape": [t, 3, 32, 32]}, train_state or {})


@pytest.fixture(scope="module")
def tsm_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    checkpoint("tsm_resnet18", TSM).save(path)
    return path


def invoke(*args):
    return CliRunner().invoke(main, ["info", *map(str, args)])


def test_the_entry_point_is_registered_and_is_to_onnx():
    (ep,) = entry_points(group="edge.checkpoints", name="to_onnx")
    assert ep.load() is to_onnx


def test_to_onnx_writes_the_model_and_the_manifest_it_would_start_from(tsm_ckpt, tmp_path):
    bundle = to_onnx(tsm_ckpt, tmp_path)
    assert bundle.files.keys() == {"fp32"} and (tmp_path / "model.onnx").is_file()
    m = bundle.manifest()
    assert m["input"] == {"name": "clip", "shape": [1, 4, 3, 32, 32], "dtype": "float32", "layout": "NTCHW"}
    assert m["name"] == "tsm_resnet18" and m["labels"] == list("abcdef") and m["clip"]["window_frames"] == 8
    assert m["source_checkpoint"]["config"] == TSM and m["source_checkpoint"]["path"] == str(tsm_ckpt)


def test_info_ckpt_prints_params_and_gmacs_of_the_exported_graph(tsm_ckpt):
    r = invoke("--ckpt", tsm_ckpt)
    assert r.exit_code == 0, r.output
    assert "model        tsm_resnet18" in r.stdout
    assert f"source       checkpoint {tsm_ckpt} (exported to ONNX for counting)" in r.stdout
    assert "input        clip  float32  [1, 4, 3, 32, 32]  NTCHW" in r.stdout
    # 177,102 torch parameters less one per BatchNorm channel (600), folded by the exporter; the MACs are
    # torch's FlopCounterMode count of the same model (tests/edge/test_info.py)
    assert "fp32         params 176,502; 3,368,448 MACs = 0.003368 GMACs per clip (model.onnx)" in r.stdout
    assert "int8" not in r.stdout
    rows = r.stdout[r.stdout.index("layers of the fp32 model"):].splitlines()
    assert len(rows) == 2 + 21 + 1 and rows[-1].split() == ["total", "176,502", "3,368,448", "100.0"]


def test_info_ckpt_json_is_the_manifest_without_the_temporary_files(tsm_ckpt):
    r = invoke("--ckpt", tsm_ckpt, "--json")
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert "files" not in m and m["input"]["shape"] == [1, 4, 3, 32, 32] and m["preprocess"]["size"] == 32


def test_a_3d_model_from_an_edgez(tmp_path):
    ckpt = checkpoint("c3d_b5", C3D)
    write_edgez(ckpt, tmp_path / "model.edgez")
    r = invoke("--ckpt", tmp_path / "model.edgez")
    assert r.exit_code == 0, r.output
    assert "input        clip  float32  [1, 8, 3, 32, 32]  NTCHW" in r.stdout
    assert "fp32         params 173,702; 17,020,416 MACs = 0.01702 GMACs per clip (model.onnx)" in r.stdout
    body = r.stdout[r.stdout.index("layers of the fp32 model"):].splitlines()[2:-1]
    assert [row.split()[1] for row in body] == ["Conv"] * 5 + ["Gemm"] * 3


def test_a_checkpoint_trained_for_int8_shows_its_qdq_model_too(tmp_path):
    ckpt = checkpoint("tsm_resnet18", TSM)
    model = ckpt.build()
    scales = qat.calibrate(model, [torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))])
    ckpt.train_state = {"qat": scales}
    ckpt.save(tmp_path / "qat.pt")
    r = invoke("--ckpt", tmp_path / "qat.pt")
    assert r.exit_code == 0, r.output
    assert "int8         params 176,502; 3,368,448 MACs = 0.003368 GMACs per clip (model.int8.onnx)" in r.stdout


def test_bad_checkpoints_are_one_line_errors_naming_the_file(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    torch.save({"model": "no_such_model", "config": {}, "state_dict": {}, "labels": ["a"],
                "input": {"preprocess": Preprocess(32, 36).to_dict(), "clip": ClipSpec(4, 8, 4).to_dict()}},
               tmp_path / "unknown.pt")
    torch.save({"weights": [1, 2, 3]}, tmp_path / "dict.pt")
    (tmp_path / "junk.edgez").write_bytes(b"EDGEZ" + b"\x00" * 3)
    cases = {"junk.pt": "not an edge checkpoint", "dict.pt": "not an edge checkpoint (KeyError",
             "unknown.pt": "cannot rebuild its model (KeyError", "junk.edgez": ""}
    for name, message in cases.items():
        r = invoke("--ckpt", tmp_path / name)
        assert r.exit_code == 2, (name, r.output)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, (name, r.stderr)
        assert f"{tmp_path / name}" in r.stderr and message in r.stderr, (name, r.stderr)
        assert r.stdout == ""
    with pytest.raises(EdgeError, match="cannot rebuild its model"):
        to_onnx(tmp_path / "unknown.pt", tmp_path / "out")


def test_an_untrained_checkpoints_shared_zero_weights_are_counted_once_and_noted(tmp_path):
    """Zero-init residual BatchNorms fold into all-zero convolutions and biases, which onnxsim stores once:
    the model's params are what the file holds, the rows what each layer reads."""
    torch.manual_seed(0)
    model = build_model("tsm_resnet18", **TSM)
    Checkpoint("tsm_resnet18", TSM, model.state_dict(), list("abcdef"),
               {"preprocess": Preprocess(size=32, resize=36).to_dict(), "clip": ClipSpec(4, 8, 4).to_dict()}
               ).save(tmp_path / "init.pt")
    r = invoke("--ckpt", tmp_path / "init.pt")
    assert r.exit_code == 0, r.output
    assert "fp32         params 127,062; 3,368,448 MACs" in r.stdout  # the MACs do not care
    assert r.stdout.splitlines()[-2].split() == ["total", "176,502", "3,368,448", "100.0"]
    assert r.stdout.splitlines()[-1] == ("note: 8 weight tensor(s) are shared by several layers and stored once, "
                                         "so the rows add up to more than the model's 127,062 params")
