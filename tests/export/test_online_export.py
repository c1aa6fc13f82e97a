"""`edge export --online`: the per-frame ONNX model of a causal TSM, its explicit shift buffers in the
manifest, parity with the clip model frame by frame in ONNX Runtime (fp32), its INT8 forms, and the
refusal for a model without a per-frame form."""

import json

import numpy as np
import onnx
import pytest
import torch

from edge.backends.ort import OrtBackend
from edge.bundle import Bundle
from edge.errors import EdgeError
from edge.preprocess import Preprocess
from export.bundle import export_bundle
from export.online import run_frames
from export.trt_qdq import tensorrt_qdq_problems
from train.data import dataset_from_dir
from train.data.synth import generate
from train.engine import Checkpoint
from train.models import build_model
from train.run import eval_clips


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("online")
    return generate(root / "data", classes=2, videos_per_class=4, seed=1, frames=8, size=32, progress=False).out


def checkpoint(name, data, path):
    torch.manual_seed(0)
    config = {"num_classes": 2, "num_segments": 4, "width": 16}
    Checkpoint(name, config, build_model(name, **config).state_dict(), dataset_from_dir(data, "train")[1],
               {"preprocess": Preprocess(32, 36).to_dict(),
                "clip": {"num_segments": 4, "window_frames": 8, "stride_frames": 2}}).save(path)
    return path


@pytest.mark.parametrize("name", ["tsm_online_resnet18", "mstsm_online_resnet18"])
def test_online_bundle_runs_frame_by_frame_like_the_clip_model(name, data, tmp_path):
    ckpt = checkpoint(name, data, tmp_path / "in.pt")
    export_bundle(ckpt, tmp_path / "b", data=data, int8=True, online=True)
    bundle = Bundle.load(tmp_path / "b")
    entry = bundle.extra["online"]
    assert entry["input"] == "frame" and entry["frame_step"] == 2 and entry["parity"]["max_abs_diff"] <= 1e-4
    graph = onnx.load(str(bundle.path("online"))).graph
    names = [b["name"] for b in entry["buffers"]]
    assert [i.name for i in graph.input] == ["frame", *names] and len(names) == 8
    assert [o.name for o in graph.output] == ["logits", *(b["output"] for b in entry["buffers"])]
    shapes = [[d.dim_value for d in i.type.tensor_type.shape.dim[1:]] for i in graph.input[1:]]
    assert shapes == [b["shape"] for b in entry["buffers"]]
    # the shift's per-frame cost is ops, not FLOPs: TSM needs 2 slices + 1 concat a shift point (no empty
    # or whole-buffer slices); MSTSM's two-unit channels add a slice of each buffer part and a concat
    ops = [n.op_type for n in graph.node]
    assert (ops.count("Slice"), ops.count("Concat")) == ((16, 8) if name.startswith("tsm") else (40, 16))
    # every test clip, frame by frame in ONNX Runtime, against the torch clip model's per-frame scores
    model = Checkpoint.load(ckpt).build().eval()
    clips = np.stack([c for c, _ in eval_clips(data, bundle.preprocess, bundle.clip, bundle.labels)])
    got = run_frames(OrtBackend(bundle.path("online")).session, entry["buffers"], clips)
    with torch.no_grad():
        want = model.frame_logits(torch.from_numpy(clips)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    for role in ("online-int8", "online-int8-trt"):  # quantized: close, not equal
        q = run_frames(OrtBackend(bundle.path(role)).session, entry["buffers"], clips)
        assert not np.array_equal(q, got) and np.abs(q - got).max() < 0.25 * np.abs(got).max()  # untrained: small logits
    assert tensorrt_qdq_problems(onnx.load(str(bundle.path("online-int8-trt")))) == []
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["online"]["buffers"][0]["name"] == "shift_buffer_0"


def test_a_model_without_a_per_frame_form_is_refused_before_writing(data, tmp_path):
    ckpt = checkpoint("tsm_resnet18", data, tmp_path / "in.pt")
    with pytest.raises(EdgeError, match="--online: tsm_resnet18 has no per-frame form .*tsm_online_resnet18"):
        export_bundle(ckpt, tmp_path / "b", data=data, online=True)
    assert not (tmp_path / "b").exists()


def test_edge_run_picks_the_online_model_and_takes_every_frame_step(data, tmp_path):
    """The command end to end on a synthetic video: auto mode runs the per-frame model on frames 0, 2, 4, 6
    (frame_step 2: 4 segments over an 8-frame window), smoothed over the 4 segments; --mode clip keeps
    the sliding window (one decision when the 8-frame window fills)."""
    import subprocess
    import sys

    export_bundle(checkpoint("tsm_online_resnet18", data, tmp_path / "in.pt"), tmp_path / "b", data=data,
                  online=True)
    video = sorted(data.rglob("*.mp4"))[0]
    frames = {}
    for mode in ("auto", "clip"):
        out = tmp_path / f"{mode}.jsonl"
        r = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--model", str(tmp_path / "b"), "--source",
                            f"file://{video}", "--output", f"json://{out}", "--mode", mode],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        frames[mode] = [json.loads(line)["frame"] for line in out.read_text().splitlines()]
    assert frames == {"auto": [0, 2, 4, 6], "clip": [7]}


@pytest.mark.parametrize("name", ["tsm_online_resnet18", "mstsm_online_resnet18"])
def test_bound_single_stream_steps_equal_plain_runs_on_a_real_per_frame_model(name, tmp_path):
    # edge run's lone-stream path (IOBinding, two buffer sets swapped) against plain session.run calls
    from edge.online import BoundStep
    from export.online import export_online, zero_feed

    torch.manual_seed(0)
    model = build_model(name, num_classes=3, num_segments=4, width=16).eval()
    for m in model.modules():  # the residual branches start at zero (zero-init last BN): open them, so the
        if isinstance(m, torch.nn.BatchNorm2d):  # shifted channels, and so the buffers, reach the logits
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    buffers = export_online(model, (3, 32, 32), tmp_path / "step.onnx")
    session = OrtBackend(tmp_path / "step.onnx").session
    clip = np.random.default_rng(0).standard_normal((1, 6, 3, 32, 32)).astype(np.float32)
    plain = run_frames(session, buffers, clip)[0]
    step, state = BoundStep(session, "frame", "logits", buffers), zero_feed(buffers)
    bound = []
    for t in range(clip.shape[1]):
        logits, state = step.step(clip[0, t], state)
        bound.append(logits)
    alone = run_frames(session, buffers, clip[:, 1:2])[0, 0]  # frame 1 from zero buffers
    assert np.abs(plain[1] - alone).max() > 1e-3  # the buffers matter: frame 1's logits see frame 0
    np.testing.assert_allclose(np.stack(bound), plain, rtol=0, atol=1e-6)
