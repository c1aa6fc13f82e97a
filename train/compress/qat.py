"""INT8 quantization-aware training with fake quantization, exported as Q/DQ ONNX (export/qdq.py).

Every Conv/Linear sees its input fake-quantized per tensor and its weight per output channel, both
symmetric int8 (zero point 0, scale = max|x| / 127): TensorRT's explicit-quantization scheme, which ONNX
Runtime runs too. The fake quantization is torch's own (``torch.fake_quantize_per_*_affine``: the
straight-through gradient and the ONNX QuantizeLinear/DequantizeLinear export come with it). Activation
scales are calibrated once (max |input| over a few training batches) and then fixed; weight scales follow
the weights while they train and are frozen for export. Modules keep their class and parameters, so the
state_dict stays a normal checkpoint's; the activation scales ride in ``train_state["qat"]``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from train.compress.masks import targets
from train.engine import Checkpoint

QMIN, QMAX = -128, 127  # the range ONNX's QuantizeLinear has; scales use 127, so -128 is never reached


def weight_scales(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric scale; an all-zero channel gets 1 (any scale represents it)."""
    amax = w.detach().abs().reshape(w.shape[0], -1).amax(dim=1)
    return torch.where(amax > 0, amax / 127, torch.ones_like(amax))


def fake_weight(w: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w, scales.to(w.device), zero, 0, QMIN, QMAX)


def fake_input(x: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.fake_quantize_per_tensor_affine(x, scale, 0, QMIN, QMAX)


def norms(model: nn.Module) -> dict[str, nn.Module]:
    """The BatchNorms whose outputs are quantized too: a Conv's output once the export folds its BN in,
    which ONNX Runtime needs quantized to fuse DequantizeLinear -> Conv -> QuantizeLinear into one INT8
    convolution (TensorRT fuses either way)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d)}


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, float]:
    """Max |x| / 127 over ``batches`` (eval mode) of each target layer's input and each BatchNorm's output
    (keyed by module name)."""
    amax: dict[str, float] = {}
    hooks = []

    def seen(name: str, x: torch.Tensor) -> None:
        amax[name] = max(amax.get(name, 0.0), float(x.detach().abs().max()))

    for name, (m, _) in targets(model).items():
        hooks.append(m.register_forward_pre_hook(lambda _m, args, name=name: seen(name, args[0])))
    for name, m in norms(model).items():
        hooks.append(m.register_forward_hook(lambda _m, _a, out, name=name: seen(name, out)))
    model.eval()
    for x in batches:
        model(x)
    for h in hooks:
        h.remove()
    return {n: (a / 127 if a > 0 else 1.0) for n, a in amax.items()}


class FakeQuant:
    """Makes every target layer compute with fake-quantized input and weight (a ``train.engine.Constraint``,
    also used as is for evaluation and export). ``freeze()`` fixes the weight scales at their current
    values, so an export writes them as constants."""

    def __init__(self, act_scales: dict[str, float]) -> None:
        self.act_scales = act_scales
        self.frozen: dict[str, torch.Tensor] = {}

    def attach(self, model: nn.Module) -> None:
        for name, (m, kind) in targets(model).items():
            m.forward = self._forward(name, m, kind)  # an instance attribute: the class and state_dict stay
        for name, m in norms(model).items():
            m.register_forward_hook(lambda _m, _a, out, scale=self.act_scales[name]: fake_input(out, scale))

    def _forward(self, name: str, m: nn.Module, kind: str):  # noqa: ANN202 - a bound forward
        scale = self.act_scales[name]

        def forward(x: torch.Tensor) -> torch.Tensor:
            scales = self.frozen.get(name)  # frozen for evaluation/export; training follows the weights
            w = fake_weight(m.weight, weight_scales(m.weight) if scales is None else scales)
            x = fake_input(x, scale)
            return F.linear(x, w, m.bias) if kind == "fc" else m._conv_forward(x, w, m.bias)
        return forward

    def freeze(self, model: nn.Module) -> None:
        self.frozen = {n: weight_scales(m.weight) for n, (m, _) in targets(model).items()}

    def after_step(self, model: nn.Module) -> None:
        pass

    def before_epoch(self, model: nn.Module, epoch: int) -> None:
        pass


def quantized(model: nn.Module, act_scales: dict[str, float]) -> nn.Module:
    """``model`` computing as its INT8 deployment will (weight scales frozen): for evaluation and export."""
    fq = FakeQuant(act_scales)
    fq.attach(model)
    fq.freeze(model)
    return model


def deployed(ckpt: Checkpoint) -> nn.Module:
    """A checkpoint's model as it will run: fake-quantized when it was trained for INT8 (its scales ride in
    ``train_state["qat"]``), as is otherwise. What evaluation and the Q/DQ export use."""
    model = ckpt.build()
    return quantized(model, ckpt.train_state["qat"]) if "qat" in ckpt.train_state else model
