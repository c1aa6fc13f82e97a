"""Dataset index formats and the clip dataset, on real files."""

import logging
import shutil

import numpy as np
import pytest
import torch

from edge.bundle import ClipSpec
from edge.errors import EdgeError
from edge.preprocess import Preprocess
from train.data import (
    ClipDataset,
    dataset_from_dir,
    load_folder_per_class,
    load_hmdb_split,
    load_list_file,
    load_ucf_split,
    read_video,
)
from train.data.decode import VideoDecodeError
from train.data.synth import generate

FOUR = ClipSpec(num_segments=4, window_frames=4, stride_frames=1)  # 4 TSN segments


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("d") / "synth", classes=3, videos_per_class=3, seed=0, frames=12,
                    size=40, progress=False).out


def test_ucf_split_train_and_test(synth):
    train, labels = load_ucf_split(synth, synth / "splits", 1, "train")
    test, _ = load_ucf_split(synth, synth / "splits", 1, "test")
    assert labels == ["move_left", "move_right", "move_up"]
    assert len(train) == 6 and len(test) == 3
    assert sorted(it.label for it in test) == [0, 1, 2]
    assert not {it.path for it in train} & {it.path for it in test}
    assert dataset_from_dir(synth, "test") == (test, labels)


def test_hmdb_split_files(synth, tmp_path):
    splits = tmp_path / "hmdb_splits"
    splits.mkdir()
    for cls in ("move_left", "move_up"):
        names = sorted(p.name for p in (synth / cls).glob("*.mp4"))
        (splits / f"{cls}_test_split1.txt").write_text(f"{names[0]} 1 \n{names[1]} 2 \n{names[2]} 0 \n")
    train, labels = load_hmdb_split(synth, splits, 1, "train")
    test, _ = load_hmdb_split(synth, splits, 1, "test")
    assert labels == ["move_left", "move_up"]
    assert [(it.path.parent.name, it.label) for it in train] == [("move_left", 0), ("move_up", 1)]
    assert len(test) == 2 and all(it.path.is_file() for it in train + test)


def test_folder_per_class_and_list_file(synth, tmp_path):
    items, labels = load_folder_per_class(synth)
    assert labels == ["move_left", "move_right", "move_up"] and len(items) == 9  # "splits" has no videos
    lst = tmp_path / "list.txt"
    lst.write_text("move_up/move_up_g01_c01.mp4 move_up\nmove_left/move_left_g01_c01.mp4 move_left\n")
    items, labels = load_list_file(synth, lst)
    assert labels == ["move_left", "move_up"] and [it.label for it in items] == [1, 0]
    lst.write_text("move_up/move_up_g01_c01.mp4 2\n")
    items, labels = load_list_file(synth, lst)
    assert labels == ["0", "1", "2"] and items[0].label == 2


@pytest.mark.parametrize("call, needle", [
    (lambda root, tmp: load_ucf_split(tmp / "nope", root / "splits"), "nope"),
    (lambda root, tmp: load_ucf_split(root, tmp), "classInd.txt"),
    (lambda root, tmp: load_hmdb_split(root, tmp), "test_split1"),
    (lambda root, tmp: load_list_file(root, tmp / "missing.txt"), "missing.txt"),
    (lambda root, tmp: load_folder_per_class(tmp), "no class folders"),
])
def test_missing_paths_are_one_line_errors(synth, tmp_path, call, needle):
    with pytest.raises(EdgeError, match=needle) as e:
        call(synth, tmp_path)
    assert "\n" not in str(e.value)


def test_unreadable_and_truncated_videos_are_skipped_and_counted(synth, tmp_path, caplog):
    root = tmp_path / "ds"
    shutil.copytree(synth, root)
    good = sorted((root / "move_left").glob("*.mp4"))
    data = good[0].read_bytes()
    good[1].write_bytes(data[: len(data) // 3])  # truncated
    good[2].write_bytes(b"")  # empty
    items, _ = load_folder_per_class(root)
    with caplog.at_level(logging.WARNING):
        ds = ClipDataset(items, FOUR, Preprocess(32, 36), train=False)
    assert len(ds) == 7 and len(ds.skipped) == 2
    assert ds.summary() == "9 videos, 2 skipped (unreadable)"
    assert sum("skipping" in r.message for r in caplog.records) == 2
    with pytest.raises(VideoDecodeError):
        read_video(good[2])


def test_clip_dataset_shapes_and_labels(synth):
    items, labels = dataset_from_dir(synth, "train")
    ds = ClipDataset(items, FOUR, Preprocess(32, 36), train=True)
    x, y = ds[0]
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y == items[0].label
    assert [ds[i][1] for i in range(len(ds))] == [it.label for it in items]
    assert ds.median_frames() == 12


def test_training_clips_are_a_function_of_torch_seed_and_index_test_clips_are_fixed(synth):
    items, _ = dataset_from_dir(synth, "train")
    train = ClipDataset(items, FOUR, Preprocess(32, 36), train=True)
    test = ClipDataset(items, FOUR, Preprocess(32, 36), train=False)
    draws = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        draws.append((train[0][0].numpy(), train[1][0].numpy(), test[0][0].numpy()))
    assert np.array_equal(draws[0][0], draws[1][0])  # same seed, same clip: --resume repeats an epoch
    assert not np.array_equal(draws[0][0], draws[2][0])  # another epoch's seed: other offsets/jitter
    assert not np.array_equal(draws[0][0], draws[0][1])  # items do not share one draw
    assert np.array_equal(draws[0][2], draws[2][2])  # test sampling ignores the seed
    frames = test.frames[0]
    centres = Preprocess(32, 36).clip([frames[j] for j in (1, 4, 7, 10)])  # 12 frames, 4 segment centres
    assert np.array_equal(draws[0][2], centres)
