"""Dataset indexes (UCF101 / HMDB51 official splits, folder per class, list file) and the clip dataset.

Loaders return ``(items, labels)``. A missing root or split file is a one-line EdgeError naming the path;
an unreadable or truncated video is skipped with one warning line and counted in ``ClipDataset.summary()``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from edge.bundle import ClipSpec, FlowInput
from edge.errors import EdgeError
from edge.motion import MotionSpec, TooFewFrames
from edge.preprocess import Preprocess
from train.data.decode import VideoDecodeError, read_video
from train.data.motion import load_motion
from train.data.samplers import all_clip_indices, frame_indices

log = logging.getLogger(__name__)
VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".webm"}


@dataclass(frozen=True)
class VideoItem:
    path: Path
    label: int


def _need_dir(p: Path, what: str) -> Path:
    if not p.is_dir():
        raise EdgeError(f"{what} {p}: no such directory")
    return p


def _need_file(p: Path, what: str) -> Path:
    if not p.is_file():
        raise EdgeError(f"{what} {p}: no such file")
    return p


def load_ucf_split(root: Path, split_dir: Path, split: int = 1,
                   subset: str = "train") -> tuple[list[VideoItem], list[str]]:
    """UCF101 format: classInd.txt ("1 ApplyEyeMakeup"), trainlistNN.txt ("Class/v.avi 1"),
    testlistNN.txt ("Class/v.avi", label from the folder)."""
    root, split_dir = _need_dir(Path(root), "dataset root"), _need_dir(Path(split_dir), "split directory")
    ind = _need_file(split_dir / "classInd.txt", "class index")
    labels = [line.split()[1] for line in ind.read_text().splitlines() if line.strip()]
    index = {lab: i for i, lab in enumerate(labels)}
    lst = _need_file(split_dir / f"{subset}list{split:02d}.txt", "split file")
    items = []
    for line in lst.read_text().splitlines():
        if not line.strip():
            continue
        rel = line.split()[0]
        cls = rel.replace("\\", "/").split("/")[0]
        if cls not in index:
            raise EdgeError(f"split file {lst}: class {cls!r} of {rel} is not in {ind}")
        items.append(VideoItem(root / rel, index[cls]))
    return items, labels


def load_hmdb_split(root: Path, split_dir: Path, split: int = 1,
                    subset: str = "train") -> tuple[list[VideoItem], list[str]]:
    """HMDB51 format: ``<class>_test_split<N>.txt`` per class, lines "video.avi 0|1|2" (1 train, 2 test)."""
    root, split_dir = _need_dir(Path(root), "dataset root"), _need_dir(Path(split_dir), "split directory")
    files = sorted(split_dir.glob(f"*_test_split{split}.txt"))
    if not files:
        raise EdgeError(f"split directory {split_dir}: no *_test_split{split}.txt files (HMDB51 format)")
    want = {"train": "1", "test": "2"}[subset]
    labels = [f.name[: -len(f"_test_split{split}.txt")] for f in files]
    items = []
    for k, f in enumerate(files):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == want:
                items.append(VideoItem(root / labels[k] / parts[0], k))
    return items, labels


def load_folder_per_class(root: Path) -> tuple[list[VideoItem], list[str]]:
    root = _need_dir(Path(root), "dataset root")
    labels = sorted(d.name for d in root.iterdir() if d.is_dir() and any(
        f.suffix.lower() in VIDEO_EXTS for f in d.iterdir()))
    if not labels:
        raise EdgeError(f"dataset root {root}: no class folders with videos in them")
    items = [VideoItem(f, k) for k, lab in enumerate(labels) for f in sorted((root / lab).iterdir())
             if f.suffix.lower() in VIDEO_EXTS]
    return items, labels


def load_list_file(root: Path, list_file: Path,
                   labels: list[str] | None = None) -> tuple[list[VideoItem], list[str]]:
    """Lines "relative/path.mp4 label", the label an integer index or a class name."""
    root, lst = _need_dir(Path(root), "dataset root"), _need_file(Path(list_file), "list file")
    rows = [line.rsplit(maxsplit=1) for line in lst.read_text().splitlines() if line.strip()]
    if any(len(r) != 2 for r in rows):
        raise EdgeError(f"list file {lst}: every line must be 'relative/path label'")
    if labels is None:
        names = [r[1] for r in rows if not r[1].isdigit()]
        labels = sorted(set(names)) if names else [str(i) for i in range(max(int(r[1]) for r in rows) + 1)]
    index = {lab: i for i, lab in enumerate(labels)}
    items = []
    for rel, lab in rows:
        k = int(lab) if lab.isdigit() else index.get(lab)
        if k is None or not 0 <= k < len(labels):
            raise EdgeError(f"list file {lst}: unknown label {lab!r} for {rel}")
        items.append(VideoItem(root / rel, k))
    return items, labels


def dataset_from_dir(root: Path, subset: str) -> tuple[list[VideoItem], list[str]]:
    """UCF-style split 1 if ``root/splits/classInd.txt`` exists, else folder-per-class (all videos)."""
    root = Path(root)
    if (root / "splits" / "classInd.txt").is_file():
        return load_ucf_split(root, root / "splits", 1, subset)
    return load_folder_per_class(root)


class ClipDataset(Dataset):
    """(T, 3, S, S) float32 clips sampled as ``clip`` says (TSN segments or runs of frames: ``frame_indices``).
    Each video is decoded once and cached at the preprocessing's resize size, so epochs after the first cost
    no decoding.

    ``motion``: the clips are of that motion input instead (RGBF frames, MOMP images: ``edge.motion``), each
    video's computed once and cached under ``root`` (``train.data.motion.load_motion``), which the videos
    must lie under.

    A training clip's random frame offsets and jitter are drawn from (torch's seed, item index): the fit
    loop seeds torch per epoch and DataLoader workers get their own seeds from it, so sampling is
    reproducible (``--resume`` repeats it) and never the same in two workers."""

    def __init__(self, items: list[VideoItem], clip: ClipSpec, preprocess: Preprocess, train: bool,
                 progress: bool = False, motion: MotionSpec | None = None, root: Path | None = None) -> None:
        if motion is not None and root is None:
            raise ValueError("ClipDataset: a motion input needs the dataset root its cache lives under")
        self.clip, self.preprocess, self.train = clip, preprocess, train
        self.items: list[VideoItem] = []
        self.frames: list[np.ndarray] = []
        self.skipped: list[tuple[Path, str]] = []
        desc = "decode" if motion is None else f"decode + {motion.kind} (cached)"
        for it in tqdm(items, desc=desc, leave=False, disable=not progress):
            try:
                self.frames.append(read_video(it.path, preprocess.resize) if motion is None else
                                   load_motion(root, it.path.resolve(), motion, preprocess.resize))
                self.items.append(it)
            except VideoDecodeError as e:
                log.warning("skipping %s: %s", it.path, e.reason)
                self.skipped.append((it.path, e.reason))
            except TooFewFrames as e:  # a video shorter than a MOMP window has no motion image
                log.warning("skipping %s: %s", it.path, e)
                self.skipped.append((it.path, str(e)))
        if not self.items:
            raise EdgeError(f"no readable videos among {len(items)} listed "
                            f"(first: {items[0].path if items else 'none'})")

    def __len__(self) -> int:
        return len(self.items)

    def median_frames(self) -> int:
        return int(np.median([len(f) for f in self.frames]))

    def summary(self) -> str:
        return f"{len(self.items) + len(self.skipped)} videos, {len(self.skipped)} skipped (unreadable)"

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        rng = np.random.default_rng([torch.initial_seed(), i])
        idx = frame_indices(self.clip, len(self.frames[i]), self.train, rng)
        return self.clip_at(i, idx, rng), self.items[i].label

    def clip_at(self, i: int, idx: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """Video ``i``'s frames ``idx`` preprocessed, an index past its end reading its last frame (a flow
        video has one field fewer than the frames it came from); with ``rng``, a training clip's
        photometric jitter (only that: flips or crops would change direction labels)."""
        frames = self.frames[i]
        clip = self.preprocess.clip([frames[min(int(j), len(frames) - 1)] for j in idx])
        if self.train and rng is not None:
            clip = clip * rng.uniform(0.8, 1.2) + rng.uniform(-0.2, 0.2)
        return torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))

    def all_clips(self, i: int) -> torch.Tensor:
        """(N, clip_len, 3, S, S): every clip of video ``i`` back to back (``all_clip_indices``), for T-C3D's
        all-clips test."""
        frames = self.frames[i]
        idx = all_clip_indices(len(frames), self.clip)
        return torch.from_numpy(np.stack([self.preprocess.clip([frames[j] for j in row]) for row in idx]))


def clip_dataset(items: list[VideoItem], clip: ClipSpec, preprocess: Preprocess, *, train: bool,
                 motion: MotionSpec | None = None, flow: FlowInput | None = None, root: Path | None = None,
                 progress: bool = False) -> ClipDataset | PairedClips:
    """The clips a model takes: of its input (``ClipDataset``), or, for a two-stream model (``flow``), paired with
    their flow fields at the same frames (``PairedClips``)."""
    ds = ClipDataset(items, clip, preprocess, train=train, progress=progress, motion=motion, root=root)
    if flow is None:
        return ds
    return PairedClips(ds, ClipDataset(items, clip, flow.preprocess, train=False, progress=progress,
                                       motion=flow.motion, root=root))


class PairedClips(Dataset):
    """((RGB clip, flow clip), label): each training clip's frames from ``rgb`` and the flow fields from
    ``flow`` at the same frame indices (field t: frame t to t+1), so a student sees the frames whose motion
    its teacher sees. Indices and jitter are ``rgb``'s draw; the flow clip is not jittered (the teacher's
    view stays as it was trained). Videos either set skipped are left out of both."""

    def __init__(self, rgb: ClipDataset, flow: ClipDataset) -> None:
        where = {it.path: k for k, it in enumerate(flow.items)}
        self.rgb, self.flow = rgb, flow
        self.pairs = [(k, where[it.path]) for k, it in enumerate(rgb.items) if it.path in where]
        if not self.pairs:
            raise EdgeError("paired RGB and flow clips: no video is readable in both")

    def __len__(self) -> int:
        return len(self.pairs)

    def summary(self) -> str:
        return f"{self.rgb.summary()}; {len(self.pairs)} paired with flow"

    def __getitem__(self, i: int) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
        k, m = self.pairs[i]
        rng = np.random.default_rng([torch.initial_seed(), i])
        idx = frame_indices(self.rgb.clip, len(self.rgb.frames[k]), self.rgb.train, rng)
        return (self.rgb.clip_at(k, idx, rng), self.flow.clip_at(m, idx)), self.rgb.items[k].label
