"""Residual-stream pruning: channels tied by the additions go together, each shift fold keeps its role, and
the smaller model computes what the big one did with those channels silenced."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edge.errors import EdgeError
from export.onnx import export_onnx, max_abs_diff
from kernels.reference import shift_spec
from train.compress import streams as tied
from train.compress import surgery
from train.compress.criteria import CRITERIA
from train.compress.pipeline import prepare
from train.compress.recipe import parse_recipe
from train.engine import Checkpoint
from train.models import build_model, list_models

CLIP = (2, 4, 3, 32, 32)
RESNETS = [n for n in list_models() if n.startswith(("tsn_", "tsm_", "mstsm_")) and "resnet" in n]
TSM, MSTSM, CAUSAL = (8, None, False), (8, 16, False), (8, None, True)


def _config(**extra: object) -> dict:
    return {"num_classes": 5, "num_segments": 4, "width": 16, **extra}


def _model(name: str, **extra: object) -> nn.Module:
    """BatchNorms that are not identity (random scales and shifts, statistics of random clips), so a channel
    that still mattered would show."""
    torch.manual_seed(0)
    m = build_model(name, **_config(**extra))
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            nn.init.uniform_(mod.weight, 0.5, 1.5)
            nn.init.uniform_(mod.bias, -0.5, 0.5)
            mod.momentum = None
    with torch.no_grad():
        m(torch.randn(*CLIP, generator=torch.Generator().manual_seed(10)))
    return m.eval()


def _clip(seed: int = 1) -> torch.Tensor:
    return torch.randn(*CLIP, generator=torch.Generator().manual_seed(seed))


def _silence(model: nn.Module, plan: surgery.StreamPlan) -> None:
    """Zero every producer's filters and BatchNorm scale/shift of the dropped channels: each addition then
    sums zeros there, so the whole stream carries exact zeros in those channels."""
    params = dict(model.named_parameters())
    drop = torch.as_tensor(np.setdiff1d(np.arange(plan.stream.width), plan.keep))
    with torch.no_grad():
        for key, dim in plan.stream.produce:
            if key in params:
                params[key].index_fill_(dim, drop, 0.0)


def test_resnet18_has_four_streams_and_resnet50_five() -> None:
    s18 = tied.streams(_model("tsm_resnet18"))
    assert [(s.name, s.slots, s.width) for s in s18] == [
        ("backbone.stem", (0, 1), 16), ("backbone.stages.1", (2,), 32), ("backbone.stages.2", (3,), 64),
        ("backbone.stages.3", (4,), 128)]
    # the stem stream: the stem and both stage-1 blocks' last convs produce it; three shifted convs read it
    assert s18[0].producers == ("backbone.stem.0.0", "backbone.stages.0.0.conv2.0", "backbone.stages.0.1.conv2.0")
    assert s18[0].shifted == ("backbone.stages.0.0.conv1.0.weight", "backbone.stages.0.1.conv1.0.weight",
                              "backbone.stages.1.0.conv1.0.weight")
    assert s18[0].consume == (("backbone.stages.1.0.downsample.0.weight", 1),)
    assert s18[-1].consume == (("fc.weight", 1),) and all(s.shift == TSM for s in s18)
    s50 = tied.streams(_model("mstsm_resnet50"))
    assert [(s.name, s.width, len(s.producers)) for s in s50] == [
        ("backbone.stem", 16, 1), ("backbone.stages.0", 64, 4), ("backbone.stages.1", 128, 5),
        ("backbone.stages.2", 256, 7), ("backbone.stages.3", 512, 4)]
    assert s50[0].shift == MSTSM
    assert tied.streams(_model("tsn_resnet18"))[0].shift is None


@pytest.mark.parametrize("name", ["mobilenetv2", "c3d_b8", "res3d18"])
def test_models_without_resnet_streams_are_refused(name: str) -> None:
    full = next(n for n in list_models() if n.endswith(name))
    cfg = {"num_classes": 5, "num_segments": 4} if "mobilenet" in full else {"num_classes": 5}
    with pytest.raises(ValueError, match="has no residual streams to prune"):
        tied.streams(build_model(full, **cfg))


@pytest.mark.parametrize("shift, width, roles", [
    (None, 4, [(0,)] * 4),
    (TSM, 16, [(1,)] * 2 + [(-1,)] * 2 + [(0,)] * 12),
    (MSTSM, 16, [(1,)] * 2 + [(-1,)] * 2 + [(0, 2)] + [(-2, 0)] + [(0,)] * 10),
    (CAUSAL, 16, [(-1,)] * 2 + [(0,)] * 14),
])
def test_roles_are_the_offsets_each_channel_is_read_at(shift, width, roles) -> None:
    assert tied.roles(width, shift) == roles


def test_each_fold_keeps_its_best_channels_and_its_share_of_the_new_width() -> None:
    scores = np.arange(32, dtype=float)[::-1].copy()  # channel 0 scores highest
    scores[[1, 5]] = 100.0  # within the first fold channel 1 and in the second fold channel 5 are the best
    keep = tied.keep(scores, 0.5, TSM)  # 32 -> 16: folds of 4 -> 2, the unmoved 24 -> 12
    assert keep.tolist() == [0, 1, 4, 5, *range(8, 20)]
    assert [tied.roles(32, TSM)[c] for c in keep] == tied.roles(16, TSM)
    plain = tied.keep(scores, 0.5, None)  # no shift: the 16 best channels anywhere
    assert plain.tolist() == sorted(np.argsort(-scores, kind="stable")[:16].tolist())


def test_shifted_inputs_map_each_new_slot_to_the_same_channel_and_offset() -> None:
    keep = tied.keep(np.arange(32, dtype=float), 0.5, MSTSM)  # 32 -> 16 channels, 36 -> 18 conv inputs
    slots = tied.shifted_inputs(keep, 32, MSTSM)
    old, new = shift_spec(32, 8, 16), shift_spec(16, 8, 16)
    assert slots.size == new.out_channels == 18
    for new_slot, old_slot in enumerate(slots):
        assert keep[new.src_off[0][new_slot]] == old.src_off[0][old_slot]
        assert new.src_off[1][new_slot] == old.src_off[1][old_slot]


@pytest.mark.parametrize("name", RESNETS)
@pytest.mark.parametrize("criterion", sorted(CRITERIA))
def test_pruning_silenced_stream_channels_leaves_the_output_unchanged(name: str, criterion: str) -> None:
    big = _model(name)
    small, config, plans = surgery.filter_prune(big, name, _config(), criterion, 0.0, stream_ratio=0.5)
    stream_plans = [p for p in plans if isinstance(p, surgery.StreamPlan)]
    assert len(stream_plans) == len(tied.streams(big))
    for p in stream_plans:
        _silence(big, p)
    small, config = surgery.apply(big, name, _config(), [], stream_plans)
    x = _clip()
    with torch.no_grad():
        assert torch.allclose(small(x), big(x), atol=1e-5, rtol=0)
    assert config["stream_widths"] == [w - w // 2 for w in big.backbone.stream_widths]
    rebuilt = build_model(name, **config)
    rebuilt.load_state_dict(small.state_dict())  # the config alone rebuilds the pruned architecture
    assert small.fc.in_features == big.fc.in_features // 2
    # every block's first conv reads half as many channels, its last conv makes half as many
    assert sum(p.numel() for p in small.parameters()) < 0.75 * sum(p.numel() for p in big.parameters())


def test_a_keep_that_moves_a_channel_into_another_fold_is_refused() -> None:
    """Keeping channels 2-9 of 16 would put channel 2 (read from t-1) into the pruned stream's first fold
    (read from t+1): the surgery refuses rather than build a model whose shift means something else."""
    big = _model("tsm_resnet18")
    plan = surgery.StreamPlan(tied.streams(big)[0], np.arange(2, 10))
    with pytest.raises(ValueError, match="stream channel 2 would be read at frame offset [+]1, which it never was"):
        surgery.apply(big, "tsm_resnet18", _config(), [], [plan])


def test_streams_and_inner_channels_prune_together_and_export_with_parity(tmp_path) -> None:
    for name in ("tsm_resnet18", "mstsm_resnet18", "mstsm_resnet50", "tsm_online_resnet18"):
        big = _model(name)
        small, config, plans = surgery.filter_prune(big, name, _config(), "geometric_median", 0.5, stream_ratio=0.5)
        assert config["inner_widths"] == [g.width - g.width // 2 for g in surgery.groups(big)]
        assert len(plans) == len(surgery.groups(big)) + len(tied.streams(big))
        path = export_onnx(small.eval(), _clip(), tmp_path / f"{name}.onnx")
        assert max_abs_diff(small, path, _clip(2).numpy()) < 1e-4


def test_layers_globs_pick_streams_by_name_or_producer() -> None:
    found = tied.streams(_model("tsm_resnet18"))
    assert [s.name for s in tied.selected(found, ("backbone.stages.3",))] == ["backbone.stages.3"]
    assert [s.name for s in tied.selected(found, ("*.stages.0.1.conv2.0",))] == ["backbone.stem"]
    assert tied.selected(found, ("backbone.stages.1.0.conv1.0",)) == []  # a reader, not a producer


@pytest.mark.parametrize("name", ["tsm_online_resnet18", "mstsm_online_resnet18"])
def test_the_online_model_keeps_its_buffers_consistent_after_stream_pruning(name: str, tmp_path) -> None:
    from export.online import export_online, online_parity_error
    from train.models.online import OnlineStep

    small, _, _ = surgery.filter_prune(_model(name), name, _config(), "l1", 0.5, stream_ratio=0.5)
    step = OnlineStep(small.eval())
    clip = _clip()[:1]
    buffers = [torch.zeros(1, *shape) for shape in step.buffer_shapes(tuple(clip.shape[2:]))]
    assert buffers[0].shape[1] == 1  # the pruned stem stream: 8 channels, a fold of 1
    outs = []
    with torch.no_grad():
        for t in range(clip.shape[1]):
            logits, *buffers = step(clip[:, t], *buffers)
            outs.append(logits)
        want = small.frame_logits(clip)[0]
    assert torch.allclose(torch.cat(outs), want, atol=1e-5, rtol=0)
    # and its per-frame ONNX model, buffers as explicit inputs and outputs, frame by frame
    buffers = export_online(small, tuple(clip.shape[2:]), tmp_path / "online.onnx")
    assert online_parity_error(small, tmp_path / "online.onnx", buffers, clip.numpy()) < 1e-4


def test_a_recipe_asking_to_prune_streams_of_a_model_without_them_is_one_line(tmp_path) -> None:
    recipe = parse_recipe('[[stage]]\nkind = "filter_prune"\ncriterion = "l1"\nstream_ratio = 0.5\n', "r.toml")
    assert recipe.stages[0].stream_ratio == 0.5 and recipe.stages[0].conv_ratio == 0.0
    model = build_model("tsm_mobilenetv2", num_classes=5, num_segments=4, width=0.25)
    ckpt = Checkpoint("tsm_mobilenetv2", {"num_classes": 5, "num_segments": 4, "width": 0.25}, model.state_dict(),
                      list("abcde"), {})
    with pytest.raises(EdgeError, match=r"^r\.toml: stage 1 \(filter_prune\): stream_ratio: MobileNetV2 has no "
                                        r"residual streams to prune \(only the TSN/TSM/MSTSM ResNet-18/50 models"):
        prepare(recipe, ckpt)


def test_stream_widths_are_checked_when_building() -> None:
    with pytest.raises(ValueError, match="stream_widths: expected 5 positive ints"):
        build_model("tsm_resnet18", **_config(stream_widths=[8, 8, 16, 32]))
    with pytest.raises(ValueError, match="only the ResNet backbones"):
        build_model("tsm_mobilenetv2", num_classes=5, num_segments=4, stream_widths=[8] * 5)
    default = build_model("tsm_resnet18", **_config())
    same = build_model("tsm_resnet18", **_config(stream_widths=[16, 16, 32, 64, 128]))
    assert {k: v.shape for k, v in default.state_dict().items()} == {k: v.shape for k, v in same.state_dict().items()}
