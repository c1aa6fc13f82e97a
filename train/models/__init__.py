"""Model zoo: backbones, temporal modules and the registry (``build_model``)."""

from train.models.registry import (
    accepts,
    build_model,
    clip_sampling,
    default_motion,
    factory_options,
    list_models,
    register,
)

__all__ = ["accepts", "build_model", "clip_sampling", "default_motion", "factory_options", "list_models", "register"]
