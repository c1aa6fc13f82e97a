"""Structured pruning with real surgery: a smaller network built from its config, the kept slices copied.

By default a block's internal channels are pruned (docs/compression.md, "Structured pruning, residual
additions and the temporal shift"): a ResNet ``BasicBlock``'s conv1 outputs (its BatchNorm, conv2's inputs), a
``Bottleneck``'s conv1 outputs and, as a second group, its conv2 outputs (conv3's inputs; conv3's outputs
are tied by the addition), and an ``InvertedResidual``'s expanded channels (expand conv, both BatchNorms,
the depthwise conv, the project conv's inputs). No addition and no shift touches them, so residual groups
and shift folds stay as trained. The pruned architecture is ``build_model(name, **config,
inner_widths=[...])``: a normal checkpoint, one width per group in ``groups`` order. With ``stream_ratio`` the
ResNets' residual streams are pruned too, each as one tied group (``train.compress.streams``), and the config
gains ``stream_widths``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import torch
from torch import nn

from train.compress import streams as tied
from train.compress.criteria import CRITERIA, select_pruned
from train.models import build_model
from train.models.c3d import Clip3DNet
from train.models.caffenet import CaffeNet
from train.models.conv3d import MicroNet
from train.models.mobilenetv2 import InvertedResidual
from train.models.res3d import BasicBlock3d
from train.models.resnet import BasicBlock, Bottleneck


@dataclass(frozen=True)
class Group:
    """One group of a block's internal channels (a ``Bottleneck`` has two, the other blocks one; ``producer``
    names it uniquely). ``produce``: tensors whose ``dim`` indexes the channels (their values are per
    channel: averaged on a merge); ``consume``: the next conv's input slices (summed)."""

    block: str
    producer: str  # module name of the conv whose filters are scored
    width: int
    produce: tuple[tuple[str, int], ...]
    consume: tuple[tuple[str, int], ...]
    prunable: bool = True
    kind: str = "conv"  # "fc": hidden FC neurons (a recipe's fc_ratio)
    consume_block: int = 1  # consumer inputs per channel: a flattened conv output feeds an FC P inputs each


def _conv_pair(name: str, m: nn.Module, conv: str, nxt: str) -> Group:
    """``conv``'s output channels (conv + BN), consumed by the conv ``nxt``."""
    return Group(name, f"{name}.{conv}.0", getattr(m, conv)[0].out_channels, tuple(tied.conv_bn_tensors(f"{name}.{conv}")),
                 ((f"{name}.{nxt}.0.weight", 1),))


def _basic_block(name: str, m: BasicBlock) -> list[Group]:
    return [_conv_pair(name, m, "conv1", "conv2")]


def _bottleneck(name: str, m: Bottleneck) -> list[Group]:
    return [_conv_pair(name, m, "conv1", "conv2"), _conv_pair(name, m, "conv2", "conv3")]


def _inverted_residual(name: str, m: InvertedResidual) -> list[Group]:
    # [expand conv-BN-ReLU6,] depthwise conv-BN-ReLU6, project conv, BN; without expansion the depthwise
    # conv runs on the block input, so there is nothing of the block's own to prune
    expands = len(m.conv) == 4
    dw = int(expands)
    produce = (tied.conv_bn_tensors(f"{name}.conv.0") if expands else []) + tied.conv_bn_tensors(f"{name}.conv.{dw}")
    return [Group(name, f"{name}.conv.0.0", m.conv[dw][0].out_channels, tuple(produce),
                  ((f"{name}.conv.{dw + 1}.weight", 1),), prunable=expands)]


_BLOCKS = {BasicBlock: _basic_block, Bottleneck: _bottleneck, InvertedResidual: _inverted_residual,
           BasicBlock3d: _basic_block}


