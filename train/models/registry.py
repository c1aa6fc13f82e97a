"""One registry + factory (as timm's create_model), so tests and export loop over every model.

A checkpoint stores ``(name, config)``; ``build_model(name, **config)`` rebuilds it exactly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial

from torch import nn

from train.models.c3d import MODELS as C3D_MODELS
from train.models.mobilenetv2 import MobileNetV2
from train.models.recognizer import SegmentRecognizer
from train.models.resnet import resnet18
from train.models.temporal import MultiScaleTemporalShift, TemporalShift

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn
    return deco


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def build_model(name: str, **config: object) -> nn.Module:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name](**config)


def accepts(name: str, key: str) -> bool:
    """Whether model ``name``'s factory takes keyword ``key`` (e.g. "size": only models whose layers depend
    on the input side need it in their checkpoint config)."""
    return key in inspect.signature(_REGISTRY[name]).parameters


def _segment_model(backbone: str, kind: str, *, num_classes: int, num_segments: int = 8, width: float = 64,
                   fold_div: int = 8, two_unit_div: int = 16, dropout: float = 0.0,
                   inner_widths: Sequence[int] | None = None) -> nn.Module:
    temporal = {
        "tsn": None,
        "tsm": partial(TemporalShift, num_segments, fold_div),
        "mstsm": partial(MultiScaleTemporalShift, num_segments, fold_div, two_unit_div),
    }[kind]
    if backbone == "resnet18":
        net: nn.Module = resnet18(int(width), temporal, inner_widths)
    else:
        net = MobileNetV2(float(width), temporal, inner_widths)
    return SegmentRecognizer(net, num_classes, num_segments, dropout)


for _bb in ("resnet18", "mobilenetv2"):
    for _kind in ("tsn", "tsm", "mstsm"):
        register(f"{_kind}_{_bb}")(partial(_segment_model, _bb, _kind))

for _name, _factory in C3D_MODELS.items():
    register(_name)(_factory)
