"""The deployable bundle: a directory with ``manifest.json`` and the model files it names.

The runtime reads only the bundle, so the manifest carries everything needed to run a model correctly:
labels, the input spec, preprocessing, the clip/online window, precisions, file hashes, the source
checkpoint's hash and the accuracy measured at export time. The schema is versioned; a manifest of an
unknown version is refused with a clear message rather than guessed at.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.atomic import write_text
from edge.errors import EdgeError
from edge.motion import MotionSpec
from edge.preprocess import Preprocess

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
PRECISIONS = ("fp32", "fp16", "int8")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


SAMPLINGS = ("segments", "clips")


@dataclass(frozen=True)
class ClipSpec:
    """How frames become one model input.

    ``mode`` is ``clip`` (the model sees ``num_segments`` frames sampled from the last ``window_frames``
    frames, one decision every ``stride_frames``) or ``online`` (one frame per call, explicit shift-buffer
    state tensors carried between calls). ``sampling`` picks the frames of a clip: ``segments`` (TSN: one
    frame per equal segment, for the 2D models) or ``clips`` (``num_clips`` runs of ``clip_len`` frames
    ``clip_step`` apart, one per equal part: the 3D CNNs, and T-C3D's S clips concatenated in time).
    """

    num_segments: int = 8
    window_frames: int = 32
    stride_frames: int = 8
    mode: str = "clip"
    sampling: str = "segments"
    num_clips: int = 1
    clip_step: int = 1

    def __post_init__(self) -> None:
        if self.mode not in ("clip", "online"):
            raise EdgeError(f"manifest: clip.mode must be 'clip' or 'online', got {self.mode!r}")
        if self.sampling not in SAMPLINGS:
            raise EdgeError(f"manifest: clip.sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if min(self.num_segments, self.window_frames, self.stride_frames, self.num_clips, self.clip_step) < 1:
            raise EdgeError("manifest: clip.num_segments, window_frames, stride_frames, num_clips and clip_step "
                            "must be >= 1")
        if self.window_frames < self.num_segments:
            raise EdgeError(f"manifest: clip.window_frames ({self.window_frames}) < num_segments "
                            f"({self.num_segments})")
        if self.sampling == "segments" and (self.num_clips, self.clip_step) != (1, 1):
            raise EdgeError("manifest: clip.num_clips and clip_step need sampling 'clips'")
        if self.num_segments % self.num_clips:
            raise EdgeError(f"manifest: clip.num_segments ({self.num_segments}) is not a multiple of num_clips "
                            f"({self.num_clips})")

    @property
    def clip_len(self) -> int:
        """Frames per clip (``clips`` sampling); the model input holds ``num_clips`` of them."""
        return self.num_segments // self.num_clips

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "num_segments": self.num_segments, "window_frames": self.window_frames,
                "stride_frames": self.stride_frames, "sampling": self.sampling, "num_clips": self.num_clips,
                "clip_step": self.clip_step}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipSpec:
        """Manifests and checkpoints written before ``sampling`` existed hold segment models: the defaults."""
        return cls(num_segments=int(d["num_segments"]), window_frames=int(d["window_frames"]),
                   stride_frames=int(d["stride_frames"]), mode=str(d.get("mode", "clip")),
                   sampling=str(d.get("sampling", "segments")), num_clips=int(d.get("num_clips", 1)),
                   clip_step=int(d.get("clip_step", 1)))


CLIP_INPUT, LOGITS = "clip", "logits"  # every clip model's input and output, by name
FLOW_INPUT = "flow"  # a two-stream model's second input, by name (its ONNX input and manifest entry)


@dataclass(frozen=True)
class FlowInput:
    """A two-stream model's second input (manifest ``flow``): the flow fields ``motion`` computes from the same
    frames, at its own preprocessing, sampled at the RGB clip's frames (field t: frame t to t+1)."""

    name: str
    preprocess: Preprocess
    motion: MotionSpec

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "preprocess": self.preprocess.to_dict(), "motion": self.motion.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowInput:
        return cls(str(d["name"]), Preprocess.from_dict(d["preprocess"]), MotionSpec.from_dict(d["motion"]))


@dataclass
class Bundle:
    """A loaded, validated bundle. ``files`` maps a role (``fp32``, ``int8``, ``checkpoint``...) to
    ``{"path": relative path, "sha256": hex}``."""

    root: Path
    name: str
    labels: list[str]
    preprocess: Preprocess
    clip: ClipSpec
    files: dict[str, dict[str, str]]
    input: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    motion: MotionSpec | None = None  # the model takes this motion input, computed from the frames, not RGB
    flow: FlowInput | None = None  # a two-stream model's second input, beside the RGB clip

    @property
    def precisions(self) -> list[str]:
        return [p for p in PRECISIONS if p in self.files]

    def path(self, role: str) -> Path:
        if role not in self.files:
            have = ", ".join(sorted(self.files)) or "none"
            raise EdgeError(f"bundle {self.root}: has no {role!r} model (it has: {have})")
        return self.root / self.files[role]["path"]

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int, int]:
        s = self.preprocess.size
        return (batch, self.clip.num_segments, self.preprocess.channels, s, s)

    def manifest(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "name": self.name, "labels": self.labels,
                "input": self.input or {"name": CLIP_INPUT, "shape": list(self.input_shape()), "dtype": "float32",
                                        "layout": "NTCHW"},
                "preprocess": self.preprocess.to_dict(), "clip": self.clip.to_dict(), "files": self.files,
                **({"motion": self.motion.to_dict()} if self.motion else {}),
                **({"flow": self.flow.to_dict()} if self.flow else {}), **self.extra}

    def add_file(self, role: str, path: str | Path) -> None:
        """Register a file already written inside the bundle directory, hashing it."""
        p = Path(path)
        rel = p.relative_to(self.root) if p.is_absolute() else p
        self.files[role] = {"path": str(rel), "sha256": sha256_file(self.root / rel)}

    def save(self) -> Path:
        write_text(self.root / "labels.txt", "\n".join(self.labels) + "\n")
        self.add_file("labels", "labels.txt")
        target = self.root / MANIFEST
        write_text(target, json.dumps(self.manifest(), indent=2) + "\n")
        return target

    @classmethod
    def load(cls, root: str | Path, verify_hashes: bool = True) -> Bundle:
        root = Path(root)
        mpath = root / MANIFEST
        if not root.is_dir():
            raise EdgeError(f"bundle {root}: not a directory (expected a bundle written by `edge export`)")
        if not mpath.is_file():
            raise EdgeError(f"bundle {root}: no {MANIFEST} (expected a bundle written by `edge export`)")
        try:
            m = json.loads(mpath.read_text())
        except json.JSONDecodeError as e:
            raise EdgeError(f"bundle {mpath}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(m, dict):
            raise EdgeError(f"bundle {mpath}: expected a JSON object")
        version = m.get("schema_version")
        if version != SCHEMA_VERSION:
            raise EdgeError(f"bundle {mpath}: schema_version {version!r} is not supported "
                            f"(this edge reads version {SCHEMA_VERSION}); re-export the checkpoint")
        try:
            labels = [str(x) for x in m["labels"]]
            pre = Preprocess.from_dict(m["preprocess"])
            clip = ClipSpec.from_dict(m["clip"])
            files = {str(k): {"path": str(v["path"]), "sha256": str(v["sha256"])} for k, v in m["files"].items()}
            name = str(m["name"])
            motion = MotionSpec.from_dict(m["motion"]) if "motion" in m else None
            flow = FlowInput.from_dict(m["flow"]) if "flow" in m else None
        except (KeyError, TypeError, ValueError) as e:
            raise EdgeError(f"bundle {mpath}: malformed manifest ({type(e).__name__}: {e})") from None
        if not labels:
            raise EdgeError(f"bundle {mpath}: 'labels' is empty")
        for role, f in files.items():
            p = root / f["path"]
            if not p.is_file():
                raise EdgeError(f"bundle {root}: file for {role!r} is missing: {p}")
            if verify_hashes and sha256_file(p) != f["sha256"]:
                raise EdgeError(f"bundle {root}: {p.name} does not match its sha256 in the manifest "
                                "(corrupt or modified)")
        known = {"schema_version", "name", "labels", "input", "preprocess", "clip", "files", "motion", "flow"}
        return cls(root=root, name=name, labels=labels, preprocess=pre, clip=clip, files=files, motion=motion,
                   flow=flow, input=dict(m.get("input", {})), extra={k: v for k, v in m.items() if k not in known})
