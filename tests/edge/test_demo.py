"""The demo's held-out stream: one test video of every class, enlarged so the overlay's label is readable."""

import cv2
import pytest

from edge.demo import held_out_stream

pytest.importorskip("torch", reason="builds its models with torch: not on a runtime-only install (Python 3.8)")

from train.data.synth import generate  # noqa: E402


def test_held_out_stream_is_one_test_video_per_class_at_a_readable_width(tmp_path):
    data = tmp_path / "data"
    generate(data, classes=2, videos_per_class=4, frames=8, size=32, progress=False)
    out = held_out_stream(data, tmp_path / "stream.mp4", width=320)
    cap = cv2.VideoCapture(str(out))
    shape, count = None, 0
    while (got := cap.read())[0]:
        shape, count = got[1].shape, count + 1
    cap.release()
    assert shape == (320, 320, 3)
    assert count == 2 * 8  # the first test video of each of the 2 classes, 8 frames each
