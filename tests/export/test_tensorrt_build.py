"""`edge build`'s own logic against a FAKE `tensorrt` module (tests/export/fake_tensorrt.py: TensorRT cannot
run here), on a real bundle from `edge export --int8`: which ONNX file is parsed, the flags per precision,
the batch profile, the timing cache read and updated, DLA, parse errors named per node, and the engine and
its metadata in the bundle. On this machine (no TensorRT) the command is one line and exit code 2."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
from fake_tensorrt import fake

from edge.bundle import Bundle
from edge.errors import EdgeError
from edge.preprocess import Preprocess
from export.bundle import export_bundle
from export.sparsity import two_four_table
from export.tensorrt import BuildOptions, build_engine
from train.data import dataset_from_dir
from train.data.synth import generate
from train.engine import Checkpoint
from train.models import build_model

GPU = {"gpu": "Orin (fake)", "compute_capability": "8.7"}


def untrained(name, width, data, path):
    """An untrained 2-segment checkpoint of model ``name`` for the synthetic ``data``, saved at ``path``."""
    torch.manual_seed(0)
    config = {"num_classes": 2, "num_segments": 2, "width": width}
    Checkpoint(name, config, build_model(name, **config).state_dict(), dataset_from_dir(data, "train")[1],
               {"preprocess": Preprocess(16, 18).to_dict(),
                "clip": {"num_segments": 2, "window_frames": 8, "stride_frames": 2}}).save(path)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("trt")
    data = generate(root / "data", classes=2, videos_per_class=4, seed=1, frames=8, size=32, progress=False).out
    export_bundle(untrained("tsm_resnet18", 4, data, root / "in.pt"), root / "bundle", data=data, int8=True)
    return root / "bundle"


@pytest.fixture
def bundle(exported, tmp_path):
    return shutil.copytree(exported, tmp_path / "bundle")


def engine_of(path):
    return json.loads(path.read_bytes())


@pytest.mark.parametrize("precision, flags, source", [("int8", ["INT8"], "model.int8.trt.onnx"),
                                                      ("best", ["INT8", "FP16"], "model.int8.trt.onnx"),
                                                      ("fp16", ["FP16"], "model.onnx"), ("fp32", [], "model.onnx")])
def test_each_precision_sets_its_flags_and_parses_its_model(bundle, monkeypatch, precision, flags, source):
    trt = fake()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    path = build_engine(bundle, BuildOptions(precision=precision, max_batch=4, workspace_mb=256), gpu=GPU)
    assert path.name == f"model.{precision}.engine"
    (network, config), = trt.built
    assert config.flags == flags and config.pools == {"WORKSPACE": 256 << 20}
    assert engine_of(path)["profiles"] == [{"clip": [[1, 2, 3, 16, 16], [4, 2, 3, 16, 16], [4, 2, 3, 16, 16]]}]
    loaded = Bundle.load(bundle)  # the engine is a hashed bundle file; its metadata rides in the manifest
    assert loaded.path(f"engine-{precision}") == path
    meta = loaded.extra["engines"][precision]
    assert meta["source"] == source and meta["tensorrt"] == "10.3.0 (fake)" and meta["max_batch"] == 4
    assert meta["gpu"] == "Orin (fake)" and meta["compute_capability"] == "8.7" and meta["sparse_layers"] is None
    assert "fp32" in loaded.extra["accuracy"]  # what export wrote survives


def test_tensorrt_8_of_jetpack_5_gets_an_explicit_batch_network(bundle, monkeypatch):
    """TensorRT 8.5 (JetPack 5) makes implicit-batch networks unless asked, and its ONNX parser refuses them:
    the fake asserts the flag TensorRT 8 needs and that TensorRT 10 deprecates (which it asserts absent)."""
    trt = fake(version="8.5.2 (fake)")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    path = build_engine(bundle, BuildOptions(precision="int8"), gpu=GPU)
    assert len(trt.built) == 1 and Bundle.load(bundle).extra["engines"]["int8"]["tensorrt"] == "8.5.2 (fake)"
    assert path.name == "model.int8.engine"
    with pytest.raises(AssertionError, match="explicit-batch"):  # the fake holds TensorRT 8's rule
        trt.Builder(None).create_network(0)


def test_sparse_sets_the_flag_and_records_the_2_4_table(bundle, monkeypatch, capsys):
    trt = fake()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    build_engine(bundle, BuildOptions(precision="int8", sparse=True), gpu=GPU)
    assert trt.built[0][1].flags == ["INT8", "SPARSE_WEIGHTS"]
    table = two_four_table(bundle / "model.int8.trt.onnx")
    meta = Bundle.load(bundle).extra["engines"]["int8"]
    assert [r["name"] for r in meta["two_four"]] == [r.name for r in table]
    met = [r.name for r in table if r.met]  # an untrained 4-wide model: some tiny int8 weights round to 0
    assert meta["sparse_layers"] == met and 0 < len(met) < len(table)
    assert f"{len(met)} of {len(table)} layers meet 2:4" in capsys.readouterr().out


def test_timing_cache_is_read_then_updated(bundle, monkeypatch, tmp_path):
    cache = tmp_path / "cache.bin"
    for expected_in in (b"", b"+tactics"):  # a second build starts from what the first wrote
        trt = fake()
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        build_engine(bundle, BuildOptions(precision="fp16", timing_cache=cache), gpu=GPU)
        assert trt.built[0][1].cache.data == expected_in
        assert cache.read_bytes() == expected_in + b"+tactics"


def test_dla_core_with_gpu_fallback_and_a_missing_core_refused(bundle, monkeypatch):
    trt = fake(dla_cores=2)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    engine = engine_of(build_engine(bundle, BuildOptions(precision="int8", dla=1), gpu=GPU))
    assert engine["device"] == "DLA" and engine["dla"] == 1 and "GPU_FALLBACK" in engine["flags"]
    monkeypatch.setitem(sys.modules, "tensorrt", fake(dla_cores=0))
    with pytest.raises(EdgeError, match="--dla 0: this device has 0 DLA core"):
        build_engine(bundle, BuildOptions(precision="int8", dla=0), gpu=GPU)


def test_parser_errors_name_each_node_and_nothing_is_written(bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", fake(unsupported={"Concat"}))
    nodes = onnx.load(str(bundle / "model.onnx")).graph.node
    concats = [(k, n.name) for k, n in enumerate(nodes) if n.op_type == "Concat"]
    with pytest.raises(EdgeError) as e:
        build_engine(bundle, BuildOptions(precision="fp32"), gpu=GPU)
    lines = str(e.value).splitlines()[1:]
    assert lines == [f"node {k} {name} (Concat): No importer registered for op: Concat" for k, name in concats]
    assert concats and not (bundle / "model.fp32.engine").exists()
    assert "engines" not in Bundle.load(bundle).extra


def test_a_failed_build_and_a_bundle_without_int8_are_clear_errors(bundle, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", fake(fail_build=True))
    with pytest.raises(EdgeError, match="could not build an engine"):
        build_engine(bundle, BuildOptions(precision="fp16"), gpu=GPU)
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["files"]["int8-trt"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setitem(sys.modules, "tensorrt", fake())
    with pytest.raises(EdgeError, match=r"model.int8.onnx is laid out for ONNX Runtime on a CPU and TensorRT refuses "
                                        r"\d+ of its Q/DQ nodes \(.*TensorRT takes INT8 only\)\); pass --calib DATA"):
        build_engine(bundle, BuildOptions(precision="int8"), gpu=GPU)
    del manifest["files"]["int8"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgeError, match="no INT8 Q/DQ model for --precision best; pass --calib DATA or run "
                                        "`edge export --int8`"):
        build_engine(bundle, BuildOptions(precision="best"), gpu=GPU)


def test_the_fake_parser_refuses_what_tensorrt_refuses_in_onnx_runtimes_int8_layout(exported):
    """The fake holds TensorRT's Q/DQ restriction (INT8, zero point 0): ONNX Runtime's CPU model fails to
    parse, the TensorRT-placed one parses; so the builder tests above would catch a wrong source file."""
    trt = fake()
    for name, ok in [("model.int8.onnx", False), ("model.int8.trt.onnx", True)]:
        parser = trt.OnnxParser(trt.Builder(None).create_network(0), None)
        assert parser.parse((exported / name).read_bytes()) is ok
        assert ok or parser.num_errors > 10


def test_calib_makes_the_qdq_model_first_when_the_bundle_has_none(exported, monkeypatch, tmp_path):
    """`edge build --precision int8 --calib DATA` on an fp32-only bundle: the same PTQ `edge export --int8`
    does (same clips, so the same Q/DQ files, ONNX Runtime's and TensorRT's), recorded in the manifest with
    their accuracy, then the engine is built from TensorRT's."""
    manifest = json.loads((exported / "manifest.json").read_text())
    data = manifest["accuracy"]["data"]
    bundle = tmp_path / "fp32only"
    export_bundle(Path(manifest["source_checkpoint"]["path"]), bundle, data=Path(data))
    assert "int8" not in Bundle.load(bundle).files
    monkeypatch.setitem(sys.modules, "tensorrt", fake())
    with pytest.raises(EdgeError, match="--calib .*nowhere"):
        build_engine(bundle, BuildOptions(precision="best", calib=tmp_path / "nowhere"), gpu=GPU)
    assert not (bundle / "model.int8.onnx").exists() and "int8" not in Bundle.load(bundle).files
    build_engine(bundle, BuildOptions(precision="int8", calib=Path(data)), gpu=GPU)
    got = Bundle.load(bundle)
    for name in ("model.int8.onnx", "model.int8.trt.onnx"):
        assert (bundle / name).read_bytes() == (exported / name).read_bytes()
    assert got.extra["int8"] == manifest["int8"] and got.extra["precision"] == ["fp32", "int8"]
    assert all(got.extra["accuracy"][k] == manifest["accuracy"][k] for k in ("int8", "int8-trt"))
    assert got.extra["engines"]["int8"]["source"] == "model.int8.trt.onnx"


