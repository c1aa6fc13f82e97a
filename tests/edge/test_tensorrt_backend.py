"""`edge.backends.tensorrt` against FAKES of TensorRT's runtime and pycuda (tests/edge/fake_trt_runtime.py:
neither can run here): named I/O tensors and buffers, two clips in flight on two buffer sets, the checks that
refuse an engine from another TensorRT or GPU, `open_backend` picking the engine `edge build` recorded, more
requests than the engine's batch, and the online model on its online engine (several named inputs and outputs).
Without TensorRT (this machine) opening the backend is a one-line error."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_trt_runtime import CLASSES, WEIGHTS, install

from edge.backends import open_backend
from edge.backends.tensorrt import TensorRTBackend, check_engine_matches, in_fixed_batches
from edge.bundle import Bundle, ClipSpec
from edge.errors import EdgeError
from edge.online import OnlineModel
from edge.pipeline import _run_batch
from edge.preprocess import Preprocess

SHAPE = (2, 3, 4, 4)  # T, C, H, W
META = {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7"}


@pytest.fixture
def engine_file(tmp_path):
    path = tmp_path / "model.int8.engine"
    path.write_bytes(b"fake engine")
    return path


def expected(clip):
    return clip.reshape(clip.shape[0], -1).mean(1, keepdims=True) * WEIGHTS


def test_infer_runs_the_engine_on_its_named_tensors(monkeypatch, engine_file):
    trt = install(monkeypatch, SHAPE)
    backend = TensorRTBackend(engine_file, META, "int8")
    clip = np.random.default_rng(0).standard_normal((1, *SHAPE), dtype=np.float32)
    np.testing.assert_allclose(backend.infer(clip), expected(clip), rtol=1e-6)
    assert backend.infer(clip * 2).shape == (1, CLASSES)
    contexts = trt.engines[0].contexts
    assert len(contexts) == 2 and [c.runs for c in contexts] == [1, 1]  # the two buffer sets alternate
    assert all(set(c.addresses) == {"clip", "logits"} for c in contexts)
    assert contexts[0].addresses["clip"] != contexts[1].addresses["clip"]


def test_two_clips_in_flight_keep_their_own_buffers(monkeypatch, engine_file):
    install(monkeypatch, SHAPE, max_batch=4)
    backend = TensorRTBackend(engine_file, META, "int8", batch=2)
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((2, *SHAPE), dtype=np.float32) for _ in range(2))
    backend.submit(a)
    backend.submit(b)  # queued while a's work is still pending
    with pytest.raises(EdgeError, match="2 clips already in flight"):
        backend.submit(a)
    np.testing.assert_allclose(backend.collect(), expected(a), rtol=1e-6)
    np.testing.assert_allclose(backend.collect(), expected(b), rtol=1e-6)


def test_a_batch_outside_the_profile_is_refused(monkeypatch, engine_file):
    install(monkeypatch, SHAPE, max_batch=2)
    with pytest.raises(EdgeError, match="batch 3 is outside its profile"):
        TensorRTBackend(engine_file, META, "int8", batch=3)


@pytest.mark.parametrize("meta, message", [
    ({**META, "tensorrt": "8.5.2"}, "built by TensorRT 8.5.2, this is TensorRT 10.3.0"),
    ({**META, "compute_capability": "7.2", "gpu": "Xavier"}, "built for Xavier .compute capability 7.2.,"),
])
def test_an_engine_from_another_tensorrt_or_gpu_is_refused_in_one_line(monkeypatch, engine_file, meta, message):
    install(monkeypatch, SHAPE)
    with pytest.raises(EdgeError, match=message) as e:
        TensorRTBackend(engine_file, meta, "int8")
    assert "\n" not in str(e.value) and "rebuild it here with `edge build`" in str(e.value)


def test_check_engine_matches_accepts_the_same_build():
    check_engine_matches(META, "10.3.0", "8.7", Path("model.int8.engine"))  # no exception


def test_a_corrupt_engine_is_a_clear_error(monkeypatch, tmp_path):
    install(monkeypatch, SHAPE)
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"garbage")
    with pytest.raises(EdgeError, match="could not deserialize"):
        TensorRTBackend(bad, META, "int8")


def test_open_backend_uses_the_engine_edge_build_recorded(monkeypatch, color_bundle, engine_file):
    install(monkeypatch, SHAPE)
    bundle = color_bundle
    with pytest.raises(EdgeError, match="no TensorRT int8 engine; build one with `edge build"):
        open_backend(bundle, "trt", "int8")
    target = bundle.root / "model.int8.engine"
    target.write_bytes(engine_file.read_bytes())
    bundle.add_file("engine-int8", target.name)
    bundle.extra["engines"] = {"int8": META}
    backend = open_backend(bundle, "trt", "int8")
    assert backend.name == "tensorrt" and backend.precision == "int8"


def test_without_tensorrt_the_backend_is_one_line(engine_file):
    with pytest.raises(EdgeError, match="backend tensorrt: TensorRT is not installed"):
        TensorRTBackend(engine_file, META, "int8")


def test_in_fixed_batches_splits_and_pads_to_the_engines_batch():
    calls = []

    def run(feed):
        calls.append(len(feed["x"]))
        return {"y": feed["x"] * 2, "z": feed["x"][:, :1]}

    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    out = in_fixed_batches(run, {"x": x}, 2)
    assert calls == [2, 2, 2]  # the last chunk padded from 1 row to 2
    np.testing.assert_array_equal(out["y"], x * 2)
    np.testing.assert_array_equal(out["z"], x[:, :1])


def test_more_streams_than_the_engines_batch_each_get_their_own_logits(monkeypatch, engine_file):
    """The pipeline batches up to --max-batch requests; an engine built for batch 2 takes them two by two."""
    install(monkeypatch, SHAPE, max_batch=2)
    backend = TensorRTBackend(engine_file, META, "int8", batch=2)
    clips = [np.random.default_rng(i).standard_normal((1, *SHAPE), dtype=np.float32) for i in range(3)]
    got = _run_batch(backend)([SimpleNamespace(x=c) for c in clips])
    assert len(got) == 3
    for g, c in zip(got, clips):
        np.testing.assert_allclose(g, expected(c)[0], rtol=1e-6)


FRAME, BUFFER = (3, 4, 4), (1, 4, 4)
ONLINE_IO = {"frame": ("INPUT", FRAME), "shift_buffer_0": ("INPUT", BUFFER),
             "logits": ("OUTPUT", (CLASSES,)), "shift_buffer_0_next": ("OUTPUT", BUFFER)}


def online_step(inputs):
    """A stand-in per-frame model: logits from the frame and the buffer; the next buffer accumulates frames."""
    f, b = inputs["frame"], inputs["shift_buffer_0"]
    m = f.reshape(len(f), -1).mean(1)
    return {"logits": (m + b.reshape(len(b), -1).mean(1))[:, None] * WEIGHTS,
            "shift_buffer_0_next": b + m[:, None, None, None]}


def test_the_online_model_runs_on_the_online_engine_with_each_streams_buffers(monkeypatch, tmp_path):
    install(monkeypatch, SHAPE, io=ONLINE_IO, compute=online_step)
    (tmp_path / "model.online.int8.engine").write_bytes(b"fake engine")
    (tmp_path / "model.online.onnx").write_bytes(b"unused here")
    bundle = Bundle(root=tmp_path, name="tsm_online", labels=["a", "b", "c"], preprocess=Preprocess(4, 4),
                    clip=ClipSpec(2, 2, 1), files={}, extra={
                        "online": {"input": "frame", "output": "logits", "frame_step": 1,
                                   "buffers": [{"name": "shift_buffer_0", "output": "shift_buffer_0_next",
                                                "shape": list(BUFFER)}]},
                        "engines": {"int8": {**META, "online": {"file": "model.online.int8.engine"}}}})
    bundle.add_file("online", "model.online.onnx")
    bundle.add_file("engine-online-int8", "model.online.int8.engine")
    model = OnlineModel(bundle, "int8", backend="tensorrt")
    assert model.name == "tensorrt online"
    for s in (0, 1, 2):
        model.reset(s)
    rng = np.random.default_rng(0)
    frames = {s: [rng.standard_normal(FRAME, dtype=np.float32) for _ in range(3)] for s in (0, 1, 2)}
    buffers = {s: 0.0 for s in (0, 1, 2)}
    for t in range(3):  # three streams a step through an engine of batch 1: split, each its own buffers
        got = model.step_batch([(s, frames[s][t]) for s in (0, 1, 2)])
        for s in (0, 1, 2):
            m = float(frames[s][t].mean())
            np.testing.assert_allclose(got[s], (m + buffers[s]) * WEIGHTS, rtol=1e-5)
            buffers[s] += m


def test_an_online_run_on_tensorrt_needs_the_online_engine(color_bundle):
    color_bundle.extra["online"] = {"input": "frame", "output": "logits", "buffers": []}
    color_bundle.files["online"] = color_bundle.files["fp32"]
    with pytest.raises(EdgeError, match="no TensorRT int8 online engine; build one with `edge build"):
        OnlineModel(color_bundle, "int8", backend="tensorrt")
    with pytest.raises(EdgeError, match="runs on the ort or tensorrt backend, not 'torch'"):
        OnlineModel(color_bundle, "fp32", backend="torch")
