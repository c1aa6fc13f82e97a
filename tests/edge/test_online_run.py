"""`edge run --mode online` with real GStreamer and ONNX Runtime: a hand-made per-frame model whose scores
are the *previous* taken frame's mean colour (carried in its shift buffer), so the events show that the
buffer goes from frame to frame, which frames are taken (``frame_step``), the default smoothing over the
clip's segment count, and that a bundle without an online model is refused."""

import json

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.bundle import Bundle, ClipSpec
from edge.errors import EdgeError
from edge.online import OnlineModel
from edge.preprocess import Preprocess

pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
from edge.pipeline import run  # noqa: E402

LABELS = ["red", "green", "blue"]


def write_online_model(path, s=16):
    """logits = 4 x the buffer (the last taken frame's mean RGB); the next buffer = this frame's mean RGB."""
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    flat = helper.make_tensor("flat", TensorProto.INT64, [2], [-1, 3])
    four = helper.make_tensor("four", TensorProto.FLOAT, [], [4.0])
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["frame", "axes"], ["shift_buffer_0_next"], keepdims=1),
         helper.make_node("Reshape", ["shift_buffer_0", "flat"], ["prev"]),
         helper.make_node("Mul", ["prev", "four"], ["logits"])],
        "online", [helper.make_tensor_value_info("frame", TensorProto.FLOAT, ["batch", 3, s, s]),
                   helper.make_tensor_value_info("shift_buffer_0", TensorProto.FLOAT, ["batch", 3, 1, 1])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("shift_buffer_0_next", TensorProto.FLOAT, ["batch", 3, 1, 1])],
        [axes, flat, four])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


@pytest.fixture
def online_bundle(tmp_path):
    root = tmp_path / "bundle"
    root.mkdir()
    write_online_model(root / "model.online.onnx")
    b = Bundle(root=root, name="online", labels=LABELS,
               preprocess=Preprocess(16, 16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
               clip=ClipSpec(num_segments=4, window_frames=8, stride_frames=4), files={})
    b.add_file("online", "model.online.onnx")
    b.extra["online"] = {"input": "frame", "output": "logits", "frame_step": 2,
                         "buffers": [{"name": "shift_buffer_0", "output": "shift_buffer_0_next", "shape": [3, 1, 1]}]}
    b.save()
    return Bundle.load(root)


def red_then_blue(path, red=9, blue=9):
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (32, 32))
    for i in range(red + blue):
        vw.write(np.full((32, 32, 3), (20, 20, 230) if i < red else (230, 20, 20), np.uint8))  # BGR
    vw.release()


def events(bundle, video, tmp_path, smoothing=1):
    out = tmp_path / f"ev{smoothing}.jsonl"
    summary = run(bundle, OnlineModel(bundle), f"file://{video}", [f"json://{out}"], smoothing=smoothing)
    return summary, [json.loads(line) for line in out.read_text().splitlines()]


def test_one_decision_per_taken_frame_from_the_carried_buffer(online_bundle, tmp_path):
    video = tmp_path / "v.mp4"
    red_then_blue(video)
    summary, ev = events(online_bundle, video, tmp_path)
    assert summary.frames == 18 and [e["frame"] for e in ev] == list(range(0, 18, 2))
    # frame 0 sees the zero buffer (all classes equal); frame 10 is the first blue frame taken, but its
    # scores come from frame 8 (red): blue wins from frame 12, one taken frame later
    assert [e["label"] for e in ev[1:]] == ["red"] * 5 + ["blue"] * 3
    assert dict(ev[0]["top5"])["red"] == pytest.approx(1 / 3, abs=1e-5)  # events round to 5 places


def test_smoothing_averages_the_last_decisions(online_bundle, tmp_path):
    video = tmp_path / "v.mp4"
    red_then_blue(video)
    _, plain = events(online_bundle, video, tmp_path)
    _, smooth = events(online_bundle, video, tmp_path, smoothing=4)
    blue = [dict(e["top5"])["blue"] for e in plain]
    for i, e in enumerate(smooth):
        assert dict(e["top5"])["blue"] == pytest.approx(np.mean(blue[max(0, i - 3) : i + 1]), abs=2e-5)


def test_a_bundle_without_an_online_model_is_refused(online_bundle, tmp_path):
    manifest = json.loads((online_bundle.root / "manifest.json").read_text())
    del manifest["online"]
    (online_bundle.root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgeError, match="--mode online: bundle .* has no online model"):
        OnlineModel(Bundle.load(online_bundle.root))
    with pytest.raises(EdgeError, match="has no int8 online model"):
        OnlineModel(online_bundle, "int8")


def test_buffers_carry_across_bound_single_stream_calls_batches_and_resets(online_bundle):
    # a lone stream runs through IOBinding (two bound buffer sets, swapped each call), a batch of streams
    # through stacked arrays: the buffer must follow a stream from one path to the other and back
    model = OnlineModel(online_bundle)
    frames = [np.full((3, 16, 16), v, np.float32) * np.array([1, 2, 3], np.float32)[:, None, None]
              for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    means = [f.mean(axis=(1, 2)) for f in frames]
    model.reset(0)
    model.reset(1)
    np.testing.assert_array_equal(model.step(frames[0], 0), 0)  # the zero buffer
    np.testing.assert_allclose(model.step(frames[1], 0), 4 * means[0], rtol=1e-6)
    np.testing.assert_allclose(model.step(frames[2], 0), 4 * means[1], rtol=1e-6)
    both = model.step_batch([(0, frames[3]), (1, frames[5])])  # stacked: stream 0's bound buffer goes in
    np.testing.assert_allclose(both[0], 4 * means[2], rtol=1e-6)
    np.testing.assert_array_equal(both[1], 0)
    np.testing.assert_allclose(model.step(frames[4], 0), 4 * means[3], rtol=1e-6)  # back to bound, from stacked
    np.testing.assert_allclose(model.step(frames[0], 1), 4 * means[5], rtol=1e-6)  # stream 1: its own buffer
    first = model.step(frames[5], 0)
    np.testing.assert_allclose(first, 4 * means[4], rtol=1e-6)
    assert not np.shares_memory(first, model.step(frames[1], 0))  # logits are the caller's, not a bound array
    model.reset(0)
    np.testing.assert_array_equal(model.step(frames[2], 0), 0)  # a reset zeroes the bound path's buffer too
