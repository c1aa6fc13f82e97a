"""`edge train --model-opt KEY=VALUE`: a model's own options reach its checkpoint config, checked against the
model's factory before any training, so `build_model(name, **config)` rebuilds exactly what was trained."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.errors import EdgeError
from edge.motion import MotionSpec
from train.cli import parse_model_opts
from train.data.synth import generate
from train.engine import Checkpoint
from train.models import clip_sampling
from train.run import input_motion, model_config


def test_values_parse_as_json_when_they_can():
    assert parse_model_opts(("aggregation=attention", "num_clips=2", "dropout=0.5", "flag=true", "name=3x")) == {
        "aggregation": "attention", "num_clips": 2, "dropout": 0.5, "flag": True, "name": "3x"}
    with pytest.raises(EdgeError, match="--model-opt 'clips': expected KEY=VALUE"):
        parse_model_opts(("clips",))


def test_each_model_says_how_its_frames_are_sampled():
    assert clip_sampling("tsm_resnet18", {}) == {"sampling": "segments"}
    assert clip_sampling("c3d_b5", {}) == {"sampling": "clips", "num_clips": 1, "clip_step": 1}  # 16 consecutive
    assert clip_sampling("res3d18", {}) == {"sampling": "clips", "num_clips": 1, "clip_step": 2}  # o = 2
    assert clip_sampling("tc3d_res3d18", {}) == {"sampling": "clips", "num_clips": 3, "clip_step": 2}  # S = 3
    assert clip_sampling("tc3d_res3d18", {"num_clips": 5})["num_clips"] == 5
    assert clip_sampling("c3d_b5", {}, clip_step=3)["clip_step"] == 3  # edge train --clip-step
    with pytest.raises(EdgeError, match="--clip-step: tsm_resnet18 is fed TSN segments, not clips of frames"):
        clip_sampling("tsm_resnet18", {}, clip_step=2)


def test_the_motion_input_defaults_to_the_papers():
    assert input_motion("momp_caffenet", "auto") == MotionSpec("momp")
    assert input_motion("momp_caffenet", "none") is None
    assert input_motion("tsm_resnet18", "auto") is None
    assert input_motion("tsm_resnet18", "rgbf") == MotionSpec("rgbf")
    flow = input_motion("res3d18", "flow", "farneback")  # a flow stream: TSN-scaled fields, two channels
    assert flow.kind == "stacked_flow" and flow.flow.method == "farneback"
    assert input_motion("res3d18", "flow").flow.method == "tvl1"  # opencv-contrib is a dependency
    with pytest.raises(EdgeError, match="--input optical: expected one of auto, none, flow, rgbf, momp"):
        input_motion("tsm_resnet18", "optical")
    with pytest.raises(EdgeError, match="--flow-method tvl1: only a flow input"):
        input_motion("tsm_resnet18", "rgbf", "tvl1")


def test_options_are_checked_against_the_factory():
    config = model_config("tc3d_res3d18", 4, 8, 8, 32, {"aggregation": "max", "num_clips": 2, "clip_len": 4})
    assert config == {"num_classes": 4, "num_segments": 8, "width": 8, "aggregation": "max", "num_clips": 2,
                      "clip_len": 4}
    with pytest.raises(EdgeError, match=r"--model-opt fold: tsm_resnet18 takes no option 'fold' \(it takes: "
                                        r"dropout, fold_div, two_unit_div\)"):
        model_config("tsm_resnet18", 4, 8, 8, 32, {"fold": 4})
    with pytest.raises(EdgeError, match="--model-opt num_segments: set by --segments"):
        model_config("tsm_resnet18", 4, 8, 8, 32, {"num_segments": 4})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "data", classes=2, videos_per_class=4, frames=8, size=32,
                    progress=False).out


def test_edge_train_saves_the_options_and_refuses_a_bad_value_before_training(data, tmp_path):
    args = ["train", "--model", "tc3d_res3d18", "--data", str(data), "--epochs", "1", "--width", "4", "--size", "32",
            "--segments", "8", "--model-opt", "num_clips=2", "--model-opt", "clip_len=4"]
    ok = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "ok"), "--model-opt", "aggregation=weighted"])
    assert ok.exit_code == 0, ok.output
    ckpt = Checkpoint.load(tmp_path / "ok" / "best.pt")
    assert (ckpt.config["aggregation"], ckpt.config["num_clips"], ckpt.config["clip_len"]) == ("weighted", 2, 4)
    ckpt.build().load_state_dict(ckpt.state_dict)  # the saved config rebuilds the trained model
    # fed as T-C3D is (Sec. III-C): 2 clips of 4 frames, 2 apart where they fit (8-frame videos: 1 apart)
    assert (ckpt.clip.sampling, ckpt.clip.num_clips, ckpt.clip.clip_len, ckpt.clip.clip_step) == ("clips", 2, 4, 2)
    ev = CliRunner().invoke(main, ["eval", "--ckpt", str(tmp_path / "ok" / "best.pt"), "--data", str(data),
                                   "--json", str(tmp_path / "eval.json")])
    assert ev.exit_code == 0, ev.output
    result = json.loads((tmp_path / "eval.json").read_text())
    assert f"all clips per video {result['all_clips_accuracy']:.3f}" in ev.output
    assert 0.0 <= result["all_clips_accuracy"] <= 1.0 and result["clips"] == 2  # the 2 test videos
    bad = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "bad"), "--model-opt", "aggregation=median"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines()[-1].startswith(
        "error: --model tc3d_res3d18: aggregation: expected one of avg, max, weighted, attention, got 'median'")
    assert not (tmp_path / "bad").exists()
