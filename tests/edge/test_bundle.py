"""Bundle manifest: round trip, and every kind of malformed bundle is one clear EdgeError."""

import json

import pytest

from edge.bundle import SCHEMA_VERSION, Bundle, ClipSpec, FlowInput
from edge.errors import EdgeError
from edge.motion import FlowParams, MotionSpec
from edge.preprocess import FLOW_MEAN, FLOW_STD, Preprocess


@pytest.fixture
def bundle_dir(tmp_path):
    root = tmp_path / "b"
    root.mkdir()
    (root / "model.onnx").write_bytes(b"not really onnx, but hashed")
    b = Bundle(root=root, name="tsm_resnet18", labels=["a", "b", "c"], preprocess=Preprocess(32, 36),
               clip=ClipSpec(8, 32, 8), files={}, extra={"accuracy": {"fp32": 0.9}})
    b.add_file("fp32", "model.onnx")
    b.save()
    return root


def test_round_trip_keeps_everything(bundle_dir):
    b = Bundle.load(bundle_dir)
    assert b.labels == ["a", "b", "c"] and b.name == "tsm_resnet18"
    assert b.preprocess == Preprocess(32, 36) and b.clip == ClipSpec(8, 32, 8)
    assert b.input_shape() == (1, 8, 3, 32, 32)
    assert b.precisions == ["fp32"] and b.path("fp32").name == "model.onnx"
    assert b.extra["accuracy"] == {"fp32": 0.9}
    assert (bundle_dir / "labels.txt").read_text() == "a\nb\nc\n"
    assert not list(bundle_dir.glob(".*part*")), "no temp files left behind"


def test_a_two_stream_bundle_keeps_its_flow_input(bundle_dir):
    b = Bundle.load(bundle_dir)
    flow = FlowInput("flow", Preprocess(32, 36, FLOW_MEAN, FLOW_STD),
                     MotionSpec("stacked_flow", flow=FlowParams(method="farneback")))
    b.flow = flow
    b.save()
    again = Bundle.load(bundle_dir)
    assert again.flow == flow and "flow" not in again.extra
    assert json.loads((bundle_dir / "manifest.json").read_text())["flow"]["preprocess"]["color"] == "flow-xy"
    assert Bundle.load(bundle_dir).input_shape() == (1, 8, 3, 32, 32)  # the RGB clip; the flow clip beside it


def test_a_flow_stream_bundle_takes_two_channel_clips(tmp_path):
    b = Bundle(root=tmp_path, name="res3d18", labels=["a"], preprocess=Preprocess(32, 36, FLOW_MEAN, FLOW_STD),
               clip=ClipSpec(8, 32, 8), files={})
    assert b.input_shape(2) == (2, 8, 2, 32, 32)


def _edit(root, fn):
    m = json.loads((root / "manifest.json").read_text())
    fn(m)
    (root / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m.update(schema_version=SCHEMA_VERSION + 1), "schema_version"),
    (lambda m: m.pop("labels"), "malformed manifest"),
    (lambda m: m.update(labels=[]), "'labels' is empty"),
    (lambda m: m["clip"].update(mode="sideways"), "clip.mode"),
    (lambda m: m["files"]["fp32"].update(sha256="0" * 64), "does not match its sha256"),
    (lambda m: m["files"]["fp32"].update(path="gone.onnx"), "missing"),
])
def test_malformed_manifests_are_refused(bundle_dir, mutate, message):
    _edit(bundle_dir, mutate)
    with pytest.raises(EdgeError, match=message):
        Bundle.load(bundle_dir)


def test_missing_dir_and_bad_json(tmp_path):
    with pytest.raises(EdgeError, match="not a directory"):
        Bundle.load(tmp_path / "nope")
    (tmp_path / "manifest.json").write_text("{oops")
    with pytest.raises(EdgeError, match="not valid JSON"):
        Bundle.load(tmp_path)


def test_asking_for_an_absent_precision_names_what_exists(bundle_dir):
    with pytest.raises(EdgeError, match="has no 'int8' model.*fp32"):
        Bundle.load(bundle_dir).path("int8")
