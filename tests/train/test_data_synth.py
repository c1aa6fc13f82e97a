"""The synthetic action set: real decodable files, split files, determinism, and time-reversal pairs."""

import shutil
import subprocess

import numpy as np
import pytest

from edge.errors import EdgeError
from train.data.decode import read_video
from train.data.synth import CLASSES, generate, partner, render_video


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("s") / "synth"
    return generate(out, classes=4, videos_per_class=4, seed=7, frames=16, size=48, progress=False)


def test_layout_and_ucf_style_splits(synth):
    root = synth.out
    assert (root / "splits" / "classInd.txt").read_text().splitlines() == [
        "1 move_left", "2 move_right", "3 move_up", "4 move_down"]
    train = (root / "splits" / "trainlist01.txt").read_text().split("\n")[0]
    test = (root / "splits" / "testlist01.txt").read_text().splitlines()
    assert train == "move_left/move_left_g01_c01.mp4 1"
    assert len(test) == 4 and all(len(line.split()) == 1 for line in test)
    assert synth.n_train == 12 and synth.n_test == 4
    assert len(list(root.glob("*/*.mp4"))) == 16 and not list(root.parent.glob(".*part*"))


def test_videos_decode_with_opencv_and_gstreamer(synth):
    path = next(synth.out.glob("move_up/*.mp4"))
    frames = read_video(path)
    assert frames.shape == (16, 48, 48, 3) and frames.dtype == np.uint8
    if shutil.which("gst-launch-1.0") is None:
        pytest.skip("gst-launch-1.0 not on PATH")
    r = subprocess.run(["gst-launch-1.0", "-q", "filesrc", f"location={path}", "!", "decodebin", "!",
                        "fakesink"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_same_seed_same_pixels_other_seed_other_pixels(tmp_path):
    a = generate(tmp_path / "a", 2, 2, seed=1, frames=8, size=32, progress=False)
    b = generate(tmp_path / "b", 2, 2, seed=1, frames=8, size=32, progress=False)
    c = generate(tmp_path / "c", 2, 2, seed=2, frames=8, size=32, progress=False)
    rel = "move_right/move_right_g01_c02.mp4"
    va, vb, vc = (read_video(s.out / rel) for s in (a, b, c))
    assert np.array_equal(va, vb) and not np.array_equal(va, vc)


def test_labels_pick_the_classes_by_name_with_the_same_videos(tmp_path):
    first = generate(tmp_path / "a", 2, 2, seed=1, frames=8, size=32, progress=False)
    named = generate(tmp_path / "b", videos_per_class=2, seed=1, frames=8, size=32, progress=False,
                     labels=("appear", "move_right"))
    assert named.classes == ["appear", "move_right"] and (named.n_train, named.n_test) == (2, 2)
    assert (named.out / "splits" / "classInd.txt").read_text() == "1 appear\n2 move_right\n"
    assert sorted(p.name for p in named.out.iterdir()) == ["appear", "move_right", "splits"]
    rel = "move_right/move_right_g01_c02.mp4"
    assert np.array_equal(read_video(first.out / rel), read_video(named.out / rel))


def test_classes_come_in_adjacent_reversal_pairs():
    assert len(CLASSES) >= 12 and len(CLASSES) % 2 == 0
    assert [partner(c) for c in CLASSES[:4]] == ["move_right", "move_left", "move_down", "move_up"]
    assert all(partner(partner(c)) == c for c in CLASSES)


def test_horizontal_motion_direction_is_visible():
    def centroid_x(frames):
        bright = frames.astype(float).sum(-1)
        mask = bright > np.percentile(bright, 97, axis=(1, 2), keepdims=True)
        return np.array([np.nonzero(m)[1].mean() for m in mask])
    for seed in range(3):  # the same draws, played forwards and backwards
        left = centroid_x(render_video("move_left", np.random.default_rng(seed), 16, 64))
        right = centroid_x(render_video("move_right", np.random.default_rng(seed), 16, 64))
        assert left[-1] - left[0] < -8 and right[-1] - right[0] > 8


@pytest.mark.parametrize("kw, message", [({"classes": 1}, "--classes"), ({"classes": 99}, "--classes"),
                                         ({"videos_per_class": 1}, "--videos-per-class"),
                                         ({"labels": ("move_left", "jump")}, "labels.*jump"),
                                         ({"labels": ("appear", "appear")}, "labels"),
                                         ({"labels": ("appear",)}, "--classes")])
def test_bad_arguments_are_refused(tmp_path, kw, message):
    with pytest.raises(EdgeError, match=message):
        generate(tmp_path / "x", progress=False, **kw)
    assert not (tmp_path / "x").exists()


def test_the_test_fraction_sets_the_split(tmp_path):
    s = generate(tmp_path / "d", 2, 8, seed=1, frames=8, size=32, progress=False, test_fraction=0.75)
    assert (s.n_train, s.n_test) == (4, 12)
    with pytest.raises(EdgeError, match="test_fraction 1.0 leaves no training video"):
        generate(tmp_path / "e", 2, 8, seed=1, frames=8, size=32, progress=False, test_fraction=1.0)
