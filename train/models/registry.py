"""One registry + factory (as timm's create_model), so tests and export loop over every model.

A checkpoint stores ``(name, config)``; ``build_model(name, **config)`` rebuilds it exactly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial

from torch import nn

from train.models.c3d import MODELS as C3D_MODELS
from train.models.caffenet import momp_caffenet
from train.models.mobilenetv2 import MobileNetV2
from train.models.recognizer import SegmentRecognizer
from train.models.res3d import res3d18
from train.models.resnet import resnet18, resnet50
from train.models.tc3d import tc3d_res3d18
from train.models.temporal import MultiScaleTemporalShift, TemporalShift
from train.models.tfdem import TFDEMRecognizer

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


def factory_options(name: str) -> list[str]:
    """The keywords model ``name``'s factory takes."""
    return list(inspect.signature(_REGISTRY[name]).parameters)


def accepts(name: str, key: str) -> bool:
    """Whether model ``name``'s factory takes keyword ``key`` (e.g. "size": only models whose layers depend
    on the input side need it in their checkpoint config)."""
    return key in factory_options(name)


def _segment_model(backbone: str, kind: str, *, num_classes: int, num_segments: int = 8, width: float = 64,
                   fold_div: int = 8, two_unit_div: int = 16, dropout: float = 0.0,
                   inner_widths: Sequence[int] | None = None) -> nn.Module:
    temporal = {
        "tsn": None,
        "tsm": partial(TemporalShift, num_segments, fold_div),
        "mstsm": partial(MultiScaleTemporalShift, num_segments, fold_div, two_unit_div),
    }[kind]
    if backbone == "mobilenetv2":
        net: nn.Module = MobileNetV2(float(width), temporal, inner_widths)
    else:  # ResNet-50's inner_widths: two per bottleneck (train/models/resnet.py)
        net = {"resnet18": resnet18, "resnet50": resnet50}[backbone](int(width), temporal, inner_widths)
    return SegmentRecognizer(net, num_classes, num_segments, dropout)


def _tfdem_model(backbone: str, kind: str, *, num_classes: int, num_segments: int = 8, dropout: float = 0.0,
                 tfdem_width: int = 16, **net_config: object) -> nn.Module:
    """The ``kind`` segment model's backbone (same config) with TFDEM beside it (train/models/tfdem.py)."""
    main = _segment_model(backbone, kind, num_classes=num_classes, num_segments=num_segments, **net_config)
    return TFDEMRecognizer(main.backbone, num_classes, num_segments, dropout, tfdem_width)


for _bb in ("resnet18", "mobilenetv2", "resnet50"):
    for _kind in ("tsn", "tsm", "mstsm"):
        register(f"{_kind}_{_bb}")(partial(_segment_model, _bb, _kind))

# MSTSM + TFDEM (multiscale-tsm-tfdem-pruning.txt, Sec. 3.3): forward returns main + TFDEM logits; train with
# model.training_loss(y), each path on its own scores (train/models/tfdem.py)
for _bb in ("resnet18", "resnet50"):
    register(f"mstsm_tfdem_{_bb}")(partial(_tfdem_model, _bb, "mstsm"))

for _name, _factory in C3D_MODELS.items():
    register(_name)(_factory)

# T-C3D (t-c3d-temporal-encoding-deep-compression.txt): its 3D ResNet-18 alone, and S clips through it, fused
register("res3d18")(res3d18)
register("tc3d_res3d18")(tc3d_res3d18)

# MOMP paper (momp-image-and-correlation-pruning.txt): CaffeNet on one MOMP image per clip (train/models/caffenet.py)
register("momp_caffenet")(momp_caffenet)
