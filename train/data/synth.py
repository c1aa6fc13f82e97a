"""A synthetic action set whose labels depend on temporal order.

Every class has a partner that is its exact time reverse (move left / move right, rotate cw / ccw, zoom
in / out, appear / disappear, ...): the *set* of frames of a video has the same distribution in both
classes, so a frame-averaging model (TSN) is at chance within a pair, while a model that sees order (TSM)
can learn it. Distractors, a textured moving background, random speed, size, colour, start phase and
noise keep it from being trivial. Real mp4 files, UCF101-style split files, deterministic per seed.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.atomic import atomic_dir
from edge.errors import EdgeError

# Time-reversal pairs, adjacent: CLASSES[2k] and CLASSES[2k + 1] are each other's reverse.
CLASSES: tuple[str, ...] = (
    "move_left", "move_right",
    "move_up", "move_down",
    "rotate_cw", "rotate_ccw",
    "zoom_in", "zoom_out",
    "appear", "disappear",
    "warm_to_cool", "cool_to_warm",
    "move_up_right", "move_down_left",
)


def partner(label: str) -> str:
    """The class that is ``label`` played backwards."""
    i = CLASSES.index(label)
    return CLASSES[i ^ 1]


@dataclass
class SynthSummary:
    out: Path
    classes: list[str]
    n_train: int
    n_test: int


@dataclass
class _Motion:
    """Where the main object is at progress p in [0, 1] of the *forward* class of a pair."""

    pair: int
    start: np.ndarray  # (x, y) in [0, 1]
    travel: float
    angle0: float

    def state(self, p: float) -> tuple[float, float, float, float, float, float]:
        """(x, y, scale, angle, alpha, hue shift in [0, 1])."""
        x, y = self.start
        scale, angle, alpha, hue = 1.0, self.angle0, 1.0, 0.0
        d = self.travel * (p - 0.5)
        if self.pair == 0:
            x = 0.5 - d  # forward class is move_left
        elif self.pair == 1:
            y = 0.5 - d  # move_up
        elif self.pair == 2:
            angle = self.angle0 + 300.0 * p  # rotate_cw (image y points down)
        elif self.pair == 3:
            scale = 0.45 + 1.3 * p  # zoom_in
        elif self.pair == 4:
            alpha = min(1.0, max(0.0, 1.6 * p - 0.3))  # appear
        elif self.pair == 5:
            hue = p  # warm_to_cool
        elif self.pair == 6:
            x, y = 0.5 + 0.7 * d, 0.5 - 0.7 * d  # move_up_right
        return x, y, scale, angle, alpha, hue


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-frequency colour noise, twice the frame size so it can scroll."""
    small = rng.uniform(0, 1, (6, 6, 3)).astype(np.float32)
    big = cv2.resize(small, (2 * size, 2 * size), interpolation=cv2.INTER_CUBIC)
    return np.clip(0.25 + 0.12 * big, 0, 1)


def _shape_points(kind: int, radius: float) -> np.ndarray:
    """An asymmetric shape (so rotation direction is visible), centred at the origin."""
    if kind == 0:  # "L"
        pts = [(-1, -1), (-0.3, -1), (-0.3, 0.4), (1, 0.4), (1, 1), (-1, 1)]
    elif kind == 1:  # arrow
        pts = [(-1, -0.35), (0.2, -0.35), (0.2, -0.9), (1, 0), (0.2, 0.9), (0.2, 0.35), (-1, 0.35)]
    else:  # bar with a flag
        pts = [(-1, -0.25), (1, -0.25), (1, -1), (0.3, -1), (0.3, -0.25), (1, -0.25), (1, 0.25), (-1, 0.25)]
    return np.asarray(pts, np.float32) * radius


def _hue_color(base: np.ndarray, shift: float) -> np.ndarray:
    """Blend from a warm to a cool version of the base colour."""
    warm = np.array([0.95, 0.45, 0.1], np.float32)
    cool = np.array([0.1, 0.45, 0.95], np.float32)
    return np.clip(0.35 * base + 0.65 * ((1 - shift) * warm + shift * cool), 0, 1)


