"""`edge.backends.tensorrt` against FAKES of TensorRT's runtime and pycuda (tests/edge/fake_trt_runtime.py:
neither can run here): named I/O tensors and buffers, two clips in flight on two buffer sets, the checks that
refuse an engine from another TensorRT or GPU, and `open_backend` picking the engine `edge build` recorded.
Without TensorRT (this machine) opening the backend is a one-line error."""

from pathlib import Path

import numpy as np
import pytest
from fake_trt_runtime import CLASSES, WEIGHTS, install

from edge.backends import open_backend
from edge.backends.tensorrt import TensorRTBackend, check_engine_matches
from edge.errors import EdgeError

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
