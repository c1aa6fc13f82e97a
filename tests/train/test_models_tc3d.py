"""T-C3D (t-c3d-temporal-encoding-deep-compression.txt): the 3D ResNet-18 backbone (geometry, parameter count),
the four fusion functions of Sec. III-E against their formulas, clip order and independence, the shared
backbone, checkpoint round trip, input errors, and ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from export.onnx import export_onnx, max_abs_diff
from train.models import accepts, build_model, list_models
from train.run import model_config

S, L = 3, 4  # tiny T-C3D: 3 clips of 4 frames
TINY_RES = {"num_classes": 5, "num_segments": 8, "width": 8}
TINY_TC3D = {"num_classes": 5, "num_clips": S, "clip_len": L, "width": 8}
AGGS = ("avg", "max", "weighted", "attention")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(name: str, **config: object) -> nn.Module:
    with torch.device("meta"):  # counts and shapes without allocating 33M parameters
        return build_model(name, **config)


def tiny_res(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("res3d18", **TINY_RES).eval()


def tiny_tc3d(aggregation: str, seed: int = 0, **over: object) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("tc3d_res3d18", **{**TINY_TC3D, "aggregation": aggregation, **over}).eval()


def frames(batch: int, t: int, seed: int = 1, side: int = 32) -> torch.Tensor:
    return torch.randn(batch, t, 3, side, side, generator=torch.Generator().manual_seed(seed))


def perturb_fusion(m: nn.Module, seed: int = 3) -> None:
    """Non-default weighted / attention parameters (their defaults both reduce to the average); large, because
    the clip scores of a random tiny network differ little, and attention should visibly prefer some clips."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.aggregate.parameters():
            p.copy_(10 * torch.randn(p.shape, generator=g))


# ---- res3d18 -------------------------------------------------------------------------------------------


def res3d18_params(num_classes: int) -> int:
    """By hand: Res3D-18 (3x7x7 stem, no bias in convs, BN = 2 params per channel, 1x1x1 projections where a
    stage starts with stride 2), global pool, FC with bias."""
    stem = 3 * 64 * 3 * 7 * 7 + 2 * 64
    total, cin = stem, 64
    for i, c in enumerate((64, 128, 256, 512)):
        for j in range(2):
            ci = cin if j == 0 else c
            total += ci * c * 27 + 2 * c + c * c * 27 + 2 * c
            if i > 0 and j == 0:
                total += ci * c + 2 * c
        cin = c
    return total + 512 * num_classes + num_classes


def test_both_models_are_registered_and_take_no_size():
    assert {"res3d18", "tc3d_res3d18"} <= set(list_models())
    assert not accepts("res3d18", "size") and not accepts("tc3d_res3d18", "size")


def test_res3d18_parameter_count_at_paper_geometry():
    assert res3d18_params(101) == 33_218_085
    assert n_params(on_meta("res3d18", num_classes=101)) == 33_218_085
    # Kinetics head: ~33M as quoted for 3D ResNet-18; 33.4M * 4 bytes = 127 MiB, the paper's T-C3D size
    assert n_params(on_meta("res3d18", num_classes=400)) == res3d18_params(400) == 33_371_472
    assert n_params(on_meta("res3d18", num_classes=101, width=32)) < 33_218_085 / 3.9


def test_res3d18_has_17_convs_one_fc_and_res3d_geometry():
    m = on_meta("res3d18", num_classes=101)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv3d)]
    main = [c for c in convs if c.kernel_size != (1, 1, 1)]  # Sec. III-D: 17 conv layers (+ 3 projections)
    assert len(main) == 17 and len(convs) == 20
    assert [type(c).__name__ for c in m.modules() if isinstance(c, nn.Linear)] == ["Linear"]
    stem = m.stem[0]
    assert (stem.kernel_size, stem.stride, stem.padding) == ((3, 7, 7), (1, 2, 2), (1, 3, 3))
    x = torch.empty(1, 8, 3, 112, 112, device="meta").permute(0, 2, 1, 3, 4)
    shapes = [tuple((x := m.stem(x)).shape)]
    shapes += [tuple((x := stage(x)).shape) for stage in m.stages]
    assert shapes == [(1, 64, 8, 56, 56), (1, 64, 8, 56, 56), (1, 128, 4, 28, 28), (1, 256, 2, 14, 14),
                      (1, 512, 1, 7, 7)]


