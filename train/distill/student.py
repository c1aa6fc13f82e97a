"""The Dual-action Stream student: an RGB model trained with Eq. 4, cross-entropy + alpha * (the distillation
terms of ``losses``) against a frozen flow teacher's features at the same levels (docs/distillation.md).

``Distiller`` is the fit loop's objective (``train.engine.fit(objective=...)``): it takes the paired batch
(RGB clips, flow clips) that ``train.data.PairedClips`` gives, runs the student on the RGB clips and the teacher
on the flow clips, and reads both models' features with forward hooks. The student stays an ordinary model:
its checkpoint, export and runtime see RGB only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edge.bundle import sha256_file
from edge.errors import EdgeError
from train.data import ClipDataset, PairedClips
from train.distill.losses import LOSSES, FeatureTap, distill_loss, freeze
from train.engine import Checkpoint, training_loss

# Eq. 4's weight. The paper's is 50 (Sec. 4.2), for a student that starts from Kinetics weights; trained here
# from scratch or from the RGB stream, 50 left the student below plain RGB and 1-5 above it (docs/distillation.md)
PAPER_ALPHA = 50.0
ALPHA = 5.0
_STAGE = re.compile(r"^(.*?)stages\.(\d+)$")


def default_levels(model: nn.Module) -> list[str]:
    """The levels matched by default: each residual stage's output and the pooled features (the penultimate
    layer, MARS's level, last). Not the stem: one convolution of RGB frames cannot compute what one
    convolution of flow fields does, and matching it cost accuracy (docs/distillation.md). Models without
    ``stages``/``pool`` modules (the C3D family, MobileNetV2) need their levels named (``--distill-levels``)."""
    names = dict(model.named_modules())
    stages = sorted((m.group(1), int(m.group(2))) for n in names if (m := _STAGE.match(n)))
    if not stages:
        raise EdgeError(f"--distill-levels: {type(model).__name__} has no residual stages to match by default; "
                        f"name its levels (modules such as {', '.join(list(names)[1:4])})")
    prefix = stages[0][0]
    levels = [f"{p}stages.{i}" for p, i in stages if p == prefix] + [f"{prefix}pool"]
    return [n for n in levels if n in names]


@dataclass(frozen=True)
class DistillConfig:
    """``loss``: one of ``LOSSES`` (``mae+gram`` is the paper's; ``mars`` the MARS baseline); ``alpha``: Eq. 4's
    weight; ``levels``: module names matched in both models (None: ``default_levels``)."""

    loss: str = "mae+gram"
    alpha: float = ALPHA
    levels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise EdgeError(f"--distill-loss {self.loss!r}: expected one of {', '.join(LOSSES)}")
        if not self.alpha >= 0:
            raise EdgeError(f"--alpha {self.alpha}: expected a weight >= 0")


class Distiller:
    """Eq. 4 on a paired batch: ``(model, (rgb, flow), y) -> loss``. The teacher is frozen here and kept out of
    the student's module tree; the student's hooks are attached on the first call (``fit`` builds it)."""

    def __init__(self, teacher: nn.Module, config: DistillConfig, levels: Sequence[str]) -> None:
        self.teacher = freeze(teacher)
        self.config = config
        self.levels = list(levels)
        self.teacher_tap = FeatureTap(teacher, self.levels, getattr(teacher, "num_segments", None))
        self._student: tuple[nn.Module, FeatureTap] | None = None

    def _tap(self, model: nn.Module) -> FeatureTap:
        if self._student is None or self._student[0] is not model:
            if self._student is not None:
                self._student[1].remove()
            self._student = (model, FeatureTap(model, self.levels, getattr(model, "num_segments", None)))
        return self._student[1]

    def features(self, model: nn.Module, rgb: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, list, list]:
        """The student's logits and both models' level features for one paired batch."""
        tap = self._tap(model)
        out = model(rgb)
        with torch.no_grad():
            self.teacher(flow)
        return out, tap.get(), self.teacher_tap.get()

    def __call__(self, model: nn.Module, x: Sequence[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        rgb, flow = x
        out, students, teachers = self.features(model, rgb, flow)
        return training_loss(model, out, y) + self.config.alpha * distill_loss(self.config.loss, students, teachers)

    def check(self, model: nn.Module, rgb: torch.Tensor, flow: torch.Tensor) -> None:
        """One line naming the first level whose student and teacher features differ in shape, before any
        training (a teacher of another width or clip length)."""
        was = model.training
        model.eval()
        with torch.no_grad():
            _, students, teachers = self.features(model, rgb, flow)
        model.train(was)
        for name, s, t in zip(self.levels, students, teachers, strict=True):
            if s.shape != t.shape:
                raise EdgeError(f"--teacher: level {name!r} gives the student {tuple(s.shape)} features and the "
                                f"teacher {tuple(t.shape)}; train both with the same model, --width and --size")


def load_teacher(path: Path, labels: list[str], segments: int) -> Checkpoint:
    """The flow teacher at ``path``, checked against the student's data and clip length."""
    teacher = Checkpoint.load(path)
    kind = teacher.motion.kind if teacher.motion else "RGB"
    if kind != "stacked_flow":
        raise EdgeError(f"--teacher {path}: a flow stream is expected (trained with `edge train --input flow`); "
                        f"it takes {kind} input")
    if teacher.labels != labels:
        raise EdgeError(f"--teacher {path}: its classes {teacher.labels[:3]}... differ from the data's {labels[:3]}...")
    if teacher.clip.num_segments != segments:
        raise EdgeError(f"--teacher {path}: it takes {teacher.clip.num_segments}-frame clips, the student "
                        f"{segments} (--segments)")
    return teacher


def distillation(teacher_path: Path, config: DistillConfig, student: nn.Module, rgb: ClipDataset,
                 labels: list[str], root: Path, progress: bool = True) -> tuple[PairedClips, Distiller, dict[str, Any]]:
    """What ``edge train --distill`` trains on: the RGB training clips paired with the teacher's flow clips
    (its flow, computed once per video and cached like any motion input), the ``Distiller`` objective checked
    on one pair, and the record the student's checkpoint keeps (``train_state["distill"]``)."""
    teacher = load_teacher(teacher_path, labels, rgb.clip.num_segments)
    flow = ClipDataset(rgb.items, teacher.clip, teacher.preprocess, train=False, progress=progress,
                       motion=teacher.motion, root=root)
    pairs = PairedClips(rgb, flow)
    levels = list(config.levels) if config.levels else default_levels(student)
    (x, f), _ = pairs[0]
    try:  # a level named that is not a module of the models
        distiller = Distiller(teacher.build(), config, levels)
        distiller.check(student, x[None], f[None])
    except ValueError as e:
        raise EdgeError(f"--distill-levels: {e}") from None
    record = {"teacher": str(teacher_path), "teacher_sha256": sha256_file(teacher_path), "loss": config.loss,
              "alpha": config.alpha, "levels": levels, "teacher_motion": teacher.motion.to_dict()}
    return pairs, distiller, record
