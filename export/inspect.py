"""``edge info --ckpt``: a checkpoint as the runtime can inspect it, an ONNX file and a manifest.

The runtime (``edge info``) may not import ``train`` or ``export``, so it finds ``to_onnx`` through the
``edge.checkpoints`` entry point (pyproject.toml) and counts on the file this writes, exactly as it does on
a bundle's ``model.onnx``. No data is read: the example clip is zeros at the checkpoint's input shape.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edge.bundle import Bundle, sha256_file
from edge.errors import EdgeError
from export.onnx import INPUT_NAME, OPSET, export_onnx
from export.qdq import export_qdq
from train.compress.qat import deployed
from train.engine import Checkpoint


def to_onnx(ckpt_path: str | Path, out_dir: str | Path) -> Bundle:
    """Export ``ckpt_path`` (a ``.pt`` or ``.edgez``) into ``out_dir``: ``model.onnx`` (fp32, BatchNorm folded
    as in a bundle) and, for a checkpoint trained for INT8 (``edge compress``'s int8 stage), its Q/DQ
    ``model.int8.onnx``. Returns an unsaved Bundle over ``out_dir`` (labels, input spec, preprocessing, clip
    window, files), whose ``manifest()`` is the manifest ``edge export`` would start from."""
    ckpt_path, out = Path(ckpt_path), Path(out_dir)
    ckpt = Checkpoint.load(ckpt_path)  # EdgeError on a missing file or one that is not a checkpoint
    try:
        pre, clip = ckpt.preprocess, ckpt.clip
        model = ckpt.build()
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # an incomplete input spec, a config or
        first = str(e).strip().partition("\n")[0]  # state dict that does not fit the model: many lines
        raise EdgeError(f"checkpoint {ckpt_path}: cannot rebuild its model ({type(e).__name__}: {first})") from None
    bundle = Bundle(root=out, name=ckpt.model, labels=list(ckpt.labels), preprocess=pre, clip=clip, files={})
    shape = (1, *ckpt.input["shape"]) if "shape" in ckpt.input else bundle.input_shape()  # (T, C, H, W) recorded
    bundle.input = {"name": INPUT_NAME, "shape": [int(d) for d in shape], "dtype": "float32", "layout": "NTCHW"}
    example = torch.zeros(bundle.input["shape"])
    if "flow" in ckpt.input:  # a two-stream model: its flow clip too
        example = (example, torch.zeros((1, *ckpt.input["flow"]["shape"])))
    export_onnx(model, example, out / "model.onnx")
    bundle.add_file("fp32", "model.onnx")
    if "qat" in ckpt.train_state:
        export_qdq(deployed(ckpt), example, out / "model.int8.onnx")
        bundle.add_file("int8", "model.int8.onnx")
    bundle.extra = {"source_checkpoint": {"path": str(ckpt_path), "sha256": sha256_file(ckpt_path),
                                          "model": ckpt.model, "config": ckpt.config},
                    "opset": OPSET}
    return bundle


__all__ = ["to_onnx"]
