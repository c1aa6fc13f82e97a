"""Structured pruning of the chain models (C3D, the asymmetric variants, MicroNet nets, MOMP's CaffeNet) with
their hidden FC layers, and the 3D ResNet blocks of res3d18 / T-C3D. The pruned model computes what the big one
with the dropped filters zeroed did, rebuilds from its config, and exports with ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from export.onnx import export_onnx, max_abs_diff
from train.compress import surgery
from train.compress.criteria import CRITERIA
from train.models import build_model

CHAINS = ["c3d_b5", "c3d_b8", "b5_asyconv345", "b8_asyconv5", "b5_m1", "b5_m2", "b5_m4", "asym3d"]
CONFIGS = {**{n: {"num_classes": 5, "num_segments": 8, "width": 8, "size": 32} for n in CHAINS},
           "momp_caffenet": {"num_classes": 5, "num_segments": 1, "width": 16, "size": 67, "norm": "bn", "groups": 1},
           "res3d18": {"num_classes": 5, "num_segments": 4, "width": 8},
           "tc3d_res3d18": {"num_classes": 5, "num_clips": 2, "clip_len": 4, "width": 8, "aggregation": "attention"}}


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    m = build_model(name, **CONFIGS[name])
    for mod in m.modules():  # biases that keep a pruned channel alive after its ReLU, were it not zeroed
        if isinstance(mod, nn.Conv2d | nn.Conv3d | nn.Linear) and mod.bias is not None:
            nn.init.uniform_(mod.bias, 0.0, 0.2)
        if isinstance(mod, nn.BatchNorm2d | nn.BatchNorm3d):
            nn.init.uniform_(mod.weight, 0.5, 1.5)
            nn.init.uniform_(mod.bias, -0.5, 0.5)
            mod.momentum = None
    with torch.no_grad():
        m.train()(_clip(name, seed=5))
    return m.eval()


def _clip(name: str, seed: int = 1) -> torch.Tensor:
    if name == "momp_caffenet":
        return torch.randn(2, 1, 3, 67, 67, generator=torch.Generator().manual_seed(seed))
    t = 8 if name in CHAINS or name == "tc3d_res3d18" else 4
    size = 32 if name in CHAINS else 16
    return torch.randn(2, t, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _zero_dropped(model: nn.Module, plans: list[surgery.Plan]) -> None:
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    with torch.no_grad():
        for p in plans:
            drop = torch.as_tensor(np.setdiff1d(np.arange(p.group.width), p.keep))
            for key, dim in p.group.produce:
                if key in tensors and not key.endswith(("running_mean", "running_var")):
                    tensors[key].index_fill_(dim, drop, 0.0)


@pytest.mark.parametrize("name", [*CHAINS, "momp_caffenet", "res3d18", "tc3d_res3d18"])
def test_pruning_zeroed_filters_leaves_the_output_unchanged(name: str) -> None:
    big = _model(name)
    groups = surgery.selected(surgery.groups(big), None)
    assert groups
    modules = dict(big.named_modules())
    plans = [surgery.plan(g, CRITERIA["l1"](modules[g.producer].weight), 0.5) for g in groups]
    _zero_dropped(big, plans)
    small, config = surgery.apply(big, name, CONFIGS[name], plans)
    x = _clip(name)
    with torch.no_grad():
        want = big(x)
        assert torch.allclose(small(x), want, atol=1e-5 * float(want.abs().max()), rtol=0)  # float rounding only
    assert sum(p.numel() for p in small.parameters()) < 0.75 * sum(p.numel() for p in big.parameters())
    build_model(name, **config).load_state_dict(small.state_dict())  # the config alone rebuilds it


def test_c3d_groups_are_every_conv_and_the_hidden_fcs_never_the_classifier() -> None:
    groups = surgery.groups(_model("c3d_b8"))
    assert [g.producer for g in groups] == [
        "features.0.0", "features.2.0", "features.4.0", "features.5.0", "features.7.0", "features.8.0",
        "features.10.0", "features.11.0", "head.1", "head.4"]
    assert [g.kind for g in groups] == ["conv"] * 8 + ["fc"] * 2
    last_conv = groups[7]
    assert last_conv.consume == (("head.1.weight", 1),)
    # 8 frames of 32 px: pool5 leaves 1x2x2 per channel, so each conv5b channel feeds 4 fc6 inputs
    assert last_conv.consume_block == 4 and last_conv.width == 64
    assert groups[-1].consume == (("head.7.weight", 1),)


def test_a_cascade_prunes_inside_and_a_micronet_output_stays_whole() -> None:
    cascade = [g.producer for g in surgery.groups(_model("b5_asyconv345")) if g.block == "features.8"]
    assert cascade == ["features.8.0.0", "features.8.1.0", "features.8.2.0"]
    m2 = surgery.groups(_model("b5_m2"))
    # conv5 is the MicroNet: its column reductions and the convs inside its columns, never its four outputs
    inner = {g.producer: [k for k, _ in g.consume] for g in m2 if g.block == "features.8"}
    assert inner == {"features.8.middle.0.0": ["features.8.middle.1.0.weight"],
                     "features.8.left.0.0": ["features.8.left.1.0.0.weight"],  # M2: the 1x5x1, 1x1x5, 3x1x1 cascade
                     "features.8.left.1.0.0": ["features.8.left.1.1.0.weight"],
                     "features.8.left.1.1.0": ["features.8.left.1.2.0.weight"]}
    m1 = [g.producer for g in surgery.groups(_model("b5_m1")) if g.block == "features.8"]
    assert m1 == ["features.8.middle.0.0", "features.8.left.0.0", "features.8.left.1.0.0"]  # two 3x3x3 on the left
    feeds = next(g for g in m2 if g.producer == "features.6.0")  # conv4 feeds all four MicroNet columns
    assert {k for k, _ in feeds.consume} == {"features.8.linear.0.weight", "features.8.middle.0.0.weight",
                                              "features.8.left.0.0.weight", "features.8.pool.1.0.weight"}


def test_fc_ratio_prunes_hidden_neurons_apart_from_the_convs() -> None:
    """MOMP Table II: conv and FC layers pruned at their own ratios; the classifier keeps every class."""
    small, config, plans = surgery.filter_prune(_model("c3d_b5"), "c3d_b5", CONFIGS["c3d_b5"], "covariance", 0.25,
                                                fc_ratio=0.5)
    assert [int(p.keep.size) for p in plans] == [6, 12, 24, 24, 24, 128, 128]
    assert config["inner_widths"] == [6, 12, 24, 24, 24, 128, 128]
    assert small.head[1].in_features == 24 * 4 and small.head[-1].out_features == 5


def test_fc6_keeps_each_kept_channels_block_of_inputs() -> None:
    big = _model("c3d_b5")
    small, _, plans = surgery.filter_prune(big, "c3d_b5", CONFIGS["c3d_b5"], "l1", 0.5, layers=("features.8.0",))
    keep = plans[0].keep
    cols = (keep[:, None] * 4 + np.arange(4)).ravel()
    assert torch.equal(small.head[1].weight, big.head[1].weight[:, cols])


def test_inner_widths_of_a_chain_must_match_its_layers() -> None:
    with pytest.raises(ValueError, match="7 widths given, the network has more"):
        build_model("c3d_b8", **CONFIGS["c3d_b8"], inner_widths=[4] * 7)
    with pytest.raises(ValueError, match="11 widths given, the network has 10"):
        build_model("c3d_b8", **CONFIGS["c3d_b8"], inner_widths=[4] * 11)


@pytest.mark.parametrize("name", ["c3d_b5", "b5_m2", "tc3d_res3d18"])
def test_a_pruned_3d_model_exports_with_onnx_parity(name: str, tmp_path) -> None:
    small, _, _ = surgery.filter_prune(_model(name), name, CONFIGS[name], "geometric_median", 0.4, fc_ratio=0.5)
    path = export_onnx(small.eval(), _clip(name), tmp_path / "m.onnx")
    assert max_abs_diff(small, path, _clip(name, 2).numpy()) < 1e-4


def test_caffenet_prunes_conv_and_bn_together_and_refuses_its_grouped_towers() -> None:
    groups = surgery.groups(_model("momp_caffenet"))
    assert [g.kind for g in groups] == ["conv"] * 5 + ["fc"] * 2
    assert groups[0].produce == (("features.0.0.weight", 0),) + tuple((f"features.0.1.{k}", 0) for k in (
        "weight", "bias", "running_mean", "running_var"))
    towers = build_model("momp_caffenet", **{**CONFIGS["momp_caffenet"], "groups": 2})
    with pytest.raises(ValueError, match="grouped conv.*groups=1"):
        surgery.groups(towers)


def test_fc_ratio_per_hidden_layer_as_table_ii() -> None:
    """MOMP Table II row 1: conv 10%, FC1 30%, FC2 40%."""
    _, config, _ = surgery.filter_prune(_model("momp_caffenet"), "momp_caffenet", CONFIGS["momp_caffenet"],
                                        "correlation", 0.1, fc_ratio=[0.3, 0.4])
    fc = max(1, round(4096 * 16 / 96))  # 683 neurons at width 16
    assert config["inner_widths"][5:] == [fc - int(0.3 * fc), fc - int(0.4 * fc)]
    with pytest.raises(ValueError, match="3 values, the model has 2 hidden FC layers"):
        surgery.filter_prune(_model("momp_caffenet"), "momp_caffenet", CONFIGS["momp_caffenet"], "l1", 0.1,
                             fc_ratio=[0.3, 0.4, 0.5])
