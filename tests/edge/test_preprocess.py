import numpy as np
import pytest

from edge.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess


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


def ramp_frame() -> np.ndarray:
    """30x60 RGB: R marks every third column, G grows with the row, B with the column."""
    y, x = np.mgrid[0:30, 0:60]
    return np.stack([(x % 3 == 0) * 255, 3 * y, 2 * x], axis=-1).astype(np.uint8)


def test_downscale_averages_areas_then_crops_the_centre_of_the_resized_frame():
    # resize 10 on a 30-row frame: a third, so each output pixel is the mean of a 3x3 block (INTER_AREA);
    # the 10x20 result is cropped at rows 1..8, columns 6..13.
    p = Preprocess(size=8, resize=10, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.2))
    out = p.frame(ramp_frame())
    rows, cols = np.arange(1, 9), np.arange(6, 14)
    red = np.full((8, 8), 85.0)  # one marked column in three: 255 / 3 (a point sampler sees 0 or 255)
    green = np.repeat((9 * rows + 3)[:, None], 8, axis=1)  # mean of 3 * (3i, 3i+1, 3i+2)
    blue = np.repeat((6 * cols + 2)[None, :], 8, axis=0)  # mean of 2 * (3j, 3j+1, 3j+2)
    expected = (np.stack([red, green, blue]) / 255.0 - np.array([0.1, 0.2, 0.3])[:, None, None]) \
        / np.array([0.5, 0.25, 0.2])[:, None, None]
    assert out.shape == (3, 8, 8) and out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    assert np.abs(out - expected).max() < 1.5 / 255 / 0.2


def test_upscale_interpolates_linearly():
    # a 2x2 frame to 4x4: bilinear with half-pixel centres puts 0.25/0.75 blends between the corners
    p = Preprocess(size=4, resize=4, mean=(0, 0, 0), std=(1, 1, 1))
    frame = np.zeros((2, 2, 3), np.uint8)
    frame[:, 1] = 200
    out = p.frame(frame)[0] * 255
    assert out[0] == pytest.approx([0, 50, 150, 200], abs=1)  # nearest neighbour would give 0,0,200,200


def test_portrait_frames_resize_the_shorter_side_and_crop_vertically():
    p = Preprocess(size=4, resize=4, mean=(0, 0, 0), std=(1, 1, 1))
    frame = np.zeros((12, 4, 3), np.uint8)
    frame[4:8] = 255  # only the middle third of the rows is white
    assert np.allclose(p.frame(frame), 1.0)


def test_default_normalisation_is_imagenet_rgb():
    p = Preprocess(size=2, resize=2)
    out = p.frame(np.full((2, 2, 3), (255, 128, 0), np.uint8))
    expected = (np.array([255, 128, 0]) / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert out[:, 0, 0] == pytest.approx(expected, abs=1e-5)


def test_clip_stacks_frames_in_order_and_round_trips_through_dict():
    p = Preprocess(size=8, resize=10, mean=(0, 0, 0), std=(1, 1, 1))
    clip = p.clip([np.full((20, 30, 3), i * 40, np.uint8) for i in range(3)])
    assert clip.shape == (3, 3, 8, 8)
    assert clip[:, 0, 0, 0] == pytest.approx([0, 40 / 255, 80 / 255])
    assert Preprocess.from_dict(p.to_dict()) == p
    assert p.to_dict()["color"] == "RGB" and p.to_dict()["layout"] == "TCHW"


def test_bad_frames_and_params_are_refused():
    with pytest.raises(ValueError, match="RGB frame"):
        Preprocess().frame(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="RGB frame"):
        Preprocess().frame(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ValueError, match="resize"):
        Preprocess(size=64, resize=32)
    Preprocess(size=32, resize=32)  # equal is allowed


@pytest.mark.parametrize("h, w, short", [(30, 60, 10), (7, 1000, 3), (480, 640, 224), (3, 3, 300)])
def test_the_shorter_side_comes_out_exactly(h, w, short):
    from edge.preprocess import resize_short_side

    out = resize_short_side(np.zeros((h, w, 3), np.uint8), short)
    assert min(out.shape[:2]) == short and out.shape[1] == round(w * short / h)
