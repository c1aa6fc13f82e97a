"""A real (tiny) ONNX bundle for runtime tests: mean colour of the clip -> 3 logits, built with onnx.helper."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.bundle import Bundle, ClipSpec
from edge.preprocess import Preprocess

LABELS = ["red", "green", "blue"]


def write_color_model(path, t=4, s=16):
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3], (np.eye(3, dtype=np.float32) * 4).ravel().tolist())
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 3, 4])
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["clip", "axes"], ["m"], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["logits"])],
        "color", [helper.make_tensor_value_info("clip", TensorProto.FLOAT, ["batch", t, 3, s, s])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])], [w, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


@pytest.fixture
def color_bundle(tmp_path):
    root = tmp_path / "bundle"
    root.mkdir()
    write_color_model(root / "model.onnx")
    b = Bundle(root=root, name="color", labels=LABELS,
               preprocess=Preprocess(16, 16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
               clip=ClipSpec(num_segments=4, window_frames=8, stride_frames=4), files={})
    b.add_file("fp32", "model.onnx")
    b.save()
    return Bundle.load(root)
