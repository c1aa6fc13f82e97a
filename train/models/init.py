"""Weight initialisation shared by the networks without BatchNorm in every layer (C3D family, CaffeNet)."""

from __future__ import annotations

from torch import nn


def he_init(model: nn.Module) -> None:
    """He et al.'s initialisation (normal, fan-in, ReLU gain) of every conv and linear layer's weights; the
    biases keep PyTorch's small uniform init (all-zero ones would be stored once by onnxsim in an untrained
    export, so its parameter count would not be the model's).

    Under PyTorch's default (kaiming_uniform with a = sqrt(5): a weight variance of 1 / (3 fan_in)) each
    ReLU layer shrinks the signal's variance about 6-fold; without BatchNorm to undo it, c3d-b8's ten weight
    layers started so close to zero that it never left chance on the synthetic set. He's 2 / fan_in keeps
    the variance (docs/models.md)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
