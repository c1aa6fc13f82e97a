"""The on-disk motion cache (train/data/motion.py) on real mp4 files from the synthetic generator: computed
once, reused without decoding, recomputed when the video or the parameters change, written atomically; and
the runtime's window computation (edge.motion on decoded frames) equals the cached training input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import train.data.motion as cache
from edge.errors import EdgeError
from edge.motion import (
    FrameFeed,
    MompParams,
    MotionSpec,
    momp_image,
    optical_flow,
    rgbf,
    stack_flows,
    stacked_flow,
)
from train.data.decode import read_video
from train.data.synth import render_video, write_mp4

FRAMES, SIZE, SHORT = 16, 64, 48
SPECS = [MotionSpec("flow"), MotionSpec("rgbf"), MotionSpec("stacked_flow"), MotionSpec("momp")]


@pytest.fixture
def root(tmp_path):
    (tmp_path / "move_right").mkdir()
    write_mp4(tmp_path / "move_right" / "v1.mp4", render_video("move_right", np.random.default_rng(0), FRAMES, SIZE), 15)
    return tmp_path


@pytest.fixture
def decodes(monkeypatch):
    """Counts the cache's video decodes."""
    calls: list[str] = []

    def counting(path, short_side=None):
        calls.append(str(path))
        return read_video(path, short_side)

    monkeypatch.setattr(cache, "read_video", counting)
    return calls


def test_the_cache_lives_next_to_the_dataset_keyed_by_kind_and_parameters(root):
    video = root / "move_right" / "v1.mp4"
    p = cache.cache_path(root, video, MotionSpec("rgbf"), SHORT)
    assert p.parent.parent.parent == root / ".motion"
    assert p.parent.parent.name.startswith("rgbf-") and p.name == "v1.mp4.npz" and p.parent.name == "move_right"
    assert cache.cache_path(root, "move_right/v1.mp4", MotionSpec("rgbf"), SHORT) == p  # relative to root
    assert cache.cache_path(root, video, MotionSpec("rgbf"), SHORT + 1) != p  # decode size is a parameter
    assert cache.cache_path(root, video, MotionSpec("momp", momp=MompParams(n=5)), SHORT).parent.parent != \
        cache.cache_path(root, video, MotionSpec("momp"), SHORT).parent.parent


@pytest.mark.parametrize("spec", SPECS, ids=[s.kind for s in SPECS])
def test_second_call_reads_the_cache_without_decoding(root, decodes, spec):
    video = root / "move_right" / "v1.mp4"
    first = cache.load_motion(root, video, spec, SHORT)
    assert len(decodes) == 1
    path = cache.cache_path(root, video, spec, SHORT)
    mtime = path.stat().st_mtime_ns
    again = cache.load_motion(root, video, spec, SHORT)
    assert len(decodes) == 1 and path.stat().st_mtime_ns == mtime
    assert again.dtype == first.dtype and np.array_equal(again, first)
    assert np.array_equal(first, spec.compute(read_video(video, SHORT)))
    assert [p.name for p in path.parent.iterdir()] == ["v1.mp4.npz"]  # no temp files left behind


def test_a_changed_video_is_recomputed(root, decodes):
    video = root / "move_right" / "v1.mp4"
    spec = MotionSpec("rgbf")
    before = cache.load_motion(root, video, spec, SHORT)
    write_mp4(video, render_video("move_right", np.random.default_rng(1), FRAMES, SIZE), 15)
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a new mtime even on coarse clocks
    after = cache.load_motion(root, video, spec, SHORT)
    assert len(decodes) == 2 and not np.array_equal(after, before)
    cache.load_motion(root, video, spec, SHORT)
    assert len(decodes) == 2  # and the new result is cached in place of the old one


def test_touching_the_video_alone_recomputes(root, decodes):
    video = root / "move_right" / "v1.mp4"
    cache.load_motion(root, video, MotionSpec("flow"), SHORT)
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    cache.load_motion(root, video, MotionSpec("flow"), SHORT)
    assert len(decodes) == 2


def test_changed_parameters_recompute_and_keep_the_other_cache(root, decodes):
    video = root / "move_right" / "v1.mp4"
    a = cache.load_motion(root, video, MotionSpec("momp", momp=MompParams(n=9)), SHORT)
    b = cache.load_motion(root, video, MotionSpec("momp", momp=MompParams(n=5, stride=2)), SHORT)
    assert len(decodes) == 2 and a.shape[0] == 2 and b.shape[0] == 6
    cache.load_motion(root, video, MotionSpec("momp", momp=MompParams(n=9)), SHORT)
    assert len(decodes) == 2
    assert len(list((root / ".motion").iterdir())) == 2


def test_a_broken_or_foreign_cache_file_is_recomputed(root, decodes, caplog):
    video = root / "move_right" / "v1.mp4"
    spec = MotionSpec("stacked_flow")
    good = cache.load_motion(root, video, spec, SHORT)
    path = cache.cache_path(root, video, spec, SHORT)
    path.write_bytes(b"not an npz")
    assert np.array_equal(cache.load_motion(root, video, spec, SHORT), good)
    assert len(decodes) == 2 and "unreadable" in caplog.text
    np.savez(path, data=np.zeros(3), key=np.array("someone else's"))
    assert np.array_equal(cache.load_motion(root, video, spec, SHORT), good)
    assert len(decodes) == 3


