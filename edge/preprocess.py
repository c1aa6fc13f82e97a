"""Frame -> tensor preprocessing, in numpy.

This is the ONE implementation: training, evaluation, export calibration and the runtime all call it,
so a deployed model sees exactly the pixels it was trained on. Its parameters travel in the bundle
manifest (``Preprocess.to_dict``), the way torchvision's weights carry their transforms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TSN-scaled flow images (edge.motion.scale_flow: 0 px -> 128) are centred on 0.5; their spread is ours (no
# paper gives one): ImageNet's mean std, so a flow stream's first BatchNorm sees inputs of an RGB stream's scale
FLOW_MEAN = (0.5, 0.5)
FLOW_STD = (0.226, 0.226)


def resize_short_side(image: np.ndarray, short: int) -> np.ndarray:
    """Scale ``image`` so its shorter side is ``short``: area averaging when shrinking, bilinear when
    enlarging. Training's decode cache and the runtime both resize through
    here, so a clip is interpolated the same way wherever it comes from."""
    h, w = image.shape[:2]
    scale = short / min(h, w)
    size = (round(w * scale), round(h * scale))  # the shorter side comes out as exactly ``short``
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Preprocess:
    """Resize the shorter side to ``resize``, center-crop ``size`` x ``size``, scale to [0,1], normalize.

    Frames come in as ``uint8`` arrays of shape (H, W, C), C = ``len(mean)``: 3 for RGB (or an RGB-like
    motion image), 2 for a scaled flow field (``FLOW_MEAN``); clips go out as float32 (T, C, size, size).
    """

    size: int = 64
    resize: int = 72
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.resize < self.size:
            raise ValueError(f"preprocess: resize ({self.resize}) must be >= crop size ({self.size})")
        if len(self.mean) != len(self.std) or len(self.mean) not in (2, 3):
            raise ValueError(f"preprocess: mean and std need one value per channel (3: RGB, 2: flow), got "
                             f"{len(self.mean)} and {len(self.std)}")

    @property
    def channels(self) -> int:
        return len(self.mean)

    @cached_property
    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(x / 255 - mean) / std as one multiply-add per pixel, (C, 1, 1) each: three numpy passes over
        the frame fewer than the formula, and it writes channel-first directly (the runtime calls this
        at every frame)."""
        mean, std = np.asarray(self.mean, np.float64), np.asarray(self.std, np.float64)
        gain, offset = 1.0 / (255.0 * std), -mean / std
        return gain.astype(np.float32)[:, None, None], offset.astype(np.float32)[:, None, None]

    def frame(self, rgb: np.ndarray) -> np.ndarray:
        """One uint8 (H, W, C) frame -> float32 (C, size, size)."""
        if rgb.ndim != 3 or rgb.shape[2] != self.channels:
            what = "RGB frame" if self.channels == 3 else "flow field (x, y)"
            raise ValueError(f"preprocess: expected an (H, W, {self.channels}) {what}, got shape {rgb.shape}")
        resized = resize_short_side(rgb, self.resize)
        nh, nw = resized.shape[:2]
        top, left = (nh - self.size) // 2, (nw - self.size) // 2
        crop = resized[top : top + self.size, left : left + self.size]
        gain, offset = self._affine
        out = np.empty((self.channels, self.size, self.size), np.float32)
        np.multiply(crop.transpose(2, 0, 1), gain, out=out)
        out += offset
        return out

    def clip(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """A sequence of frames -> float32 (T, C, size, size)."""
        return np.stack([self.frame(f) for f in frames])

    def to_dict(self) -> dict:
        return {"size": self.size, "resize": self.resize, "mean": list(self.mean), "std": list(self.std),
                "color": "RGB" if self.channels == 3 else "flow-xy", "layout": "TCHW"}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        return cls(size=int(d["size"]), resize=int(d["resize"]),
                   mean=tuple(float(v) for v in d["mean"]), std=tuple(float(v) for v in d["std"]))


__all__ = ["FLOW_MEAN", "FLOW_STD", "IMAGENET_MEAN", "IMAGENET_STD", "Preprocess", "resize_short_side"]