def render_video(label: str, rng: np.random.Generator, frames: int = 32, size: int = 96) -> np.ndarray:
    """(frames, size, size, 3) uint8 RGB frames of one video of class ``label``."""
    cls = CLASSES.index(label)
    pair, reverse = cls // 2, bool(cls % 2)
    motion = _Motion(pair, rng.uniform(0.35, 0.65, 2), rng.uniform(0.55, 0.75), rng.uniform(0, 360))
    kind, radius = int(rng.integers(0, 3)), size * rng.uniform(0.16, 0.22)
    base = rng.uniform(0.5, 1.0, 3).astype(np.float32)
    bg = _background(rng, size)
    bg_vel = rng.uniform(-0.6, 0.6, 2)
    distractors = [(rng.uniform(0, size, 2), rng.uniform(-1.5, 1.5, 2), size * rng.uniform(0.03, 0.05),
                    rng.uniform(0.3, 0.8, 3)) for _ in range(int(rng.integers(1, 3)))]
    # random speed and start phase: the action spans a random sub-interval of the clip
    span = rng.uniform(0.85, 1.0)
    phase0 = rng.uniform(0, 1 - span)
    out = np.empty((frames, size, size, 3), np.uint8)
    for f in range(frames):
        t = f / (frames - 1)
        p = float(np.clip((t - phase0) / span, 0, 1))
        x, y, scale, angle, alpha, hue = motion.state(1 - p if reverse else p)
        ox, oy = np.clip(size / 2 + bg_vel * f, 0, size)  # scrolls, never wraps
        img = bg[int(oy): int(oy) + size, int(ox): int(ox) + size].copy()
        for pos, vel, r, col in distractors:
            cx, cy = (pos + vel * f) % size
            cv2.circle(img, (int(cx), int(cy)), int(r), col.tolist(), -1, cv2.LINE_AA)
        pts = _shape_points(kind, radius * scale)
        th = np.deg2rad(angle)
        rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]], np.float32)
        poly = (pts @ rot.T + np.array([x * size, y * size], np.float32)).astype(np.int32)
        color = _hue_color(base, hue) if pair == 5 else base
        layer = img.copy()
        cv2.fillPoly(layer, [poly], color.tolist(), cv2.LINE_AA)
        img = (1 - alpha) * img + alpha * layer
        img += rng.normal(0, 0.03, img.shape).astype(np.float32)
        out[f] = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return out


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    """MPEG-4 part 2 in mp4: OpenCV writes it with no extra codec; GStreamer decodes it (avdec_mpeg4)."""
    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not vw.isOpened():
        raise EdgeError(f"cannot open a video writer for {path}")
    for fr in frames:
        vw.write(cv2.cvtColor(fr, cv2.COLOR_RGB2BGR))
    vw.release()


def _video_rng(seed: int, label: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(label.encode()), index])


def generate(out: Path, classes: int = 12, videos_per_class: int = 20, seed: int = 0, frames: int = 32,
             size: int = 96, fps: int = 15, progress: bool = True,
             labels: Sequence[str] | None = None, test_fraction: float = 0.25) -> SynthSummary:
    """Write ``classes`` x ``videos_per_class`` videos to ``out`` (atomically), with split files.
    ``labels`` picks the classes by name instead of the first ``classes`` of ``CLASSES`` (a task without
    time-reversal partners, for an order-blind model); ``test_fraction`` of each class's videos are test
    videos (a large test split over a small training set: a data-limited task measured precisely)."""
    if labels is not None:
        unknown = sorted(set(labels) - set(CLASSES))
        if unknown or len(set(labels)) != len(labels):
            raise EdgeError(f"synth labels: expected distinct names from {', '.join(CLASSES)}, got {list(labels)}")
        classes = len(labels)
    if not 2 <= classes <= len(CLASSES):
        raise EdgeError(f"--classes: expected 2..{len(CLASSES)}, got {classes}")
    if videos_per_class < 2:
        raise EdgeError(f"--videos-per-class: expected at least 2 (one train, one test), got {videos_per_class}")
    if frames < 8 or size < 32:
        raise EdgeError(f"synth: need frames >= 8 and size >= 32 (got {frames}, {size})")
    labels = list(labels or CLASSES[:classes])
    n_test = max(1, round(videos_per_class * test_fraction))
    if not 0 < test_fraction < 1 or n_test >= videos_per_class:
        raise EdgeError(f"synth: test_fraction {test_fraction} leaves no training video of {videos_per_class}")
    train_lines, test_lines = [], []
    out = Path(out)
    with atomic_dir(out) as tmp:
        (tmp / "splits").mkdir()
        jobs = [(lab, i) for lab in labels for i in range(videos_per_class)]
        for lab, i in tqdm(jobs, desc="synth videos", disable=not progress):
            (tmp / lab).mkdir(exist_ok=True)
            rel = f"{lab}/{lab}_g{i // 4 + 1:02d}_c{i % 4 + 1:02d}.mp4"
            write_mp4(tmp / rel, render_video(lab, _video_rng(seed, lab, i), frames, size), fps)
            if i < videos_per_class - n_test:
                train_lines.append(f"{rel} {labels.index(lab) + 1}")
            else:
                test_lines.append(rel)
        (tmp / "splits" / "classInd.txt").write_text("".join(f"{k + 1} {lab}\n" for k, lab in enumerate(labels)))
        (tmp / "splits" / "trainlist01.txt").write_text("\n".join(train_lines) + "\n")
        (tmp / "splits" / "testlist01.txt").write_text("\n".join(test_lines) + "\n")
    return SynthSummary(out, labels, len(train_lines), len(test_lines))
