"""Each model family of the zoo trains through `edge train`'s loop on a tiny synthetic task and ends above
chance on held-out videos: the 3D CNNs, the MicroNets, T-C3D's backbone and its multi-clip model, MSTSM +
TFDEM, and MOMP CaffeNet. A MOMP image is the same for a video and its time reverse (order-blind by
construction), so `momp_caffenet` gets a task of three classes from different time-reversal pairs whose MOMP
images differ (on the 12-class set it tells these pairs apart best: docs/models.md)."""

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


MOMP_LABELS = ("move_left", "rotate_cw", "appear")


def test_momp_caffenet_learns_an_order_free_task_above_chance(tmp_path):
    data = generate(tmp_path / "data", labels=MOMP_LABELS, videos_per_class=24, frames=24, size=48,
                    progress=False).out
    best = train_run("momp_caffenet", data, tmp_path / "run", epochs=30, width=16, size=64, segments=1,
                     progress=False)
    assert best.config["num_classes"] == 3
    assert best.train_state["best"] >= 0.6  # of 18 test clips; chance 1/3 (0.778 on a 2-core Intel Xeon)
