"""``edge compress``: a recipe's stages run in order on a checkpoint, each fine-tuned and measured.

Every stage writes ``DIR/stages/<i>-<kind>/checkpoint.pt`` (a normal checkpoint: ``edge eval``, ``edge
export`` and ``edge run`` take it) and ``row.json`` (its report row) when it has finished, so ``--resume``
skips finished stages. What a stage made true stays true in every later fine-tune: zeros once anything
pruned (``Masks``), shared values once ``kmeans`` ran (``SharedWeights``). GMACs, sizes and latencies are
measured on the stage's exported ONNX, and the exporter is a package this one may not import: ``measure``
is passed in by the command (export/compress.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from edge.atomic import write_text
from edge.errors import EdgeError
from train.compress import kmeans, masks, qat, surgery
from train.compress.recipe import (
    Dsd,
    FilterPrune,
    Int8,
    KMeans,
    MagnitudePrune,
    Recipe,
    SemiStructured,
    Stage,
    Store,
    check_fc_ratios,
    check_layers,
)
from train.compress.schedule import mask_2_4, progressive_sparsity, two_four_report
from train.compress.store import write_edgez
from train.compress.streams import streams
from train.data import ClipDataset, dataset_from_dir
from train.engine import Checkpoint, Constraint, FitConfig, evaluate, fit

CALIBRATION_BATCHES = 4  # training batches whose largest activations set the int8 scales
FINETUNE_LR = 2e-4  # a tenth of `edge train`'s default: fine-tuning, and DSD's dense phase (Han et al.)
Measure = Callable[[Checkpoint, Path, Stage | None], dict[str, float]]  # -> gflops, size_mb, latency_ms_p50


@dataclass
class Data:
    train: ClipDataset
    test: ClipDataset


def load_data(ckpt: Checkpoint, root: Path) -> Data:
    items, labels = dataset_from_dir(root, "train")
    test_items, _ = dataset_from_dir(root, "test")
    if labels != ckpt.labels:
        raise EdgeError(f"--data {root}: its classes {labels[:3]}... differ from the checkpoint's {ckpt.labels[:3]}...")
    clip = ckpt.clip
    return Data(ClipDataset(items, clip, ckpt.preprocess, train=True, motion=ckpt.motion, root=root),
                ClipDataset(test_items, clip, ckpt.preprocess, train=False, motion=ckpt.motion, root=root))


def row(kind: str, name: str, ckpt: Checkpoint, data: Data, measure: Measure, sdir: Path,
        stage: Stage | None) -> dict[str, Any]:
    model = qat.deployed(ckpt)
    acc = evaluate(model, DataLoader(data.test, batch_size=16), len(ckpt.labels))["accuracy"]
    weights = list(model.parameters())
    return {"stage": name, "kind": kind, "accuracy": round(acc, 4),
            "params": sum(p.numel() for p in weights),
            "params_nonzero": sum(int(torch.count_nonzero(p)) for p in weights), **measure(ckpt, sdir, stage)}


class Runner:
    """Runs one recipe on one checkpoint into ``out``; ``run`` returns the report rows."""

    def __init__(self, recipe: Recipe, ckpt: Checkpoint, data: Data, out: Path, measure: Measure,
                 progress: bool = True) -> None:
        self.recipe, self.ckpt, self.data, self.out, self.measure = recipe, ckpt, data, out, measure
        self.progress = progress
        fit_cfg = ckpt.train_state.get("fit", {})
        self.batch_size, self.seed = int(fit_cfg.get("batch_size", 16)), int(fit_cfg.get("seed", 0))

    def constraints(self, done: list[str], ckpt: Checkpoint) -> list[Constraint]:
        """What earlier stages made true and fine-tuning must keep: masks, shared weights, fake quantization."""
        kept: list[Constraint] = []
        if {"magnitude_prune", "dsd", "semi_structured"} & set(done):
            kept.append(masks.Masks())
        if "kmeans" in done:
            kept.append(kmeans.SharedWeights())
        if "qat" in ckpt.train_state:
            kept.append(qat.FakeQuant(ckpt.train_state["qat"]))
        return kept

    def finetune(self, ckpt: Checkpoint, sdir: Path, epochs: int, lr: float | None,
                 constraints: list[Constraint]) -> Checkpoint:
        if epochs == 0:
            return ckpt
        cfg = FitConfig(epochs=epochs, batch_size=self.batch_size, lr=lr or FINETUNE_LR, seed=self.seed,
                        keep_last=True)
        tuned = fit(ckpt, self.data.train, self.data.test, sdir, cfg, progress=self.progress,
                    constraints=constraints)
        return Checkpoint(tuned.model, tuned.config, tuned.state_dict, tuned.labels, tuned.input,
                          self._carried(tuned))  # a stage's checkpoint is for deployment: no optimizer state

    def run(self, resume: bool = False) -> list[dict[str, Any]]:
        rows = [self._measured(self.ckpt, self.out / "stages" / "0-input", "input", "input", None, resume)]
        ckpt, done = self.ckpt, []
        for i, stage in enumerate(self.recipe.stages, 1):
            sdir = self.out / "stages" / f"{i}-{stage.kind}"
            if resume and (sdir / "row.json").is_file():
                ckpt = Checkpoint.load(sdir / "checkpoint.pt")
                rows.append(json.loads((sdir / "row.json").read_text()))
            else:
                if sdir.exists():  # an interrupted stage: start it over
                    shutil.rmtree(sdir)
                sdir.mkdir(parents=True)
                if self.progress:
                    tqdm.write(f"stage {i}/{len(self.recipe.stages)}: {stage.kind}")
                ckpt = self.stage(stage, ckpt, sdir, done)
                ckpt.save(sdir / "checkpoint.pt")
                rows.append(self._measured(ckpt, sdir, f"{i}-{stage.kind}", stage.kind, stage, False))
            done.append(stage.kind)
        ckpt.save(self.out / "checkpoint.pt")  # the last stage's (written to a temp file, then renamed)
        return rows

    def _measured(self, ckpt: Checkpoint, sdir: Path, name: str, kind: str, stage: Stage | None,
                  resume: bool) -> dict[str, Any]:
        if resume and (sdir / "row.json").is_file():
            return json.loads((sdir / "row.json").read_text())
        sdir.mkdir(parents=True, exist_ok=True)
        r = row(kind, name, ckpt, self.data, self.measure, sdir, stage)
        write_text(sdir / "row.json", json.dumps(r, indent=2) + "\n")
        return r

    def stage(self, stage: Stage, ckpt: Checkpoint, sdir: Path, done: list[str]) -> Checkpoint:
        keep = self.constraints(done, ckpt)
        model = ckpt.build()
        if isinstance(stage, FilterPrune):
            small, config, plans = surgery.filter_prune(model, ckpt.model, ckpt.config, stage.criterion,
                                                        stage.conv_ratio, stage.layers, stage.average_inputs,
                                                        stage.fc_ratio, stage.stream_ratio)
            info = [{"block": p.group.block, "before": p.group.width, "after": int(p.keep.size)}
                    if isinstance(p, surgery.Plan) else
                    {"stream": p.stream.name, "before": p.stream.width, "after": int(p.keep.size)} for p in plans]
            write_text(sdir / "pruned.json", json.dumps(info, indent=2) + "\n")
            return self.finetune(self._with(ckpt, small, config), sdir, stage.finetune_epochs, stage.lr, keep)
        if isinstance(stage, MagnitudePrune):
            conv, fc = (progressive_sparsity(s, stage.step) for s in (stage.conv_sparsity, stage.fc_sparsity))
            target = masks.by_kind(model, stage.conv_sparsity, stage.fc_sparsity)

            def schedule(epoch: int) -> dict[str, float]:
                return masks.by_kind(model, conv[min(epoch, len(conv) - 1)] if conv else 0.0,
                                     fc[min(epoch, len(fc) - 1)] if fc else 0.0)
            tuned = self.finetune(ckpt, sdir, stage.finetune_epochs, stage.lr,
                                  [masks.Masks(schedule), *self._without_masks(keep)])
            model = tuned.build()
            masks.prune_to(model, target)  # fewer epochs than the schedule has steps: the rest at once
            return self._with(tuned, model)
        if isinstance(stage, Dsd):
            sparsity = masks.sparsity(model)
            dense = self.finetune(ckpt, sdir / "dense", stage.epochs, stage.lr, self._without_masks(keep))
            model = dense.build()
            masks.prune_to(model, sparsity)
            return self.finetune(self._with(dense, model), sdir, stage.finetune_epochs, stage.lr, keep)
        if isinstance(stage, SemiStructured):
            layers = self._two_four_layers(model, stage.layers)
            with torch.no_grad():
                for m in layers.values():
                    m.weight.mul_(torch.from_numpy(mask_2_4(m.weight)))
            pruned = self._with(ckpt, model)
            tuned = self.finetune(pruned, sdir, stage.finetune_epochs, stage.lr,
                                  [masks.Masks(), *self._without_masks(keep)])
            report = two_four_report((n, m.weight) for n, (m, _) in masks.targets(tuned.build()).items())
            write_text(sdir / "two_four.json", json.dumps([r._asdict() for r in report], indent=2) + "\n")
            return tuned
        if isinstance(stage, KMeans):
            sizes = kmeans.share(model, stage.conv_bits, stage.fc_bits)
            write_text(sdir / "codebooks.json", json.dumps(sizes, indent=2) + "\n")
            return self.finetune(self._with(ckpt, model), sdir, stage.finetune_epochs, stage.lr,
                                 [kmeans.SharedWeights(), *[c for c in keep if isinstance(c, masks.Masks)]])
        if isinstance(stage, Store):
            report = write_edgez(ckpt, self.out / "model.edgez", stage.conv_index_bits, stage.fc_index_bits)
            write_text(sdir / "store.json", json.dumps(report.to_dict(), indent=2) + "\n")
            return ckpt
        if isinstance(stage, Int8):
            loader = DataLoader(self.data.train, batch_size=self.batch_size)
            scales = qat.calibrate(model, (x for x, _ in islice(loader, CALIBRATION_BATCHES)))
            calibrated = Checkpoint(ckpt.model, ckpt.config, ckpt.state_dict, ckpt.labels, ckpt.input,
                                    {**ckpt.train_state, "qat": scales})
            return self.finetune(calibrated, sdir, stage.finetune_epochs, stage.lr, [qat.FakeQuant(scales), *keep])
        raise AssertionError(stage)

    @staticmethod
    def _without_masks(keep: list[Constraint]) -> list[Constraint]:
        """``keep`` less its Masks: for a stage that installs its own (or, in DSD's dense phase, none)."""
        return [c for c in keep if not isinstance(c, masks.Masks)]

    @staticmethod
    def _two_four_layers(model: nn.Module, globs: tuple[str, ...] | None) -> dict[str, nn.Module]:
        """Conv/Linear layers whose input channels come in groups of 4 (and match ``globs``)."""
        out = {}
        for name, (m, _) in masks.targets(model).items():
            if m.weight.shape[1] % 4 == 0 and (globs is None or any(fnmatchcase(name, g) for g in globs)):
                out[name] = m
        return out

    @staticmethod
    def _with(ckpt: Checkpoint, model: nn.Module, config: dict[str, Any] | None = None) -> Checkpoint:
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return Checkpoint(ckpt.model, config or ckpt.config, state, ckpt.labels, ckpt.input, Runner._carried(ckpt))

    @staticmethod
    def _carried(ckpt: Checkpoint) -> dict[str, Any]:
        """What a stage passes on of the training state: how it was trained, on what, its INT8 scales."""
        return {k: v for k, v in ckpt.train_state.items() if k in ("fit", "data", "qat")}


def prepare(recipe: Recipe, ckpt: Checkpoint) -> None:
    """Checks that need the model, before any work: ``layers`` globs must match module names, a structured
    pruning stage needs a prunable model, a list ``fc_ratio`` one value per hidden FC layer."""
    model = ckpt.build()
    check_layers(recipe, [n for n, _ in model.named_modules()])
    if any(isinstance(s, FilterPrune) for s in recipe.stages):
        try:
            found = surgery.groups(model)
        except ValueError as e:
            raise EdgeError(f"{recipe.source}: filter_prune: {e}") from None
        check_fc_ratios(recipe, sum(g.kind == "fc" for g in found))
    for i, stage in enumerate(recipe.stages, 1):
        if getattr(stage, "stream_ratio", 0.0) > 0:
            try:
                streams(model)
            except ValueError as e:
                raise EdgeError(f"{recipe.source}: stage {i} (filter_prune): stream_ratio: {e}") from None