def _conv_norm(seq: str, m: nn.Sequential) -> tuple[tuple[str, int], ...]:
    """A conv (+ BatchNorm) + ReLU entry's per-channel tensors: weight, bias if any, the BatchNorm's."""
    conv = m[0]
    if conv.groups != 1:
        raise ValueError(f"structured pruning: {seq}.0 is a grouped conv (groups={conv.groups}); build the model "
                         "with groups=1 to prune it")
    out = [(f"{seq}.0.weight", 0)] + ([(f"{seq}.0.bias", 0)] if conv.bias is not None else [])
    if isinstance(m[1], nn.BatchNorm2d | nn.BatchNorm3d):
        out += [(f"{seq}.1.{k}", 0) for k in tied.BN]
    return tuple(out)


def _first_conv(name: str, m: nn.Sequential) -> str:
    """The weight reading the input of a conv + ReLU entry (``name.0``) or of a run of them (``name.0.0``)."""
    return f"{name}.0.weight" if isinstance(m[0], nn.Conv2d | nn.Conv3d) else f"{name}.0.0.weight"


def _run_internals(name: str, m: nn.Sequential) -> list[tuple[str, tuple, list[str]]]:
    """A run of conv + ReLU entries (an asymmetric cascade, MicroNet-M1's two 3x3x3): each conv's outputs but
    the last feed only the next conv. A single conv + ReLU entry has none."""
    if isinstance(m[0], nn.Conv2d | nn.Conv3d):
        return []
    seqs = [f"{name}.{i}" for i in range(len(m))]
    return [(f"{a}.0", _conv_norm(a, m[i]), [f"{b}.0.weight"])
            for i, (a, b) in enumerate(zip(seqs[:-1], seqs[1:], strict=True))]


def _chain_unit(name: str, m: nn.Module) -> tuple[list[str], list[tuple[str, tuple, list[str]]], tuple | None]:
    """One parameterised entry of a chain's ``features``: (the conv weights reading its input, its internal
    (conv, produced tensors, readers) triples, the tensors producing its output or None when that output is
    not prunable)."""
    if isinstance(m, MicroNet):  # the concatenated output stays whole; each column's 1x1x1 reduction and
        internal = []  # the convs inside its column are pruned
        for col in ("middle", "left"):
            seq = getattr(m, col)
            reduce = f"{name}.{col}.0"
            internal.append((f"{reduce}.0", _conv_norm(reduce, seq[0]), [_first_conv(f"{name}.{col}.1", seq[1])]))
            internal += _run_internals(f"{name}.{col}.1", seq[1])
        return [f"{name}.linear.0.weight", f"{name}.middle.0.0.weight", f"{name}.left.0.0.weight",
                f"{name}.pool.1.0.weight"], internal, None
    if isinstance(m[0], nn.Conv2d | nn.Conv3d):  # conv (+ BatchNorm) + ReLU
        return [f"{name}.0.weight"], [], _conv_norm(name, m)
    return [_first_conv(name, m)], _run_internals(name, m), _conv_norm(f"{name}.{len(m) - 1}", m[-1])


