"""One registry + factory (as timm's create_model), so tests and export loop over every model.

A checkpoint stores ``(name, config)``; ``build_model(name, **config)`` rebuilds it exactly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from torch import nn

from edge.errors import EdgeError
from train.models.c3d import MODELS as C3D_MODELS
from train.models.caffenet import momp_caffenet
from train.models.mobilenetv2 import MobileNetV2
from train.models.recognizer import SegmentRecognizer
from train.models.res3d import res3d18
from train.models.resnet import resnet18, resnet50
from train.models.tc3d import tc3d_res3d18
from train.models.temporal import CausalMultiScaleShift, CausalShift, MultiScaleTemporalShift, TemporalShift
from train.models.tfdem import TFDEMRecognizer
from train.models.two_stream import two_stream

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
# models fed runs of frames rather than TSN segments -> the step between a run's frames (edge.bundle.ClipSpec)
_CLIP_STEP: dict[str, int] = {}
# models whose paper feeds them a motion input (edge.motion.MotionSpec kind) rather than RGB frames
_MOTION: dict[str, str] = {}
# models composed of trained checkpoints (two_stream): rebuilt from their config, not trained by --model
_COMPOSED: set[str] = set()


def register(name: str, clip_step: int | None = None, motion: str | None = None,
             composed: bool = False) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """``clip_step``: the model takes runs of frames that far apart (``clips`` sampling), not TSN segments;
    ``motion``: by default it classifies that motion input (``edge.motion.KINDS``), not RGB frames;
    ``composed``: built from trained models' configs (``build_model`` only, not in ``list_models``)."""
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = fn
        if clip_step is not None:
            _CLIP_STEP[name] = clip_step
        if motion is not None:
            _MOTION[name] = motion
        if composed:
            _COMPOSED.add(name)
        return fn
    return deco


def default_motion(name: str) -> str | None:
    """The motion input model ``name``'s paper feeds it (None: RGB frames)."""
    return _MOTION.get(name)


def clip_sampling(name: str, config: Mapping[str, Any], clip_step: int | None = None) -> dict[str, Any]:
    """``ClipSpec`` keywords saying how model ``name`` (built with ``config``) is fed frames: TSN segments,
    or ``num_clips`` runs of frames ``clip_step`` apart (its factory's ``num_clips``, 1 if it has none; the
    registered step unless ``clip_step`` is given)."""
    if name not in _CLIP_STEP:
        if clip_step is not None:
            raise EdgeError(f"--clip-step: {name} is fed TSN segments, not clips of frames")
        return {"sampling": "segments"}
    params = inspect.signature(_REGISTRY[name]).parameters
    default = params["num_clips"].default if "num_clips" in params else 1
    step = _CLIP_STEP[name] if clip_step is None else clip_step
    return {"sampling": "clips", "num_clips": int(config.get("num_clips", default)), "clip_step": step}


def list_models() -> list[str]:
    """The models ``edge train --model`` trains."""
    return sorted(set(_REGISTRY) - _COMPOSED)


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


def _segment_model(backbone: str, kind: str, *, num_classes: int, num_segments: int = 8, width: float | None = None,
                   fold_div: int = 8, two_unit_div: int = 16, dropout: float = 0.0,
                   inner_widths: Sequence[int] | None = None, in_channels: int = 3,
                   stream_widths: Sequence[int] | None = None) -> nn.Module:
    temporal = {
        "tsn": None,
        "tsm": partial(TemporalShift, num_segments, fold_div),
        "mstsm": partial(MultiScaleTemporalShift, num_segments, fold_div, two_unit_div),
        "tsm_online": partial(CausalShift, num_segments, fold_div),
        "mstsm_online": partial(CausalMultiScaleShift, num_segments, fold_div, two_unit_div),
    }[kind]
    # width: MobileNetV2's channel multiplier (paper: 1.0), a ResNet's stem channels (paper: 64)
    if backbone == "mobilenetv2":
        if stream_widths is not None:
            raise ValueError("stream_widths: only the ResNet backbones have residual streams to set")
        net: nn.Module = MobileNetV2(1.0 if width is None else float(width), temporal, inner_widths, in_channels)
    else:  # ResNet-50's inner_widths: two per bottleneck (train/models/resnet.py)
        net = {"resnet18": resnet18, "resnet50": resnet50}[backbone](64 if width is None else int(width), temporal,
                                                                    inner_widths, in_channels, stream_widths)
    return SegmentRecognizer(net, num_classes, num_segments, dropout)


def _tfdem_model(backbone: str, kind: str, *, num_classes: int, num_segments: int = 8, dropout: float = 0.0,
                 tfdem_width: int = 16, **net_config: object) -> nn.Module:
    """The ``kind`` segment model's backbone (same config) with TFDEM beside it (train/models/tfdem.py)."""
    main = _segment_model(backbone, kind, num_classes=num_classes, num_segments=num_segments, **net_config)
    return TFDEMRecognizer(main.backbone, num_classes, num_segments, dropout, tfdem_width)


# *_online_*: the causal (uni-directional) shift of the TSM paper's online model, trained on clips like the
# others; `edge export --online` adds its per-frame model (train/models/online.py)
for _bb in ("resnet18", "mobilenetv2", "resnet50"):
    for _kind in ("tsn", "tsm", "mstsm", "tsm_online", "mstsm_online"):
        register(f"{_kind}_{_bb}")(partial(_segment_model, _bb, _kind))

# MSTSM + TFDEM (multiscale-tsm-tfdem-pruning.txt, Sec. 3.3): forward returns main + TFDEM logits; train with
# model.training_loss(y), each path on its own scores (train/models/tfdem.py)
for _bb in ("resnet18", "resnet50"):
    register(f"mstsm_tfdem_{_bb}")(partial(_tfdem_model, _bb, "mstsm"))

# asymmetric-3d-cnn-micronets.txt, Sec. 4.1: clips of 16 consecutive frames
for _name, _factory in C3D_MODELS.items():
    register(_name, clip_step=1)(_factory)

# T-C3D (t-c3d-temporal-encoding-deep-compression.txt): its 3D ResNet-18 alone, and S clips through it, fused;
# Sec. III-C: each clip's frames o = 2 apart
register("res3d18", clip_step=2)(res3d18)
register("tc3d_res3d18", clip_step=2)(tc3d_res3d18)

# MOMP paper (momp-image-and-correlation-pruning.txt): CaffeNet on one MOMP image per clip (train/models/caffenet.py)
register("momp_caffenet", motion="momp")(momp_caffenet)

# dual-action-stream-distillation.txt, Sec. 3.4: an RGB and a flow stream, frozen, and their score fusion
register("two_stream", composed=True)(two_stream)
