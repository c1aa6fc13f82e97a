"""Residual streams: the channels a ResNet's additions tie together, pruned as one group each.

A stream is every tensor an identity shortcut adds into: ResNet-18's stem output and its first stage (one
stream), each later stage's output from its projection shortcut on. Its channels are produced by several convs
(the stem or the projection, and every block's last conv) and read by the next stage's projection, every
block's first conv *through the temporal shift*, and the classifier. Pruning a stream channel removes it
from all of them at once ("channels tied by an addition are pruned together or not at all"); the criterion
scores a channel on its filters in every producing conv, concatenated (docs/compression.md).

The shift keeps its meaning because each fold is pruned on its own: with C channels TSM moves [0, C//8)
from t+1 and [C//8, 2C//8) from t-1 (MSTSM also copies the next 2(C//16) two frames away), so the kept
channels of each role are chosen within that role, as many as the pruned width C' gives it (C'//8, ...).
Kept in their old order they land in the same roles, and every kept channel moves in time exactly as it did
when it was trained. The next conv's input slots are then those of the same (channel, offset) pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
from torch import nn

from kernels.reference import ShiftSpec, shift_spec
from train.models.recognizer import SegmentRecognizer
from train.models.resnet import BasicBlock, Bottleneck, ResNet
from train.models.temporal import CausalShift, TemporalShift

Shift = tuple[int, int | None, bool]  # (fold_div, two_unit_div, causal) of the shift a reader sees
BN = ("weight", "bias", "running_mean", "running_var")


def conv_bn_tensors(prefix: str) -> list[tuple[str, int]]:
    """A conv + BatchNorm entry's (``prefix.0``, ``prefix.1``) per-output-channel tensors, channels on dim 0."""
    return [(f"{prefix}.0.weight", 0)] + [(f"{prefix}.1.{k}", 0) for k in BN]


@dataclass(frozen=True)
class Stream:
    """One residual stream. ``slots``: its positions in the ResNet's ``stream_widths``; ``producers``: the
    convs whose output filters are its channels; ``produce``: their weights and BatchNorm entries (dim 0);
    ``consume``: weights reading it directly (dim 1); ``shifted``: first convs reading it through ``shift``."""

    name: str
    slots: tuple[int, ...]
    width: int
    producers: tuple[str, ...]
    produce: tuple[tuple[str, int], ...]
    consume: tuple[tuple[str, int], ...]
    shifted: tuple[str, ...]
    shift: Shift | None


def _shift_of(m: nn.Module) -> Shift | None:
    if not isinstance(m, TemporalShift):
        return None
    return (m.fold_div, getattr(m, "two_unit_div", None), isinstance(m, CausalShift))


class _Builder:
    """Collects one stream while the blocks are walked in order."""

    def __init__(self, name: str, slot: int, width: int) -> None:
        self.name, self.slots, self.width = name, [slot], width
        self.producers: list[str] = []
        self.produce: list[tuple[str, int]] = []
        self.consume: list[tuple[str, int]] = []
        self.shifted: list[str] = []
        self.shifts: set[Shift | None] = set()

    def produced_by(self, conv_bn: str) -> None:
        self.producers.append(f"{conv_bn}.0")
        self.produce += conv_bn_tensors(conv_bn)

    def read_by_block(self, name: str, block: BasicBlock | Bottleneck) -> None:
        self.shifted.append(f"{name}.conv1.0.weight")
        self.shifts.add(_shift_of(block.temporal))
        if block.downsample is not None:
            self.consume.append((f"{name}.downsample.0.weight", 1))

    def done(self) -> Stream:
        if len(self.shifts) > 1:
            raise ValueError(f"{self.name}: read through different temporal shifts {sorted(map(str, self.shifts))}")
        return Stream(self.name, tuple(self.slots), self.width, tuple(self.producers), tuple(self.produce),
                      tuple(self.consume), tuple(self.shifted), next(iter(self.shifts), None))