def _chain_groups(model: Clip3DNet | CaffeNet) -> list[Group]:
    """A plain chain (no additions): every conv's outputs are read only by the next layer's convs, the last
    conv's by fc6 (``consume_block`` inputs per channel), each hidden FC's by the next FC; the classifier's
    outputs are never pruned. In build order, which the models' ``inner_widths`` follow."""
    units = [(f"features.{i}", m) for i, m in enumerate(model.features) if any(True for _ in m.parameters())]
    fcs = [f"head.{i}" for i, m in enumerate(model.head) if isinstance(m, nn.Linear)]
    modules = dict(model.named_modules())
    out: list[Group] = []
    for k, (name, m) in enumerate(units):
        _, internal, produce = _chain_unit(name, m)
        for conv, tensors, readers in internal:
            out.append(Group(name, conv, modules[conv].out_channels, tensors, tuple((r, 1) for r in readers)))
        if produce is not None:
            producer = produce[0][0].removesuffix(".weight")
            width = modules[producer].out_channels
            readers, block = ((_chain_unit(*units[k + 1])[0], 1) if k + 1 < len(units)
                              else ([f"{fcs[0]}.weight"], modules[fcs[0]].in_features // width))
            out.append(Group(name, producer, width, produce, tuple((r, 1) for r in readers), consume_block=block))
    for fc, nxt in zip(fcs[:-1], fcs[1:], strict=True):
        out.append(Group(fc, fc, modules[fc].out_features, ((f"{fc}.weight", 0), (f"{fc}.bias", 0)),
                         ((f"{nxt}.weight", 1),), kind="fc"))
    return out


def groups(model: nn.Module) -> list[Group]:
    """Every prunable channel group, in ``inner_widths`` order: a chain model's convs and hidden FCs, or each
    block's inner channel groups (unprunable ones included)."""
    if isinstance(model, Clip3DNet | CaffeNet):
        return _chain_groups(model)
    return [g for name, m in model.named_modules() if type(m) in _BLOCKS for g in _BLOCKS[type(m)](name, m)]


def selected(groups_: list[Group], layers: tuple[str, ...] | None) -> list[Group]:
    """The prunable groups a recipe's ``layers`` globs pick: a glob may name the block or its scored conv."""
    return [g for g in groups_ if g.prunable and (layers is None or any(
        fnmatchcase(g.block, p) or fnmatchcase(g.producer, p) for p in layers))]


@dataclass(frozen=True)
class Plan:
    """Channels of one group after pruning: ``keep`` (ascending); ``merged`` (the channels averaged into
    ``keep``'s entry at ``merged[0]``, MSTSM Sec. 3.5.3) or empty."""

    group: Group
    keep: np.ndarray
    merged: np.ndarray


def plan(group: Group, scores: np.ndarray, ratio: float, average_inputs: bool = False) -> Plan:
    """Drop the floor(ratio * n) lowest scores; with ``average_inputs`` the one after them joins them and
    all of them become one averaged channel, so the width ends the same either way."""
    pruned = select_pruned(scores, ratio)
    if average_inputs and pruned.size:
        order = np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")
        merged = np.sort(order[: pruned.size + 1])
        drop = merged[1:]
    else:
        merged, drop = np.zeros(0, dtype=np.int64), pruned
    keep = np.setdiff1d(np.arange(group.width), drop)
    return Plan(group, keep, merged)


@dataclass(frozen=True)
class StreamPlan:
    """Channels of one residual stream after pruning: ``keep`` (ascending)."""

    stream: tied.Stream
    keep: np.ndarray


@dataclass(frozen=True)
class _Cut:
    """One dim of one tensor cut down to ``keep`` (``merged``: averaged or summed into one kept entry)."""

    dim: int
    keep: np.ndarray
    merged: np.ndarray
    reduce: str = "mean"
    block: int = 1


_NONE = np.zeros(0, dtype=np.int64)


def _sliced(t: torch.Tensor, c: _Cut) -> torch.Tensor:
    dim = c.dim
    if c.block > 1:  # ``dim`` holds ``block`` consecutive entries per channel: cut them as one
        shape = t.shape
        split = t.reshape(*shape[:dim], shape[dim] // c.block, c.block, *shape[dim + 1:])
        cut = _sliced(split, _Cut(dim, c.keep, c.merged, c.reduce))
        return cut.reshape(*shape[:dim], cut.shape[dim] * c.block, *shape[dim + 1:])
    out = t.index_select(dim, torch.as_tensor(c.keep))
    if c.merged.size:
        parts = t.index_select(dim, torch.as_tensor(c.merged))
        value = parts.mean(dim, keepdim=True) if c.reduce == "mean" else parts.sum(dim, keepdim=True)
        at = int(np.searchsorted(c.keep, c.merged[0]))
        out.narrow(dim, at, 1).copy_(value)
    return out


def _stream_cuts(p: StreamPlan) -> list[tuple[str, _Cut]]:
    s = p.stream
    inputs = tied.shifted_inputs(p.keep, s.width, s.shift)
    return ([(k, _Cut(d, p.keep, _NONE)) for k, d in (*s.produce, *s.consume)]
            + [(k, _Cut(1, inputs, _NONE)) for k in s.shifted])


def apply(model: nn.Module, name: str, config: dict[str, Any], plans: list[Plan],
          stream_plans: Sequence[StreamPlan] = ()) -> tuple[nn.Module, dict]:
    """Build the smaller model and copy every tensor, slicing those the plans touch. Returns (model, config)."""
    widths = {g.producer: g.width for g in groups(model)}
    cuts: dict[str, list[_Cut]] = {}  # a Bottleneck's conv2 is cut on both dims, a block's conv1 too
    for p in plans:
        widths[p.group.producer] = int(p.keep.size)
        for k, d in p.group.produce:
            cuts.setdefault(k, []).append(_Cut(d, p.keep, p.merged))
        for k, d in p.group.consume:
            cuts.setdefault(k, []).append(_Cut(d, p.keep, p.merged, "sum", p.group.consume_block))
    new_config = {**config, "inner_widths": list(widths.values())}
    if stream_plans:
        stream_widths = list(model.backbone.stream_widths)
        for sp in stream_plans:
            for slot in sp.stream.slots:
                stream_widths[slot] = int(sp.keep.size)
            for k, c in _stream_cuts(sp):
                cuts.setdefault(k, []).append(c)
        new_config["stream_widths"] = stream_widths
    small = build_model(name, **new_config)
    old = model.state_dict()
    state = {}
    for key, target in small.state_dict().items():
        t = old[key]
        for c in cuts.get(key, ()):  # slices of different dims commute (linear, per dim)
            t = _sliced(t, c)
        if t.shape != target.shape:
            raise RuntimeError(f"surgery: {key} is {tuple(t.shape)} after slicing, the pruned model wants "
                               f"{tuple(target.shape)}")
        state[key] = t.clone()
    small.load_state_dict(state)
    return small.train(model.training), new_config


def filter_prune(model: nn.Module, name: str, config: dict[str, Any], criterion: str, ratio: float,
                 layers: tuple[str, ...] | None = None, average_inputs: bool = False,
                 fc_ratio: float | Sequence[float] | None = None,
                 stream_ratio: float = 0.0) -> tuple[nn.Module, dict, list[Plan | StreamPlan]]:
    """Score each selected group's filters with ``criterion``, prune ``ratio`` of them and ``fc_ratio`` of a
    hidden FC's neurons (default ``ratio``; a sequence: one per hidden FC in order, as MOMP's Table II
    prunes FC1 and FC2 at their own ratios), and ``stream_ratio`` of each selected residual stream's
    channels, rebuild. The plans returned: the groups', then the streams'."""
    modules = dict(model.named_modules())
    all_groups = groups(model)
    fcs = [g.producer for g in all_groups if g.kind == "fc"]
    if fc_ratio is None or not isinstance(fc_ratio, Sequence):
        fc_ratio = [ratio if fc_ratio is None else fc_ratio] * len(fcs)
    if len(fc_ratio) != len(fcs):
        raise ValueError(f"fc_ratio: {len(fc_ratio)} values, the model has {len(fcs)} hidden FC layers")
    ratios = dict(zip(fcs, fc_ratio, strict=True))
    plans = [plan(g, CRITERIA[criterion](modules[g.producer].weight), ratios.get(g.producer, ratio), average_inputs)
             for g in selected(all_groups, layers)]
    stream_plans = [StreamPlan(s, tied.keep(tied.scores(model, s, CRITERIA[criterion]), stream_ratio, s.shift))
                    for s in (tied.selected(tied.streams(model), layers) if stream_ratio > 0 else [])]
    small, new_config = apply(model, name, config, plans, stream_plans)
    return small, new_config, [*plans, *stream_plans]
