"""Structured pruning surgery: the smaller model computes what the zeroed big one did, residual/shift-tied
channels stay whole, and the result rebuilds from its config and exports with ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from export.onnx import export_onnx, max_abs_diff
from train.compress import surgery
from train.compress.criteria import CRITERIA
from train.models import build_model, list_models

CLIP = (2, 4, 3, 32, 32)
# the 2D segment models; the 3D models have their own tests (test_models_3d.py), their pruning is separate
SEGMENT_MODELS = [n for n in list_models() if n.startswith(("tsn_", "tsm_", "mstsm_"))]


def _config(name: str) -> dict:
    return {"num_classes": 5, "num_segments": 4, "width": 8 if "resnet" in name else 0.25}


def _model(name: str, seed: int = 0) -> nn.Module:
    """A model whose BatchNorms are not identity, so a pruned channel that still mattered would show: random
    scales and shifts, running statistics measured on random clips (so activations neither die nor saturate)."""
    torch.manual_seed(seed)
    m = build_model(name, **_config(name))
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            nn.init.uniform_(mod.weight, 0.5, 1.5)
            nn.init.uniform_(mod.bias, -0.5, 0.5)
            mod.momentum = None  # a plain average over the calibration batches
    with torch.no_grad():
        m(_clip(seed + 10))
    return m.eval()


def _clip(seed: int = 1) -> torch.Tensor:
    return torch.randn(*CLIP, generator=torch.Generator().manual_seed(seed))


def _zero_dropped(model: nn.Module, plans: list[surgery.Plan]) -> None:
    """Silence the channels the plans drop: conv rows and BN scale/shift, so each outputs exactly 0."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for p in plans:
            drop = torch.as_tensor(np.setdiff1d(np.arange(p.group.width), p.keep))
            for key, dim in p.group.produce:
                if key in params:
                    params[key].index_fill_(dim, drop, 0.0)


@pytest.mark.parametrize("name", SEGMENT_MODELS)
@pytest.mark.parametrize("criterion", sorted(CRITERIA))
def test_pruning_zeroed_filters_leaves_the_output_unchanged(name: str, criterion: str) -> None:
    big = _model(name)
    groups = surgery.selected(surgery.groups(big), None)
    modules = dict(big.named_modules())
    plans = [surgery.plan(g, CRITERIA[criterion](modules[g.producer].weight), 0.5) for g in groups]
    _zero_dropped(big, plans)
    small, config = surgery.apply(big, name, _config(name), plans)
    x = _clip().double()  # in float64: float32's summation order differs with the channel count (1.1e-6 seen
    with torch.no_grad():  # on ResNet-50), which is rounding, not the surgery
        assert torch.allclose(small.double()(x), big.double()(x), atol=1e-6, rtol=0)
    assert config["inner_widths"] == [int(p.keep.size) for p in plans] or name.endswith("mobilenetv2")
    n_small = sum(p.numel() for p in small.parameters())
    assert n_small < sum(p.numel() for p in big.parameters())
    rebuilt = build_model(name, **config)
    rebuilt.load_state_dict(small.state_dict())  # the config alone rebuilds the pruned architecture


@pytest.mark.parametrize("name", ["tsm_resnet18", "mstsm_resnet18", "tsm_mobilenetv2", "mstsm_mobilenetv2",
                                  "mstsm_resnet50"])
def test_residual_and_shift_channels_are_never_pruned(name: str) -> None:
    big = _model(name)
    small, _, plans = surgery.filter_prune(big, name, _config(name), "l1", 0.5)
    assert plans
    shapes = {k: tuple(v.shape) for k, v in small.state_dict().items()}
    inner = {k for p in plans for k, _ in p.group.produce + p.group.consume}
    for key, t in big.state_dict().items():
        if key not in inner:  # stem, residual convs, downsample, classifier, shift-fed inputs: untouched
            assert shapes[key] == tuple(t.shape), key
    for p in plans:  # every inner width is floor(n / 2) smaller
        assert p.keep.size == p.group.width - p.group.width // 2


def test_the_criterion_decides_which_filters_go() -> None:
    big = _model("tsm_resnet18")
    conv = big.backbone.stages[0][0].conv1[0]
    with torch.no_grad():
        conv.weight[[1, 5]] *= 1e-3  # the two smallest filters by L1
    small, config, plans = surgery.filter_prune(big, "tsm_resnet18", _config("tsm_resnet18"), "l1", 0.25,
                                                layers=("backbone.stages.0.0",))
    assert config["inner_widths"][:2] == [6, 8]
    assert plans[0].keep.tolist() == [0, 2, 3, 4, 6, 7]
    kept = small.backbone.stages[0][0]
    assert torch.equal(kept.conv1[0].weight, conv.weight[[0, 2, 3, 4, 6, 7]])
    assert torch.equal(kept.conv1[1].running_var, big.backbone.stages[0][0].conv1[1].running_var[[0, 2, 3, 4, 6, 7]])
    assert torch.equal(kept.conv2[0].weight, big.backbone.stages[0][0].conv2[0].weight[:, [0, 2, 3, 4, 6, 7]])


def test_layers_globs_pick_blocks_or_their_scored_conv() -> None:
    groups = surgery.groups(_model("tsm_resnet18"))
    assert len(groups) == 8
    assert [g.block for g in surgery.selected(groups, ("backbone.stages.3.*",))] == [
        "backbone.stages.3.0", "backbone.stages.3.1"]
    assert [g.block for g in surgery.selected(groups, ("*.stages.1.0.conv1.0",))] == ["backbone.stages.1.0"]
    mobile = surgery.groups(_model("tsm_mobilenetv2"))
    assert len(mobile) == 17 and not mobile[0].prunable  # the first block has no expansion conv
    assert len(surgery.selected(mobile, None)) == 16


