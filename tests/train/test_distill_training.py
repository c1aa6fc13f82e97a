"""`edge train --input flow` (a flow stream, the teacher) and `edge train --distill --teacher` (the Dual-action
Stream student) on real synthetic videos: the student's batches pair each RGB clip with the teacher's flow
fields at the same frames, its loss is Eq. 4, the teacher stays frozen through training, and the student is an
ordinary RGB checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edge.cli import main
from edge.errors import EdgeError
from edge.preprocess import Preprocess
from train.data import ClipDataset, dataset_from_dir, frame_indices
from train.data.synth import generate
from train.distill import distill_loss
from train.distill.fusion import fusion_run
from train.distill.student import DistillConfig, Distiller, default_levels, distillation
from train.engine import Checkpoint, FitConfig, fit
from train.models import build_model
from train.models.two_stream import TwoStream
from train.run import train_run

SMALL = {"segments": 4, "width": 4, "size": 24, "batch_size": 4, "progress": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill") / "synth"
    generate(root, classes=2, videos_per_class=4, seed=3, frames=12, size=32, progress=False)
    return root


@pytest.fixture(scope="module")
def teacher(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train_run("res3d18", data, out, epochs=1, motion="flow", flow_method="farneback", **SMALL)
    return out / "best.pt"


def test_a_flow_stream_takes_two_channel_flow_fields(teacher):
    ckpt = Checkpoint.load(teacher)
    assert ckpt.config["in_channels"] == 2
    assert ckpt.input["shape"] == [4, 2, 24, 24]
    assert ckpt.motion.kind == "stacked_flow" and ckpt.motion.flow.method == "farneback"
    assert ckpt.preprocess.mean == (0.5, 0.5) and ckpt.input["preprocess"]["color"] == "flow-xy"
    assert ckpt.build()(torch.zeros(1, 4, 2, 24, 24)).shape == (1, 2)


def test_only_models_with_a_flow_stem_take_flow(data, tmp_path):
    with pytest.raises(EdgeError, match="--input flow: momp_caffenet takes 3-channel images only; models with a "
                                        "flow input: .*res3d18"):
        train_run("momp_caffenet", data, tmp_path, epochs=1, motion="flow", **SMALL)


def test_the_default_levels_are_the_stages_and_the_pooled_features():
    assert default_levels(build_model("res3d18", num_classes=2, width=4)) == [
        "stages.0", "stages.1", "stages.2", "stages.3", "pool"]
    assert default_levels(build_model("tsm_resnet18", num_classes=2, width=4))[::4] == ["backbone.stages.0", "backbone.pool"]
    with pytest.raises(EdgeError, match="--distill-levels: Clip3DNet has no residual stages"):
        default_levels(build_model("c3d_b5", num_classes=2, width=4, size=24, num_segments=4))


def _paired(data, teacher):
    items, labels = dataset_from_dir(data, "train")
    t = Checkpoint.load(teacher)
    student = build_model("res3d18", num_classes=2, num_segments=4, width=4)
    rgb = ClipDataset(items, t.clip, Preprocess(24, 27), train=True)
    return distillation(teacher, DistillConfig(), student, rgb, labels, data, progress=False), student, rgb


def test_each_rgb_clip_is_paired_with_the_teachers_flow_at_the_same_frames(data, teacher):
    (pairs, _, record), _, rgb = _paired(data, teacher)
    assert len(pairs) == len(rgb) == 6
    torch.manual_seed(0)
    (x, f), y = pairs[1]
    k, m = pairs.pairs[1]
    idx = frame_indices(rgb.clip, len(rgb.frames[k]), True, np.random.default_rng([torch.initial_seed(), 1]))
    flows = pairs.flow.frames[m]
    assert len(flows) == len(rgb.frames[k]) - 1  # field t: frame t -> t+1
    expected = pairs.flow.preprocess.clip([flows[min(j, len(flows) - 1)] for j in idx])
    assert x.shape == (4, 3, 24, 24) and f.shape == (4, 2, 24, 24)
    assert torch.equal(f, torch.from_numpy(expected))  # no jitter on the teacher's view
    assert y == rgb.items[k].label
    assert record["levels"] == ["stages.0", "stages.1", "stages.2", "stages.3", "pool"]
    assert record["loss"] == "mae+gram" and record["alpha"] == 5.0 and len(record["teacher_sha256"]) == 64


def test_the_loss_is_cross_entropy_plus_alpha_times_the_distillation_term(data, teacher):
    (pairs, distiller, _), student, _ = _paired(data, teacher)
    (x, f), y = pairs[0]
    x, f, y = x[None], f[None], torch.tensor([y])
    student.eval()
    loss = distiller(student, (x, f), y)
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(student(x), y)
        term = distill_loss("mae+gram", distiller._tap(student).get(), [*distiller.teacher_tap.get()])
    assert term.item() > 0
    assert loss.item() == pytest.approx(ce.item() + 5.0 * term.item(), rel=1e-5)


def test_training_the_student_leaves_the_teacher_frozen(data, teacher, tmp_path):
    (pairs, distiller, record), _, rgb = _paired(data, teacher)
    before = {k: v.clone() for k, v in distiller.teacher.state_dict().items()}
    start = Checkpoint("res3d18", {"num_classes": 2, "num_segments": 4, "width": 4}, {}, ["a", "b"],
                       {"preprocess": rgb.preprocess.to_dict(), "clip": rgb.clip.to_dict()}, {"distill": record})
    fit(start, pairs, rgb, tmp_path, FitConfig(epochs=2, batch_size=3), progress=False, objective=distiller)
    after = distiller.teacher.state_dict()
    assert any("running_mean" in k for k in after)
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BatchNorm statistics alike
    assert not distiller.teacher.training and not any(p.requires_grad for p in distiller.teacher.parameters())
    assert Checkpoint.load(tmp_path / "last.pt").train_state["distill"] == record


def test_a_teacher_must_be_a_flow_stream_of_the_same_clip_length(data, teacher, tmp_path):
    train_run("res3d18", data, tmp_path / "rgb", epochs=1, **SMALL)
    with pytest.raises(EdgeError, match="a flow stream is expected .*it takes RGB input"):
        train_run("res3d18", data, tmp_path / "s", epochs=1, teacher=tmp_path / "rgb" / "best.pt", **SMALL)
    with pytest.raises(EdgeError, match="it takes 4-frame clips, the student 8"):
        train_run("res3d18", data, tmp_path / "s", epochs=1, teacher=teacher, **{**SMALL, "segments": 8})
    with pytest.raises(EdgeError, match="--distill-levels: no module named 'nope' in Res3D"):
        train_run("res3d18", data, tmp_path / "s", epochs=1, teacher=teacher,
                  distill=DistillConfig(levels=("stages.0", "nope")), **SMALL)
    with pytest.raises(EdgeError, match="level 'stages.0' gives the student .* features and the teacher"):
        train_run("res3d18", data, tmp_path / "s", epochs=1, teacher=teacher, **{**SMALL, "width": 8})


def test_the_student_is_an_ordinary_rgb_checkpoint(data, teacher, tmp_path):
    best = train_run("res3d18", data, tmp_path, epochs=1, teacher=teacher,
                     distill=DistillConfig("mars", alpha=10.0), **SMALL)
    assert best.input["shape"] == [4, 3, 24, 24] and best.motion is None and "in_channels" not in best.config
    assert best.train_state["distill"]["loss"] == "mars" and best.train_state["distill"]["alpha"] == 10.0


def test_the_distill_and_fusion_options_are_checked():
    runner = CliRunner()
    r = runner.invoke(main, ["train", "--model", "res3d18", "--data", "x", "--out", "y", "--distill"])
    assert r.exit_code == 2 and "--distill and --teacher go together" in r.output
    r = runner.invoke(main, ["train", "--data", "x", "--out", "y", "--fusion"])
    assert r.exit_code == 2 and "--fusion and --streams go together" in r.output
    r = runner.invoke(main, ["train", "--model", "res3d18", "--data", "x", "--out", "y", "--fusion", "--streams", "a", "b"])
    assert r.exit_code == 2 and "--model: a fusion's model is its two --streams" in r.output
    r = runner.invoke(main, ["train", "--data", "x", "--out", "y"])
    assert r.exit_code == 2 and "--model: required" in r.output
    with pytest.raises(EdgeError, match="--alpha -1.0: expected a weight >= 0"):
        DistillConfig(alpha=-1.0)
    with pytest.raises(EdgeError, match="--distill-loss 'l2'"):
        DistillConfig("l2")


def test_fusion_weights_sum_to_one_and_the_fused_score_is_their_weighted_sum():
    rgb = build_model("res3d18", num_classes=3, num_segments=4, width=4)
    flow = build_model("res3d18", num_classes=3, num_segments=4, width=4, in_channels=2)
    torch.manual_seed(0)
    x, f = torch.randn(5, 4, 3, 16, 16), torch.randn(5, 4, 2, 16, 16)
    for mode, weights in (("attention", (1.0, 1.5)), ("average", (1.0, 1.5)), ("average", (1.0, 1.0))):
        model = TwoStream(rgb, flow, 3, mode, weights).eval()
        w, _ = model.stream_weights(x, f)
        assert torch.allclose(w.sum(1), torch.ones(5))
        if mode == "average":
            assert torch.allclose(w, torch.tensor([weights[0], weights[1]]) / sum(weights))
        with torch.no_grad():
            p = w[:, :1] * torch.softmax(rgb(x), 1) + w[:, 1:] * torch.softmax(flow(f), 1)
            assert torch.allclose(torch.softmax(model(x, f), 1), p, atol=1e-6)  # log-scores: softmax gives p
    with pytest.raises(ValueError, match="fusion: expected one of attention, average"):
        TwoStream(rgb, flow, 3, "max")


def test_fusion_trains_only_its_module_and_keeps_the_streams_frozen(data, teacher, tmp_path):
    train_run("res3d18", data, tmp_path / "rgb", epochs=1, **SMALL)
    best = fusion_run(tmp_path / "rgb" / "best.pt", teacher, data, tmp_path / "fused", epochs=2, batch_size=4,
                      progress=False)
    rgb, flow = Checkpoint.load(tmp_path / "rgb" / "best.pt"), Checkpoint.load(teacher)
    assert best.model == "two_stream" and best.input["flow"]["motion"]["kind"] == "stacked_flow"
    for k, v in rgb.state_dict.items():
        assert torch.equal(best.state_dict[f"streams.0.{k}"], v)
    for k, v in flow.state_dict.items():
        assert torch.equal(best.state_dict[f"streams.1.{k}"], v)
    assert any(k.startswith("attention.") for k in best.state_dict)
    fused = best.build()
    assert fused(torch.zeros(2, 4, 3, 24, 24), torch.zeros(2, 4, 2, 24, 24)).shape == (2, 2)
    with pytest.raises(EdgeError, match="the second stream must be a flow stream"):
        fusion_run(tmp_path / "rgb" / "best.pt", tmp_path / "rgb" / "best.pt", data, tmp_path / "x")
    with pytest.raises(EdgeError, match="the first stream must take RGB frames; it takes stacked_flow"):
        fusion_run(teacher, teacher, data, tmp_path / "x")
    avg = fusion_run(tmp_path / "rgb" / "best.pt", teacher, data, tmp_path / "avg", fusion="average", progress=False)
    assert 0 <= avg.train_state["best"] <= 1 and (tmp_path / "avg" / "best.pt").is_file()


def test_init_starts_from_a_checkpoints_weights_of_the_same_model(data, teacher, tmp_path):
    first = train_run("res3d18", data, tmp_path / "a", epochs=1, **SMALL)
    again = train_run("res3d18", data, tmp_path / "b", epochs=1, lr=0.0, init=tmp_path / "a" / "best.pt", **SMALL)
    conv = "stages.0.0.conv1.0.weight"
    assert torch.equal(again.state_dict[conv], first.state_dict[conv])  # lr 0: the weights it started from
    with pytest.raises(EdgeError, match="--init .*: a res3d18 .*in_channels.*, not the res3d18"):
        train_run("res3d18", data, tmp_path / "c", epochs=1, init=teacher, **SMALL)


def test_a_2d_tsm_student_distills_from_a_tsm_flow_stream():
    """The paper's 3D backbone is not required: TSM's per-frame features are regrouped per clip at each level."""
    student = build_model("tsm_resnet18", num_classes=3, num_segments=4, width=4)
    teacher = build_model("tsm_resnet18", num_classes=3, num_segments=4, width=4, in_channels=2)
    distiller = Distiller(teacher, DistillConfig(), default_levels(student))
    torch.manual_seed(0)
    x, f, y = torch.randn(2, 4, 3, 32, 32), torch.randn(2, 4, 2, 32, 32), torch.tensor([0, 2])
    distiller.check(student, x, f)
    _, students, teachers = distiller.features(student, x, f)
    assert [s.shape[:3] for s in students] == [(2, 4, 4), (2, 8, 4), (2, 16, 4), (2, 32, 4), (2, 32, 4)]
    loss = distiller(student.train(), (x, f), y)
    loss.backward()
    assert torch.isfinite(loss) and student.backbone.stem[0][0].weight.grad.abs().sum() > 0
