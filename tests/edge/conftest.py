"""A real (tiny) ONNX bundle for runtime tests: mean colour of the clip -> 3 logits, built with onnx.helper."""

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.bundle import Bundle, ClipSpec
from edge.preprocess import Preprocess

LABELS = ["red", "green", "blue"]


def write_color_model(path, t=4, s=16, classes=3):
    """Logits = 4 x the clip's mean (R, G, B) for the first three classes; further classes get fixed,
    distinct mixes of the three, so a top-5 over many classes has a definite order."""
    extra = [[1.0 - 0.1 * k, 0.2 * k - 1.0, 0.3] for k in range(classes - 3)]
    w = np.concatenate([np.eye(3, dtype=np.float32) * 4, np.asarray(extra, np.float32).reshape(-1, 3).T], 1)
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, classes], w.ravel().tolist())
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 3, 4])
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["clip", "axes"], ["m"], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["logits"])],
        "color", [helper.make_tensor_value_info("clip", TensorProto.FLOAT, ["batch", t, 3, s, s])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])], [w, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


def make_bundle(root, labels):
    root.mkdir()
    write_color_model(root / "model.onnx", classes=len(labels))
    b = Bundle(root=root, name="color", labels=labels,
               preprocess=Preprocess(16, 16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
               clip=ClipSpec(num_segments=4, window_frames=8, stride_frames=4), files={})
    b.add_file("fp32", "model.onnx")
    b.save()
    return Bundle.load(root)


@pytest.fixture
def color_bundle(tmp_path):
    return make_bundle(tmp_path / "bundle", LABELS)


@pytest.fixture
def seven_class_bundle(tmp_path):
    return make_bundle(tmp_path / "bundle7", LABELS + ["c3", "c4", "c5", "c6"])


def _media_info(path):
    """(duration s, frame rate, frame count) of a video file, read with GStreamer's discoverer and OpenCV."""
    import gi

    from edge.gst import gst

    Gst, _ = gst()
    gi.require_version("GstPbutils", "1.0")
    from gi.repository import GstPbutils

    info = GstPbutils.Discoverer.new(10 * Gst.SECOND).discover_uri(path.as_uri())
    (video,) = info.get_video_streams()
    rate = video.get_framerate_num() / video.get_framerate_denom()
    frames = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))
    return info.get_duration() / Gst.SECOND, rate, frames


@pytest.fixture
def media_info():
    """(duration s, frame rate, frame count) of a video file: GstDiscoverer and OpenCV read it."""
    pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
    return _media_info