def test_a_failed_computation_leaves_no_cache_file(root, monkeypatch):
    video = root / "move_right" / "v1.mp4"

    def boom(self, frames):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(MotionSpec, "compute", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        cache.load_motion(root, video, MotionSpec("flow"), SHORT)
    assert not cache.cache_path(root, video, MotionSpec("flow"), SHORT).exists()


def test_a_video_outside_the_root_is_refused(root, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere") / "v.mp4"
    write_mp4(other, render_video("move_left", np.random.default_rng(0), 8, 32), 15)
    with pytest.raises(ValueError, match="is not under the dataset root"):
        cache.load_motion(root, other, MotionSpec("flow"))


def test_runtime_window_computation_equals_the_cached_training_input(root):
    """The runtime computes motion on its window of decoded frames through edge.motion; training reads the
    per-video cache. On the same decoded frames the two agree to 1e-5 (in fact exactly: uint8 / float32 are
    stored losslessly and each window's computation is the same slice of the per-video one)."""
    video = root / "move_right" / "v1.mp4"
    frames = read_video(video, SHORT)  # what the runtime's window holds after resize_short_side
    s, e = 5, 14  # a window of 9 frames
    flow = cache.load_motion(root, video, MotionSpec("flow"), SHORT)
    assert np.abs(flow[s:e - 1] - optical_flow(frames[s:e])).max() <= 1e-5
    cached = cache.load_motion(root, video, MotionSpec("rgbf"), SHORT)
    runtime = rgbf(frames[s:e], prev=frames[s - 1])
    assert np.abs(cached[s:e].astype(np.float32) - runtime).max() <= 1e-5
    cached = cache.load_motion(root, video, MotionSpec("stacked_flow"), SHORT)
    assert np.abs(stack_flows(cached[s:e - 1]) - stacked_flow(frames[s:e])).max() <= 1e-5
    spec = MotionSpec("momp", momp=MompParams(n=9, stride=1))
    cached = cache.load_motion(root, video, spec, SHORT)
    assert cached.shape == (FRAMES - 9 + 1, SHORT, SHORT, 3)
    assert np.abs(cached[s].astype(np.float32) - momp_image(frames[s:e], spec.momp)).max() <= 1e-5
    assert cached[s].max() == 255  # the synthetic video moves


@pytest.mark.parametrize("spec", [MotionSpec("rgbf"), MotionSpec("momp"), MotionSpec("momp", momp=MompParams(n=5, stride=3)),
                                  MotionSpec("stacked_flow")],
                         ids=["rgbf", "momp", "momp-n5-stride3", "flow-images"])
def test_the_runtime_feed_gives_the_cached_training_input_frame_by_frame(root, spec):
    """What `edge run` does to each decoded frame of a motion-input bundle (FrameFeed: resize to the
    preprocessing's size, then the streaming computation) yields, over the whole video, exactly the array
    training caches and samples from."""
    video = root / "move_right" / "v1.mp4"
    feed = FrameFeed(spec, SHORT)
    streamed = [image for frame in read_video(video) for image in feed(frame)]  # full-size frames, as decoded
    cached = cache.load_motion(root, video, spec, SHORT)
    assert len(streamed) == len(cached) > 1
    assert np.abs(np.stack(streamed).astype(np.float32) - cached).max() <= 1e-5
    assert cached.max() > 100  # not a blank input: the synthetic video moves


def test_the_runtime_feed_passes_rgb_through_and_refuses_raw_flow():
    frame = np.zeros((4, 6, 3), np.uint8)
    assert FrameFeed(None, 3)(frame)[0] is frame
    with pytest.raises(EdgeError, match="motion: the runtime computes rgbf, momp, stacked_flow inputs, not 'flow'"):
        FrameFeed(MotionSpec("flow"), 3)


def test_a_video_too_short_for_its_motion_input_is_skipped_and_counted(root, caplog):
    from edge.bundle import ClipSpec
    from edge.preprocess import Preprocess
    from train.data import ClipDataset, VideoItem

    short = root / "move_right" / "short.mp4"
    write_mp4(short, render_video("move_right", np.random.default_rng(1), 5, SIZE), 15)  # < one 9-frame window
    items = [VideoItem(root / "move_right" / "v1.mp4", 0), VideoItem(short, 0)]
    ds = ClipDataset(items, ClipSpec(1, 1, 1), Preprocess(32, SHORT), train=False, motion=MotionSpec("momp"),
                     root=root)
    assert [it.path for it in ds.items] == [items[0].path] and ds.summary() == "2 videos, 1 skipped (unreadable)"
    assert ds.skipped == [(short, "momp_images (N=9): needs at least 9 frames, got 5")]
    assert "skipping" in caplog.text and str(short) in caplog.text
    x, _ = ds[0]
    assert x.shape == (1, 3, 32, 32)  # the centre MOMP image of the 16-frame video
    with pytest.raises(ValueError, match="a motion input needs the dataset root"):
        ClipDataset(items, ClipSpec(1, 1, 1), Preprocess(32, SHORT), train=False, motion=MotionSpec("momp"))


def test_a_dataset_under_a_relative_root_finds_its_videos_and_cache(root, monkeypatch):
    from edge.bundle import ClipSpec
    from edge.preprocess import Preprocess
    from train.data import ClipDataset, dataset_from_dir

    monkeypatch.chdir(root.parent)
    rel = Path(root.name)  # `edge train --data data/synth`: the items' paths start with the relative root
    items, _ = dataset_from_dir(rel, "train")
    ds = ClipDataset(items, ClipSpec(1, 1, 1), Preprocess(32, SHORT), train=False, motion=MotionSpec("momp"),
                     root=rel)
    assert len(ds) == 1 and not ds.skipped
    assert cache.cache_path(root, root / "move_right" / "v1.mp4", MotionSpec("momp"), SHORT).is_file()
