"""Video decoding with OpenCV (its bundled FFmpeg reads mp4/avi/mkv/webm with no system codecs)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgeError
from edge.preprocess import resize_short_side


class VideoDecodeError(EdgeError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def read_video(path: str | Path, short_side: int | None = None) -> np.ndarray:
    """All frames of ``path`` as (F, H, W, 3) uint8 RGB, optionally resized so the shorter side is
    ``short_side`` (what training caches: decoding once, at the size the model needs)."""
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(path, "no such file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoDecodeError(path, "unreadable (not a video, or a codec OpenCV lacks)")
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if short_side:
                bgr = resize_short_side(bgr, short_side)
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise VideoDecodeError(path, "no decodable frames")
    if expected > 0 and len(frames) < expected // 2:
        raise VideoDecodeError(path, f"truncated ({len(frames)} of {expected} frames decoded)")
    return np.stack(frames)