def test_without_tensorrt_the_command_is_one_line_and_exit_2(exported):
    r = subprocess.run([sys.executable, "-m", "edge.cli", "build", "--bundle", str(exported)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: TensorRT is not installed: ")
    assert len(r.stderr.strip().splitlines()) == 1


def test_an_online_bundle_gets_a_per_frame_engine_with_every_buffer_in_the_profile(exported, monkeypatch, tmp_path):
    """The online model's profile: the frame and each shift buffer, batch 1..max (one row per stream)."""
    manifest = json.loads((exported / "manifest.json").read_text())
    data = Path(manifest["accuracy"]["data"])
    export_bundle(untrained("tsm_online_resnet18", 16, data, tmp_path / "on.pt"), tmp_path / "online", data=data,
                  int8=True, online=True)
    trt = fake()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    build_engine(tmp_path / "online", BuildOptions(precision="int8", max_batch=3), gpu=GPU)
    bundle = Bundle.load(tmp_path / "online")
    meta = bundle.extra["engines"]["int8"]["online"]
    assert meta["source"] == "model.online.int8.trt.onnx" and meta["file"] == "model.online.int8.engine"
    profiles = engine_of(bundle.path("engine-online-int8"))["profiles"][0]
    buffers = bundle.extra["online"]["buffers"]
    assert list(profiles) == ["frame", *(b["name"] for b in buffers)]
    assert profiles["frame"] == [[1, 3, 16, 16], [3, 3, 16, 16], [3, 3, 16, 16]]
    assert all(profiles[b["name"]] == [[1, *b["shape"]], [3, *b["shape"]], [3, *b["shape"]]] for b in buffers)
    assert len(trt.built) == 2  # the clip engine and the online one
