"""Training's video decode: RGB order, frame count, the cached resize, and one-line errors."""

import cv2
import numpy as np
import pytest

from train.data.decode import VideoDecodeError, read_video


def write(path, frames=10, size=(64, 48), fps=10, fourcc="mp4v"):
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    for i in range(frames):
        bgr = np.zeros((size[1], size[0], 3), np.uint8)
        bgr[..., 2] = 200  # red in OpenCV's BGR
        bgr[..., 1] = min(20 * i, 250)  # green grows with time
        vw.write(bgr)
    vw.release()


def test_frames_come_back_rgb_in_order_at_full_size(tmp_path):
    write(tmp_path / "v.mp4")
    v = read_video(tmp_path / "v.mp4")
    assert v.shape == (10, 48, 64, 3) and v.dtype == np.uint8
    assert abs(int(v[0, ..., 0].mean()) - 200) < 8 and v[0, ..., 2].mean() < 8  # R first, B last
    assert np.all(np.diff(v[:, ..., 1].mean(axis=(1, 2))) > 10)  # time order kept


def test_short_side_resizes_keeping_the_aspect(tmp_path):
    write(tmp_path / "v.mp4")
    assert read_video(tmp_path / "v.mp4", short_side=24).shape == (10, 24, 32, 3)
    assert read_video(str(tmp_path / "v.mp4"), short_side=96).shape == (10, 96, 128, 3)


def test_errors_name_the_file_and_the_reason(tmp_path):
    with pytest.raises(VideoDecodeError) as e:
        read_video(tmp_path / "none.mp4")
    assert str(e.value) == f"{tmp_path / 'none.mp4'}: no such file" and e.value.reason == "no such file"
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(VideoDecodeError) as e:
        read_video(tmp_path / "junk.mp4")
    assert e.value.path == tmp_path / "junk.mp4"
    assert e.value.reason in ("unreadable (not a video, or a codec OpenCV lacks)", "no decodable frames")
    write(tmp_path / "long.avi", frames=30, fourcc="MJPG")  # the AVI header promises 30 frames
    data = (tmp_path / "long.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError) as e:
        read_video(tmp_path / "cut.avi")
    assert e.value.reason.startswith("truncated (") and e.value.reason.endswith(" of 30 frames decoded)")
    (tmp_path / "most.avi").write_bytes(data[: len(data) * 9 // 10])  # most frames left: still usable
    assert 15 <= len(read_video(tmp_path / "most.avi")) < 30
    assert e.value.path == tmp_path / "cut.avi"


def decodable(path) -> int:
    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        n += 1
    return n


@pytest.mark.parametrize("keep", [0.55, 0.66, 0.7, 0.75])
def test_a_video_is_truncated_when_fewer_than_half_its_promised_frames_decode(tmp_path, keep):
    write(tmp_path / "long.avi", frames=30, fourcc="MJPG")
    data = (tmp_path / "long.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * keep)])
    n = decodable(cut)
    if n < 15:
        with pytest.raises(VideoDecodeError) as e:
            read_video(cut)
        assert e.value.reason == f"truncated ({n} of 30 frames decoded)" and e.value.path == cut
    else:
        assert len(read_video(cut)) == n


def test_a_video_with_no_frames_at_all(tmp_path):
    cv2.VideoWriter(str(tmp_path / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48)).release()
    with pytest.raises(VideoDecodeError) as e:
        read_video(tmp_path / "empty.avi")
    assert str(e.value) == f"{tmp_path / 'empty.avi'}: no decodable frames"
    assert (e.value.path, e.value.reason) == (tmp_path / "empty.avi", "no decodable frames")
