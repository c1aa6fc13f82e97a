"""Fit/evaluate loop and checkpoints.

A checkpoint is ``{"model", "config", "state_dict", "labels", "input"}`` (the contract in ARCHITECTURE.md):
enough to rebuild the model with ``build_model(name, **config)`` and to preprocess its input exactly.
Training state (optimizer, scheduler, epoch, history) rides along so ``--resume`` continues a run.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from edge.atomic import atomic_path, write_text
from edge.bundle import FLOW_INPUT, ClipSpec, FlowInput
from edge.errors import EdgeError
from edge.motion import MotionSpec
from edge.preprocess import Preprocess
from train.models import build_model


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Checkpoint:
    model: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    labels: list[str]
    input: dict[str, Any]
    train_state: dict[str, Any] = field(default_factory=dict)

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess.from_dict(self.input["preprocess"])

    @property
    def clip(self) -> ClipSpec:
        return ClipSpec.from_dict(self.input["clip"])

    @property
    def motion(self) -> MotionSpec | None:
        """The motion input the model was trained on (None: RGB frames)."""
        return MotionSpec.from_dict(self.input["motion"]) if self.input.get("motion") else None

    @property
    def flow(self) -> FlowInput | None:
        """A two-stream model's second input (``train.distill.fusion`` records the flow stream's under
        ``input["flow"]``); None for a one-input model."""
        f = self.input.get("flow")
        return None if f is None else FlowInput(FLOW_INPUT, Preprocess.from_dict(f["preprocess"]),
                                                MotionSpec.from_dict(f["motion"]))

    def build(self) -> nn.Module:
        """Rebuild the model exactly as trained, in eval mode."""
        net = build_model(self.model, **self.config)
        net.load_state_dict(self.state_dict)
        return net.eval()

    def save(self, path: str | Path) -> None:
        payload = {"model": self.model, "config": self.config, "state_dict": self.state_dict,
                   "labels": self.labels, "input": self.input, "train_state": self.train_state}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        """A ``.pt`` checkpoint, or a ``.edgez`` (compressed, train.compress.store) decoded to one."""
        p = Path(path)
        if not p.is_file():
            raise EdgeError(f"checkpoint {p}: no such file")
        if p.suffix == ".edgez":
            from train.compress.store import read_edgez  # the store builds on this module
            return read_edgez(p)
        try:
            d = torch.load(p, map_location="cpu")
            return cls(model=d["model"], config=d["config"], state_dict=d["state_dict"], labels=d["labels"],
                       input=d["input"], train_state=d.get("train_state", {}))
        except Exception as e:  # torch.load/unpickling raise many types on a file that is not a checkpoint
            first = str(e).strip().partition("\n")[0]  # torch's unpickling errors run to many lines
            raise EdgeError(f"checkpoint {p}: not an edge checkpoint ({type(e).__name__}: {first})") from None


def forward(model: nn.Module, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """The model on one batch: a clip tensor, or a two-input model's (RGB clips, flow clips)."""
    return model(*x) if isinstance(x, (list, tuple)) else model(x)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, num_classes: int, progress: bool = False) -> dict[str, Any]:
    """Clip accuracy and a confusion matrix (rows: true label)."""
    model.eval()
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for x, y in tqdm(loader, desc="eval", leave=False, disable=not progress):
        pred = forward(model, x).argmax(1)
        np.add.at(confusion, (y.numpy(), pred.numpy()), 1)
    total = int(confusion.sum())
    return {"accuracy": float(np.trace(confusion) / max(total, 1)), "clips": total,
            "confusion": confusion.tolist()}


@torch.no_grad()
def all_clips_accuracy(model: nn.Module, dataset: Any, progress: bool = False) -> float:
    """T-C3D's "all clips per video" test (Table IV): every clip of each video (``dataset.all_clips``) through
    the model's shared per-clip network (``score_clips``), the clips' scores averaged. Against the S-clip
    accuracy ``evaluate`` gives, it shows what sparse sampling with temporal encoding leaves out."""
    model.eval()
    hits = 0
    for i in tqdm(range(len(dataset)), desc="all clips", leave=False, disable=not progress):
        scores = model.score_clips(dataset.all_clips(i)).mean(0)
        hits += int(scores.argmax().item() == dataset.items[i].label)
    return hits / max(len(dataset), 1)


