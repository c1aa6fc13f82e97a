"""Model zoo: backbones, temporal modules and the registry (``build_model``)."""

from train.models.registry import build_model, list_models, register

__all__ = ["build_model", "list_models", "register"]
