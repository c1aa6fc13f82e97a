"""Per-video motion inputs (optical flow, RGBF, MOMP images, scaled flow), computed by ``edge.motion`` (the
one implementation the runtime also runs) and cached on disk next to the dataset.

Layout: ``<root>/.motion/<kind>-<key>/<video path relative to root>.npz``, where ``<key>`` hashes the
motion parameters and the decode size (``MotionSpec.to_dict`` + ``short_side``), so different parameters
live side by side. Inside: ``data`` (the array ``MotionSpec.compute`` returns) and ``key`` (JSON: the
parameters, the decode size and the video's size and mtime). A file whose ``key`` does not match the video
and parameters asked for (the video was replaced or touched), or that cannot be read, is recomputed and
replaced; files are written atomically (``edge.atomic``), so an interrupted run leaves no partial cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from edge.atomic import atomic_path
from edge.motion import MotionSpec
from train.data.decode import read_video

log = logging.getLogger(__name__)
CACHE_DIR = ".motion"
VERSION = 1  # bump when edge.motion's output for the same parameters changes


def _relative(root: Path, video: Path) -> Path:
    try:
        return video.resolve().relative_to(root.resolve())
    except ValueError:
        raise ValueError(f"motion cache: video {video} is not under the dataset root {root}") from None


def _params(spec: MotionSpec, short_side: int | None) -> dict:
    return {"version": VERSION, "motion": spec.to_dict(), "short_side": short_side}


def cache_path(root: str | os.PathLike[str], video: str | os.PathLike[str], spec: MotionSpec,
               short_side: int | None = None) -> Path:
    """Where ``video``'s motion input for ``spec`` (decoded at ``short_side``) is cached."""
    root, video = Path(root), Path(video)
    digest = hashlib.sha256(json.dumps(_params(spec, short_side), sort_keys=True).encode()).hexdigest()[:12]
    rel = _relative(root, video if video.is_absolute() else root / video)
    return root / CACHE_DIR / f"{spec.kind}-{digest}" / rel.with_name(rel.name + ".npz")


def _key(video: Path, spec: MotionSpec, short_side: int | None) -> str:
    st = video.stat()
    return json.dumps({**_params(spec, short_side), "size": st.st_size, "mtime_ns": st.st_mtime_ns}, sort_keys=True)


def _read(path: Path, key: str) -> np.ndarray | None:
    """The cached array if ``path`` holds one for ``key``; None on a miss, a stale key or a broken file."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            return z["data"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        log.warning("motion cache %s unreadable (%s); recomputing", path, e)
        return None


def load_motion(root: str | os.PathLike[str], video: str | os.PathLike[str], spec: MotionSpec,
                short_side: int | None = None) -> np.ndarray:
    """``spec.compute`` of ``video`` decoded by ``read_video(video, short_side)`` (give the preprocessing's
    ``resize``, as ``ClipDataset`` decodes), from the cache when it is current, else computed and cached.
    ``video`` is absolute or relative to ``root`` and must lie under ``root``."""
    root, video = Path(root), Path(video)
    video = video if video.is_absolute() else root / video
    path = cache_path(root, video, spec, short_side)
    key = _key(video, spec, short_side)
    data = _read(path, key)
    if data is not None:
        return data
    data = spec.compute(read_video(video, short_side))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, data=data, key=np.array(key))
    return data


__all__ = ["CACHE_DIR", "cache_path", "load_motion"]
