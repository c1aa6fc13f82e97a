"""Training pixels equal runtime pixels: the same mp4 decoded by train/data (OpenCV) and by the GStreamer
runtime, sampled and preprocessed each its own way, gives the same clip tensor. A colour-order, resize or
sampling difference between the two would make a deployed model see inputs it was never trained on."""

import cv2
import numpy as np
import pytest

from edge.bundle import ClipSpec
from edge.preprocess import Preprocess
from edge.window import SlidingWindow
from train.data import ClipDataset
from train.data.datasets import VideoItem
from train.data.synth import generate

pytest.importorskip("gi", reason="PyGObject (GStreamer bindings) not installed")
from edge.pipeline import frames  # noqa: E402
from edge.sources import parse_source  # noqa: E402

FRAMES, SEGMENTS = 16, 4
# one 8-bit level after normalisation is 1 / 255 / std (~0.017); the two decoders' YUV->RGB conversions
# may round differently by a few levels, a channel swap or a wrong frame moves values by ~1 or more.
MAX_ABS, MEAN_ABS = 0.25, 0.03


def coloured_video(path, w: int, h: int) -> None:
    """Red left, blue right, a green ramp down the frame and a white square moving right: every channel,
    the layout and the time order are visible in the pixels."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (w, h))
    y, x = np.mgrid[0:h, 0:w]
    for t in range(FRAMES):
        rgb = np.stack([(x < w // 2) * 220, y * 200 // h, (x >= w // 2) * 220], -1).astype(np.uint8)
        s = t * (w - 12) // FRAMES
        rgb[h // 3 : h // 3 + 12, s : s + 12] = 255
        vw.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    vw.release()


SEGMENT_SPEC = ClipSpec(num_segments=SEGMENTS, window_frames=FRAMES, stride_frames=FRAMES)
# T-C3D-style: 2 clips of 2 frames 2 apart, frames 2, 4 | 10, 12 of 16 (not the segment centres 2, 6, 10, 14)
CLIPS_SPEC = ClipSpec(num_segments=SEGMENTS, window_frames=FRAMES, stride_frames=FRAMES, sampling="clips",
                      num_clips=2, clip_step=2)


def runtime_clip(path, pre: Preprocess, spec: ClipSpec = SEGMENT_SPEC) -> np.ndarray:
    window = SlidingWindow(spec)
    clips = [c for rgb, *_ in frames(parse_source(f"file://{path}")) if (c := window.push(pre.frame(rgb)))
             is not None]
    assert len(clips) == 1, "a 16-frame video fills one 16-frame window"
    return clips[0][0]


def training_clip(path, pre: Preprocess, spec: ClipSpec = SEGMENT_SPEC) -> np.ndarray:
    return ClipDataset([VideoItem(path, 0)], spec, pre, train=False)[0][0].numpy()


@pytest.fixture(scope="module")
def synth_video(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("parity") / "synth", classes=2, videos_per_class=2, seed=5,
                    frames=FRAMES, size=48, progress=False).out
    return sorted(root.glob("*/*.mp4"))[0]


@pytest.mark.parametrize("w, h, pre", [
    (64, 48, Preprocess(size=32, resize=36)),  # landscape, downscaled
    (48, 80, Preprocess(size=40, resize=44)),  # portrait
    (40, 30, Preprocess(size=48, resize=56)),  # smaller than the model input: upscaled
])
def test_runtime_clip_equals_training_clip(tmp_path, w, h, pre):
    video = tmp_path / "coloured.mp4"
    coloured_video(video, w, h)
    train, live = training_clip(video, pre), runtime_clip(video, pre)
    assert train.shape == live.shape == (SEGMENTS, 3, pre.size, pre.size)
    diff = np.abs(train - live)
    assert diff.max() < MAX_ABS and diff.mean() < MEAN_ABS, (diff.max(), diff.mean())
    # the clip is really red on the left and blue on the right in RGB order, in both paths
    for clip in (train, live):
        half = pre.size // 2
        assert clip[0, 0, :, :half - 2].mean() > clip[0, 2, :, :half - 2].mean() + 1.0
        assert clip[0, 2, :, half + 2:].mean() > clip[0, 0, :, half + 2:].mean() + 1.0


@pytest.mark.parametrize("spec", [SEGMENT_SPEC, CLIPS_SPEC], ids=["segments", "clips"])
def test_synthetic_set_videos_decode_the_same_for_training_and_runtime(synth_video, spec):
    pre = Preprocess(size=32, resize=36)
    train, live = training_clip(synth_video, pre, spec), runtime_clip(synth_video, pre, spec)
    diff = np.abs(train - live)
    assert diff.max() < MAX_ABS and diff.mean() < MEAN_ABS, (diff.max(), diff.mean())
    # and they are the frames the spec names: the moving object sits elsewhere in a segment-sampled clip
    other = training_clip(synth_video, pre, CLIPS_SPEC if spec is SEGMENT_SPEC else SEGMENT_SPEC)
    assert np.abs(train[1] - other[1]).max() > 10 * MAX_ABS
