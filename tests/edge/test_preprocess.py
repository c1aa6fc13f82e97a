import numpy as np
import pytest

from edge.preprocess import Preprocess


def test_resize_crop_normalize_numbers():
    p = Preprocess(size=4, resize=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    frame = np.zeros((4, 8, 3), np.uint8)
    frame[:, :, 0] = 255  # red everywhere
    out = p.frame(frame)
    assert out.shape == (3, 4, 4) and out.dtype == np.float32
    assert np.allclose(out[0], 1.0) and np.allclose(out[1:], -1.0)


def test_center_crop_takes_the_middle():
    p = Preprocess(size=2, resize=2, mean=(0, 0, 0), std=(1, 1, 1))
    frame = np.zeros((2, 6, 3), np.uint8)
    frame[:, 2:4] = 255  # only the middle third is white
    assert np.allclose(p.frame(frame), 1.0)


def test_clip_stacks_frames_and_round_trips_through_dict():
    p = Preprocess(size=8, resize=10)
    clip = p.clip([np.full((20, 30, 3), i * 40, np.uint8) for i in range(3)])
    assert clip.shape == (3, 3, 8, 8)
    assert clip[2].mean() > clip[0].mean()
    assert Preprocess.from_dict(p.to_dict()) == p


def test_bad_frames_and_params_are_refused():
    with pytest.raises(ValueError, match="RGB frame"):
        Preprocess().frame(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="resize"):
        Preprocess(size=64, resize=32)