def streams(model: nn.Module) -> list[Stream]:
    """The residual streams of a segment model with a ResNet backbone (TSN / TSM / MSTSM, their online and
    TFDEM variants), stem first. Any other model is a ValueError naming what is supported."""
    net = getattr(model, "backbone", None)
    if not isinstance(model, SegmentRecognizer) or not isinstance(net, ResNet):
        what = type(net if isinstance(model, SegmentRecognizer) else model).__name__
        raise ValueError(f"{what} has no residual streams to prune (only the TSN/TSM/MSTSM ResNet-18/50 models "
                         "have them)")
    out: list[Stream] = []
    cur = _Builder("backbone.stem", 0, net.stream_widths[0])
    cur.produced_by("backbone.stem.0")
    for i, stage in enumerate(net.stages):
        for j, block in enumerate(stage):
            name = f"backbone.stages.{i}.{j}"
            cur.read_by_block(name, block)
            if block.downsample is not None:  # the addition starts a new stream at the projection
                out.append(cur.done())
                cur = _Builder(f"backbone.stages.{i}", i + 1, net.stream_widths[i + 1])
                cur.produced_by(f"{name}.downsample")
            elif j == 0:
                cur.slots.append(i + 1)  # identity shortcut: this stage's output is the same stream
            cur.produced_by(f"{name}.{'conv2' if isinstance(block, BasicBlock) else 'conv3'}")
    cur.consume.append(("fc.weight", 1))
    out.append(cur.done())
    return out


def selected(streams_: list[Stream], layers: tuple[str, ...] | None) -> list[Stream]:
    """The streams a recipe's ``layers`` globs pick: a glob may name the stream or one of its producing convs."""
    return [s for s in streams_ if layers is None or any(
        fnmatchcase(n, p) for n in (s.name, *s.producers) for p in layers)]


def scores(model: nn.Module, stream: Stream, criterion: Callable[[Any], np.ndarray]) -> np.ndarray:
    """``criterion`` on each channel's filters in every producing conv, concatenated into one row."""
    modules = dict(model.named_modules())
    rows = [modules[p].weight.detach().cpu().double().numpy().reshape(stream.width, -1) for p in stream.producers]
    return criterion(np.concatenate(rows, axis=1))


def _spec(width: int, shift: Shift) -> ShiftSpec:
    fold_div, two_unit_div, causal = shift
    return shift_spec(width, fold_div, two_unit_div, causal)


def roles(width: int, shift: Shift | None) -> list[tuple[int, ...]]:
    """Per channel of a ``width``-channel stream, the frame offsets it is read at (``(0,)``: not moved; TSM's
    first fold ``(1,)``; an MSTSM channel copied two frames on, ``(0, 2)``)."""
    if shift is None:
        return [(0,)] * width
    src, off = _spec(width, shift).src_off
    read: list[list[int]] = [[] for _ in range(width)]
    for s, o in zip(src.tolist(), off.tolist(), strict=True):
        read[s].append(o)
    return [tuple(sorted(r)) for r in read]


def keep(scores_: np.ndarray, ratio: float, shift: Shift | None) -> np.ndarray:
    """The kept channels (ascending) of a stream pruned by ``ratio``: the width drops by floor(ratio * n) and
    every role keeps the count the new width gives it, its highest-scoring channels (ties: the lower index
    is dropped, as ``criteria.select_pruned``)."""
    s = np.asarray(scores_, dtype=np.float64).reshape(-1)
    width = s.size
    new = width - min(int(np.floor(ratio * width + 1e-9)), width - 1)
    old_roles, new_roles = roles(width, shift), roles(new, shift)
    kept: list[int] = []
    for role in dict.fromkeys(old_roles):
        members = np.array([c for c, r in enumerate(old_roles) if r == role])
        n = new_roles.count(role)
        order = np.argsort(s[members], kind="stable")  # ascending: the first ones are dropped
        kept += members[order[members.size - n:]].tolist() if n else []
    out = np.sort(np.array(kept, dtype=np.int64))
    if [old_roles[c] for c in out] != new_roles:
        raise ValueError(f"a {width}-channel stream cannot be pruned to {new} channels keeping its shift folds")
    return out


def shifted_inputs(keep_: np.ndarray, width: int, shift: Shift | None) -> np.ndarray:
    """For a conv reading the stream through ``shift``: the old input slot of each of its new input slots,
    the one reading the same kept channel at the same frame offset."""
    if shift is None:
        return keep_
    old, new = _spec(width, shift), _spec(int(keep_.size), shift)
    slot = {(int(s), int(o)): i for i, (s, o) in enumerate(zip(*old.src_off, strict=True))}
    out = []
    for s, o in zip(*new.src_off, strict=True):
        key = (int(keep_[s]), int(o))
        if key not in slot:
            raise ValueError(f"stream channel {key[0]} would be read at frame offset {key[1]:+d}, which it never "
                             "was: the kept channels must keep their shift folds (streams.keep)")
        out.append(slot[key])
    return np.array(out, dtype=np.int64)