def test_res3d18_output_shape_and_rebuild_from_state_dict():
    m, x = tiny_res(), frames(2, 8)
    with torch.no_grad():
        y = m(x)
        assert y.shape == (2, 5) and torch.isfinite(y).all()
        again = tiny_res(seed=1)
        assert not torch.allclose(again(x), y)
        again.load_state_dict(m.state_dict())
        assert torch.equal(again(x), y)
        # global average pool: the FC does not depend on the frame side
        assert m(frames(2, 8, side=48)).shape == (2, 5)


def test_res3d18_wrong_number_of_frames_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 8 frames per clip, got 4"):
        tiny_res()(frames(1, 4))


# ---- T-C3D ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("agg", AGGS)
def test_tc3d_output_and_clip_logits_shapes(agg):
    m = tiny_tc3d(agg)
    assert m.num_segments == S * L
    with torch.no_grad():
        x = frames(2, S * L)
        assert m(x).shape == (2, 5) and m.clip_logits(x).shape == (2, S, 5)


def test_tc3d_defaults_are_the_papers_and_num_segments_is_checked():
    m = on_meta("tc3d_res3d18", num_classes=101)
    assert (m.num_clips, m.clip_len, m.num_segments, type(m.aggregate).__name__) == (3, 8, 24, "AveragePooling")
    assert on_meta("tc3d_res3d18", num_classes=101, num_segments=24).num_segments == 24
    with pytest.raises(ValueError, match=r"num_segments=16 .*num_clips \* clip_len = 3 \* 8 = 24"):
        on_meta("tc3d_res3d18", num_classes=101, num_segments=16)
    with pytest.raises(ValueError, match="aggregation: expected one of avg, max, weighted, attention, got 'sum'"):
        on_meta("tc3d_res3d18", num_classes=101, aggregation="sum")


def test_tc3d_wrong_number_of_frames_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected 12 frames \(3 clips of 4\), got 8"):
        tiny_tc3d("avg")(frames(1, 8))


def test_clips_are_read_in_order_each_through_the_shared_backbone():
    m, x = tiny_tc3d("avg"), frames(2, S * L)
    with torch.no_grad():
        per_clip = m.clip_logits(x)
        for s in range(S):
            assert torch.allclose(per_clip[:, s], m.backbone(x[:, s * L:(s + 1) * L]), atol=1e-6)


def test_clips_are_independent():
    m, x = tiny_tc3d("attention"), frames(2, S * L)
    y = x.clone()
    y[:, L:2 * L] += torch.randn(2, L, 3, 32, 32, generator=torch.Generator().manual_seed(9))  # clip 2 only
    with torch.no_grad():
        a, b = m.clip_logits(x), m.clip_logits(y)
    assert torch.allclose(a[:, 0], b[:, 0], atol=1e-6) and torch.allclose(a[:, 2], b[:, 2], atol=1e-6)
    assert (a[:, 1] - b[:, 1]).abs().max() > 1e-3


def test_avg_is_the_mean_of_clip_scores_and_equals_the_fc_of_mean_features():
    m, x = tiny_tc3d("avg"), frames(2, S * L)
    with torch.no_grad():
        y, per_clip = m(x), m.clip_logits(x)
        assert torch.allclose(y, per_clip.mean(dim=1), atol=1e-6)
        # the FC is linear: averaging scores = averaging features, so for avg the choice does not matter
        feats = m.backbone.features(x.reshape(-1, L, 3, 32, 32)).reshape(2, S, -1)
        assert torch.allclose(y, m.backbone.fc(feats.mean(dim=1)), atol=1e-5)


def test_max_is_the_elementwise_max_of_clip_scores():
    m, x = tiny_tc3d("max"), frames(2, S * L)
    with torch.no_grad():
        y, per_clip = m(x), m.clip_logits(x)
    assert torch.allclose(y, per_clip.amax(dim=1), atol=1e-6)
    assert (y - per_clip.mean(dim=1)).abs().max() > 1e-3
    # elementwise: different classes may take their maximum from different clips
    assert len(set(per_clip.argmax(dim=1).flatten().tolist())) > 1


def test_weighted_is_an_s_by_1_conv_initialised_to_the_average():
    avg, weighted, x = tiny_tc3d("avg"), tiny_tc3d("weighted"), frames(2, S * L)
    conv = weighted.aggregate.conv
    assert conv.kernel_size == (S, 1) and conv.bias is None
    assert torch.equal(conv.weight.flatten(), torch.full((S,), 1 / S))
    with torch.no_grad():
        assert torch.allclose(weighted(x), avg(x), atol=1e-6)  # same seed: same backbone
        conv.weight.copy_(torch.tensor([0.0, 2.0, -0.5]).reshape(1, 1, S, 1))
        per_clip = weighted.clip_logits(x)
        assert torch.allclose(weighted(x), 2.0 * per_clip[:, 1] - 0.5 * per_clip[:, 2], atol=1e-5)


