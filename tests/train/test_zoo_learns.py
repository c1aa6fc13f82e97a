"""Each model family of the zoo trains through `edge train`'s loop on a tiny synthetic task and ends above
chance on held-out videos: the 3D CNNs, the MicroNets, T-C3D's backbone and its multi-clip model, MSTSM +
TFDEM. Not `momp_caffenet`: its MOMP images are the same for a video and its time reverse (order-blind by
construction), and from scratch on 36 videos in 12 epochs it stayed at 0.25 (LRN) / 0.33 (BatchNorm) of 12
clips here, where chance is 0.25 and its ceiling 0.5; tests/test_motion_end_to_end.py covers its plumbing."""

from __future__ import annotations

import pytest

from train.data.synth import generate
from train.run import train_run

pytestmark = pytest.mark.slow  # trains five small models

# model -> (train_run options, the accuracy it must reach on 12 test clips of 4 classes; chance is 0.25 and
# an order-blind model's ceiling 0.5, the classes being two time-reversal pairs)
# The C3D family's paper step (consecutive frames) is for 25 fps video, where 8 frames are a third of a second;
# a synthetic action lasts the whole 24-frame video, so its clips take every second frame (as res3d18's o = 2)
FAMILIES = {
    "c3d_b5": ({"segments": 8, "size": 32, "clip_step": 2}, 0.6),
    "b5_m2": ({"segments": 8, "size": 32, "clip_step": 2}, 0.6),
    "res3d18": ({"segments": 8, "size": 32}, 0.6),
    "tc3d_res3d18": ({"segments": 24, "size": 32}, 0.6),  # 3 clips of 8, the paper's defaults
    "mstsm_tfdem_resnet18": ({"segments": 8, "size": 32}, 0.6),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "data", classes=4, videos_per_class=12, frames=24, size=48,
                    progress=False).out


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_learns_the_tiny_task_above_chance(name, data, tmp_path):
    options, floor = FAMILIES[name]
    best = train_run(name, data, tmp_path / name, epochs=12, width=16, progress=False, **options)
    assert best.train_state["best"] >= floor