def _copies(model: nn.Module, group: surgery.Group) -> None:
    """Make channels 0-2 of ``group`` copies, the smallest so l1 picks them, with a BatchNorm shift that keeps
    them alive after the ReLU."""
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    with torch.no_grad():
        tensors[group.producer + ".weight"][0] *= 1e-3
        for key, dim in group.produce:
            t = tensors[key]
            if key.endswith(".bias"):  # positive after the ReLU, so the channel matters downstream
                t[0] = 1.0
            t.index_copy_(dim, torch.tensor([1, 2]), t.index_select(dim, torch.tensor([0, 0])))


@pytest.mark.parametrize("name, index", [("mstsm_resnet18", 0), ("mstsm_mobilenetv2", 0), ("mstsm_resnet50", 0),
                                         ("mstsm_resnet50", 1)])
def test_average_inputs_merges_similar_channels_into_one(name: str, index: int) -> None:
    """MSTSM Sec. 3.5.3: channels with equal kernels (and BatchNorms) averaged into one lose nothing, while
    dropping them does. Channels 0-2 of one group are copies (index 1: a Bottleneck's second group, conv2)."""
    big = _model(name)
    group = surgery.selected(surgery.groups(big), None)[index]
    _copies(big, group)
    ratio = 2 / group.width  # drop 2 channels: the 3 copies become 1
    x = _clip()
    merged, _, plans = surgery.filter_prune(big, name, _config(name), "l1", ratio, layers=(group.producer,),
                                            average_inputs=True)
    assert plans[0].merged.tolist() == [0, 1, 2] and plans[0].keep.tolist() == [0, *range(3, group.width)]
    dropped, _, _ = surgery.filter_prune(big, name, _config(name), "l1", ratio, layers=(group.producer,))
    with torch.no_grad():
        want = big(x)
        # float rounding of the reordered sums grows with depth: ~3e-5 through ResNet-50's 16 blocks
        assert torch.allclose(merged(x), want, atol=1e-4 if name.endswith("resnet50") else 1e-5, rtol=0)
        assert not torch.allclose(dropped(x), want, atol=1e-3, rtol=0)


def test_both_bottleneck_groups_merge_at_once() -> None:
    """conv2 of a Bottleneck is cut twice, its outputs averaged (second group) and its inputs summed (first)."""
    big = _model("mstsm_resnet50")
    first, second = surgery.selected(surgery.groups(big), ("backbone.stages.1.0",))
    assert first.producer.endswith("conv1.0") and second.producer.endswith("conv2.0")
    _copies(big, first)
    _copies(big, second)
    ratio = 2 / first.width
    merged, config, plans = surgery.filter_prune(big, "mstsm_resnet50", _config("mstsm_resnet50"), "l1", ratio,
                                                 layers=("backbone.stages.1.0",), average_inputs=True)
    assert [p.merged.tolist() for p in plans] == [[0, 1, 2]] * 2
    assert config["inner_widths"][6:8] == [first.width - 2] * 2  # stage 0 has 3 blocks, two entries each
    conv2 = merged.backbone.stages[1][0].conv2[0].weight
    assert conv2.shape[:2] == (first.width - 2, first.width - 2)
    with torch.no_grad():
        assert torch.allclose(merged(_clip()), big(_clip()), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["tsm_resnet18", "mstsm_resnet18", "tsm_mobilenetv2", "mstsm_mobilenetv2",
                                  "mstsm_resnet50"])
def test_a_pruned_shift_model_exports_with_onnx_parity(name: str, tmp_path) -> None:
    small, _, _ = surgery.filter_prune(_model(name), name, _config(name), "correlation", 0.4)
    path = export_onnx(small.eval(), _clip(), tmp_path / "m.onnx")
    assert max_abs_diff(small, path, _clip(2).numpy()) < 1e-4


def test_inner_widths_are_checked_when_building() -> None:
    with pytest.raises(ValueError, match="expected 8 positive ints"):
        build_model("tsm_resnet18", **_config("tsm_resnet18"), inner_widths=[4] * 7)
    with pytest.raises(ValueError, match="expected 8 positive ints"):
        build_model("tsm_resnet18", **_config("tsm_resnet18"), inner_widths=[4] * 7 + [0])
    widths = [g.width for g in surgery.groups(_model("tsm_mobilenetv2"))]
    with pytest.raises(ValueError, match="without expansion has 8 inner channels, got 7"):
        build_model("tsm_mobilenetv2", **_config("tsm_mobilenetv2"), inner_widths=[7] + widths[1:])


def test_macs_count_the_convolutions_and_the_classifier(tmp_path):
    from edge.inspect import inspect_onnx  # the compression report's counter: on the exported graph

    def count(model: nn.Module, example: torch.Tensor, name: str) -> int:
        return inspect_onnx(export_onnx(model, example, tmp_path / f"{name}.onnx")).macs

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 5))
    assert count(net, torch.zeros(1, 3, 10, 12), "net") == 8 * 3 * 9 * 10 * 12 + 8 * 5  # the bias adds nothing
    big = _model("tsm_resnet18")
    small, _, _ = surgery.filter_prune(big, "tsm_resnet18", _config("tsm_resnet18"), "l1", 0.5)
    clip = _clip()[:1]
    assert count(small, clip, "small") < 0.75 * count(big, clip, "big")  # half of every block's inner channels