def test_attention_is_equation_5():
    m, x = tiny_tc3d("attention"), frames(2, S * L)
    assert m.aggregate.q.shape == (5,) and torch.equal(m.aggregate.q, torch.zeros(5))  # starts as the average
    perturb_fusion(m)
    q = m.aggregate.q.detach()
    with torch.no_grad():
        per_clip = m.clip_logits(x)
        w = m.aggregate.weights(per_clip)
        e = torch.exp(per_clip @ q)  # w_s = exp(q^T F_s) / sum_j exp(q^T F_j)
        assert torch.allclose(w, e / e.sum(dim=1, keepdim=True), atol=1e-6)
        assert torch.allclose(w.sum(dim=1), torch.ones(2), atol=1e-6)
        assert (w.max(dim=1).values - w.min(dim=1).values).min() > 0.02  # it does weight the clips unequally
        assert torch.allclose(m(x), (w.unsqueeze(-1) * per_clip).sum(dim=1), atol=1e-6)
        assert (m(x) - per_clip.mean(dim=1)).abs().max() > 1e-3


@pytest.mark.parametrize("agg", AGGS)
def test_a_clip_repeated_s_times_gives_that_clips_own_result(agg):
    m = tiny_tc3d(agg)
    if agg == "attention":
        perturb_fusion(m)
    one = frames(2, L)
    with torch.no_grad():
        assert torch.allclose(m(one.repeat(1, S, 1, 1, 1)), m.backbone(one), atol=1e-5)


def test_the_backbone_is_shared_parameters_do_not_grow_with_s():
    base = n_params(on_meta("res3d18", num_classes=101))
    for s in (1, 3, 8):
        assert n_params(on_meta("tc3d_res3d18", num_classes=101, num_clips=s)) == base
        assert n_params(on_meta("tc3d_res3d18", num_classes=101, num_clips=s, aggregation="max")) == base
        assert n_params(on_meta("tc3d_res3d18", num_classes=101, num_clips=s, aggregation="attention")) == base + 101
        assert n_params(on_meta("tc3d_res3d18", num_classes=101, num_clips=s, aggregation="weighted")) == base + s
    # the backbone is a plain res3d18: its checkpoint (e.g. Kinetics-pretrained) loads into T-C3D
    tc3d = tiny_tc3d("avg")
    torch.manual_seed(5)
    res = build_model("res3d18", **{**TINY_RES, "num_segments": L})
    tc3d.backbone.load_state_dict(res.state_dict())
    with torch.no_grad():
        x = frames(1, S * L)
        assert torch.allclose(tc3d.clip_logits(x)[:, 0], res.eval()(x[:, :L]), atol=1e-6)


@pytest.mark.parametrize("agg", AGGS)
def test_tc3d_checkpoint_round_trip(agg):
    config = {**TINY_TC3D, "aggregation": agg, "num_segments": S * L}
    torch.manual_seed(0)
    m = build_model("tc3d_res3d18", **config).eval()
    perturb_fusion(m)
    torch.manual_seed(1)
    again = build_model("tc3d_res3d18", **config).eval()
    x = frames(2, S * L)
    with torch.no_grad():
        y = m(x)
        assert not torch.allclose(again(x), y)
        again.load_state_dict(m.state_dict())
        assert torch.equal(again(x), y)


def test_train_config_rebuilds_tc3d_at_the_papers_24_frames():
    config = model_config("tc3d_res3d18", 4, 24, 8, 112)
    assert config == {"num_classes": 4, "num_segments": 24, "width": 8}
    m = build_model("tc3d_res3d18", **config)
    assert (m.num_clips, m.clip_len) == (3, 8)
    assert m.eval()(frames(1, 24, side=32)).shape == (1, 4)


# ---- export --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,agg", [("res3d18", None), ("tc3d_res3d18", "attention"),
                                      ("tc3d_res3d18", "weighted"), ("tc3d_res3d18", "max")])
def test_onnx_export_matches_torch(name, agg, tmp_path):
    if agg is None:
        m, t = tiny_res(), 8
    else:
        m, t = tiny_tc3d(agg), S * L
        perturb_fusion(m)
    path = export_onnx(m, frames(1, t), tmp_path / "m.onnx")
    x = frames(3, t, seed=2).numpy()  # batch 3: the batch axis is dynamic
    assert max_abs_diff(m, path, x) <= 1e-4
    assert max_abs_diff(m, path, np.ascontiguousarray(x[:, ::-1])) <= 1e-4
