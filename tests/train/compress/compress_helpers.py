"""A tiny recognizer, a random clip set and a fine-tune: what the compression stages' tests train on.

The clips are random tensors, not decoded videos: these tests are about what a stage keeps true through
training (masks, shared weights), which the data pipeline does not touch (tests/train covers that).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from train.engine import Checkpoint, Constraint, FitConfig, fit
from train.models import build_model

CONFIG = {"num_classes": 3, "num_segments": 2, "width": 4}


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("tsm_resnet18", **CONFIG)


def clips(n: int = 12, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 2, 3, 16, 16, generator=g), torch.arange(n) % 3)


def checkpoint(model: nn.Module) -> Checkpoint:
    return Checkpoint("tsm_resnet18", dict(CONFIG), {k: v.clone() for k, v in model.state_dict().items()},
                      ["a", "b", "c"], {"preprocess": {}, "clip": {}})


def finetune(model: nn.Module, out: Path, constraints: list[Constraint], epochs: int = 2) -> nn.Module:
    """``epochs`` of fine-tuning from ``model``'s weights; returns the last epoch's model."""
    cfg = FitConfig(epochs=epochs, batch_size=4, lr=1e-2, keep_last=True)
    ds = clips()
    return fit(checkpoint(model), ds, ds, out, cfg, progress=False, constraints=constraints).build()