def training_loss(model: nn.Module, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the model's output, unless the model defines its own loss (TFDEM's Eq. 4 adds its
    branch's cross-entropy: ``training_loss(y)`` on what the forward kept)."""
    own = getattr(model, "training_loss", None)
    return own(y) if own is not None else nn.functional.cross_entropy(out, y)


@dataclass
class FitConfig:
    """``keep_last``: return the last epoch, not the best; a compression fine-tune must, since its last
    epoch is the one that reached the target sparsity."""

    epochs: int = 15
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    workers: int = 0
    keep_last: bool = False


class Constraint(Protocol):
    """What a compression stage keeps true while a model trains (masks, shared weights): ``attach`` once the
    weights are loaded (fresh or resumed, so it must rebuild its state from them), ``before_epoch``
    (0-based) before an epoch's first step, ``after_step`` after each optimizer step."""

    def attach(self, model: nn.Module) -> None: ...

    def before_epoch(self, model: nn.Module, epoch: int) -> None: ...

    def after_step(self, model: nn.Module) -> None: ...


# (model, batch input, labels) -> the loss to minimise; distillation's takes a paired (RGB, flow) input
Objective = Callable[[nn.Module, Any, torch.Tensor], torch.Tensor]


def _supervised(model: nn.Module, x: torch.Tensor | Sequence[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    return training_loss(model, forward(model, x), y)


def warmup_fraction(total_steps: int) -> float:
    """OneCycleLR's warm-up share: 20% of the steps, but at least a step and a half. PyTorch divides by the
    warm-up's length in steps minus one, so 20% of exactly 5 steps (one epoch of 5 batches) divides by zero."""
    return 0.5 if total_steps < 2 else max(0.2, 1.5 / total_steps)


def fit(ckpt: Checkpoint, train_ds: Any, val_ds: Any, out: str | Path, cfg: FitConfig,
        resume: bool = False, progress: bool = True, constraints: Sequence[Constraint] = (),
        objective: Objective = _supervised) -> Checkpoint:
    """Train, validate every epoch, keep ``best.pt`` (by val clip accuracy) and ``last.pt`` in ``out``.

    Starts from ``ckpt.state_dict`` when it has one (fine-tuning), from a fresh initialisation otherwise.
    ``objective`` gives each batch's loss (the model's own, ``training_loss``, by default); validation always
    runs the model on ``val_ds``'s clips.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    model = build_model(ckpt.model, **ckpt.config)
    if ckpt.state_dict:
        model.load_state_dict(ckpt.state_dict)
    opt = torch.optim.AdamW(model.parameters(), weight_decay=cfg.weight_decay)  # lr: set by the schedule
    start, best, history, steps_done = 0, -1.0, [], 0
    if resume:
        if not (out / "last.pt").is_file():
            raise EdgeError(f"--resume: {out / 'last.pt'} does not exist")
        last = Checkpoint.load(out / "last.pt")
        model.load_state_dict(last.state_dict)
        opt.load_state_dict(last.train_state["optimizer"])
        steps_done = last.train_state["scheduler"]["last_epoch"]
        start, best, history = last.train_state["epoch"] + 1, last.train_state["best"], last.train_state["history"]
    for c in constraints:
        c.attach(model)
    # The shuffle draws from torch's global generator, which every epoch re-seeds (below).
    train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.workers,
                              drop_last=len(train_ds) > cfg.batch_size)
    val_loader = DataLoader(val_ds, batch_size=cfg.batch_size, num_workers=cfg.workers)
    # Rebuilt from the step count rather than loaded: resuming with more --epochs stretches the one-cycle
    # schedule over the new total instead of running past its end.
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, epochs=cfg.epochs,
                                                steps_per_epoch=len(train_loader),
                                                pct_start=warmup_fraction(cfg.epochs * len(train_loader)),
                                                last_epoch=steps_done - 1)
    for epoch in range(start, cfg.epochs):
        # Every random draw of an epoch (shuffle, frame offsets, jitter, dropout) is a function of (seed,
        # epoch) alone, so a run resumed after epoch k repeats exactly what the uninterrupted run did.
        seed_everything(cfg.seed + epoch)
        for c in constraints:
            c.before_epoch(model, epoch)
        model.train()
        name = f"{ckpt.model} epoch {epoch + 1}/{cfg.epochs}"
        bar = tqdm(train_loader, desc=name, leave=False, disable=not progress)
        total, n = 0.0, 0
        for x, y in bar:
            loss = objective(model, x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            for c in constraints:
                c.after_step(model)
            total, n = total + loss.item() * len(y), n + len(y)
            bar.set_postfix(loss=f"{total / n:.3f}")
        val = evaluate(model, val_loader, len(ckpt.labels))
        history.append({"epoch": epoch + 1, "train_loss": total / n, "val_accuracy": val["accuracy"]})
        if progress:
            tqdm.write(f"{name}: loss {total / n:.3f}  val clip acc {val['accuracy']:.3f}")
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        improved = val["accuracy"] > best
        best = max(best, val["accuracy"])
        train_state = {**ckpt.train_state, "epoch": epoch, "best": best, "history": history, "optimizer": opt.state_dict(),
                       "scheduler": sched.state_dict(), "fit": cfg.__dict__}
        current = Checkpoint(ckpt.model, ckpt.config, state, ckpt.labels, ckpt.input, train_state)
        current.save(out / "last.pt")
        if improved:
            Checkpoint(ckpt.model, ckpt.config, state, ckpt.labels, ckpt.input,
                       {**ckpt.train_state, "epoch": epoch, "best": best, "history": history,
                        "val": val}).save(out / "best.pt")
    write_text(out / "history.json", json.dumps(history, indent=2) + "\n")
    return Checkpoint.load(out / ("last.pt" if cfg.keep_last else "best.pt"))
