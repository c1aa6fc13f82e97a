"""The MOMP paper's CaffeNet (train/models/caffenet.py): the reference CaffeNet parameter count at paper
geometry, the fc6 input from the size (Caffe's round-up pools), shapes, checkpoint round trip, clear errors,
ONNX parity, and the registry's other model lists leaving it out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edge.bundle import ClipSpec
from edge.preprocess import Preprocess
from export.onnx import export_onnx, max_abs_diff
from train.engine import Checkpoint
from train.models import accepts, build_model, list_models
from train.models.caffenet import CaffeNet, feature_side
from train.run import model_config

TINY = {"num_classes": 5, "width": 8, "size": 67}


def n_params(**config: object) -> int:
    with torch.device("meta"):  # 61M parameters, not allocated
        model = build_model("momp_caffenet", **config)
    return sum(p.numel() for p in model.parameters())


def conv(cin: int, cout: int, k: int, groups: int = 1, bias: bool = True) -> int:
    return cout * (cin // groups) * k * k + (cout if bias else 0)


def fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def tiny(seed: int = 0, **over: object) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("momp_caffenet", **{**TINY, **over}).eval()


def clip(batch: int = 2, seed: int = 1, t: int = 1, size: int = 67) -> torch.Tensor:
    return torch.randn(batch, t, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_paper_geometry_has_caffenets_parameter_count():
    # BVLC reference CaffeNet: conv2/4/5 in two groups, 256*6*6 = 9216 fc6 inputs, 1000 classes
    expected = (conv(3, 96, 11) + conv(96, 256, 5, 2) + conv(256, 384, 3) + conv(384, 384, 3, 2)
                + conv(384, 256, 3, 2) + fc(9216, 4096) + fc(4096, 4096) + fc(4096, 1000))
    assert expected == 60_965_224  # the standard "60.9M" / "61M" figure
    assert n_params(num_classes=1000) == expected
    # UCF101 / HMDB51 heads (the paper's datasets)
    assert n_params(num_classes=101) == expected - fc(4096, 1000) + fc(4096, 101)


def test_ungrouped_and_batchnorm_variants_count_what_they_should():
    grouped = n_params(num_classes=1000)
    ungrouped = n_params(num_classes=1000, groups=1)
    # each grouped conv reads all its inputs when ungrouped: twice the weights
    assert ungrouped - grouped == (conv(96, 256, 5, 2, False) + conv(384, 384, 3, 2, False)
                                   + conv(384, 256, 3, 2, False))
    assert ungrouped == 62_378_344
    bn = n_params(num_classes=1000, norm="bn")
    channels = 96 + 256 + 384 + 384 + 256
    assert bn == grouped - channels + 2 * channels  # conv biases dropped, BN scale and shift added


def test_the_fc6_input_follows_the_size_with_round_up_pools():
    assert feature_side(227) == feature_side(224) == 6  # Caffe's ceil pooling: the paper's 224 crops fit too
    assert feature_side(67) == 1 and feature_side(55) == 1 and feature_side(99) == 2
    with torch.device("meta"):
        m = build_model("momp_caffenet", num_classes=3, size=224)
    assert m.head[0].in_features == 9216
    with pytest.raises(ValueError, match="input size must be >= 55"):
        feature_side(54)


def test_width_scales_every_layer_in_multiples_of_the_groups():
    with torch.device("meta"):
        m = build_model("momp_caffenet", **TINY)
    convs = [mod for mod in m.features.modules() if isinstance(mod, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 22, 32, 32, 22]  # 96 -> 8: 256/12 = 21.3 -> 22 (even)
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert [lin.out_features for lin in m.head if isinstance(lin, nn.Linear)] == [341, 341, 5]


def test_layout_is_a_plain_chain_of_conv_units_pools_lrns_and_an_fc_head():
    with torch.device("meta"):
        lrn, bn = (build_model("momp_caffenet", num_classes=3, norm=n, dropout=0.5) for n in ("lrn", "bn"))
    assert [type(m).__name__ for m in lrn.features] == [
        "Sequential", "MaxPool2d", "LocalResponseNorm", "Sequential", "MaxPool2d", "LocalResponseNorm",
        "Sequential", "Sequential", "Sequential", "MaxPool2d"]
    assert [type(m).__name__ for m in lrn.features[0]] == ["Conv2d", "ReLU"]
    assert [type(m).__name__ for m in bn.features[0]] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert "LocalResponseNorm" not in [type(m).__name__ for m in bn.features]
    assert [type(m).__name__ for m in lrn.head] == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    with torch.device("meta"):
        plain = build_model("momp_caffenet", num_classes=3)
    assert [type(m).__name__ for m in plain.head][2] == "Identity"
    assert plain.state_dict().keys() == lrn.state_dict().keys()


@pytest.mark.parametrize("norm", ["lrn", "bn"])
@pytest.mark.parametrize("groups", [1, 2])
def test_forward_shape_and_rebuild_from_state_dict(norm, groups):
    m = tiny(norm=norm, groups=groups)
    x = clip()
    with torch.no_grad():
        y = m(x)
        assert y.shape == (2, 5) and torch.isfinite(y).all()
        again = tiny(seed=1, norm=norm, groups=groups)
        assert not torch.allclose(again(x), y)
        again.load_state_dict(m.state_dict())
        assert torch.equal(again(x), y)


def test_several_images_per_clip_average_their_scores():
    m = tiny(num_segments=3)
    x = clip(t=3)
    with torch.no_grad():
        per_image = torch.stack([tiny()(x[:, i: i + 1]) for i in range(3)], 1)
        assert torch.allclose(m(x), per_image.mean(1), atol=1e-6)


def test_checkpoint_round_trip(tmp_path):
    m = tiny()
    config = model_config("momp_caffenet", 5, 1, 8, 67)
    assert config == {"num_classes": 5, "num_segments": 1, "width": 8, "size": 67} and accepts("momp_caffenet", "size")
    pre = Preprocess(size=67, resize=76)
    ckpt = Checkpoint("momp_caffenet", config, m.state_dict(), list("abcde"),
                      {"preprocess": pre.to_dict(), "clip": ClipSpec(1, 9, 4).to_dict(), "shape": [1, 3, 67, 67]})
    ckpt.save(tmp_path / "m.pt")
    rebuilt = Checkpoint.load(tmp_path / "m.pt").build()
    x = clip()
    with torch.no_grad():
        assert torch.equal(rebuilt(x), m(x))


def test_inner_widths_rebuild_a_narrower_network_and_are_checked():
    m = build_model("momp_caffenet", **TINY, inner_widths=[6, 20, 30, 28, 18, 100, 90])
    assert [c.out_channels for c in m.modules() if isinstance(c, nn.Conv2d)] == [6, 20, 30, 28, 18]
    assert m(clip()).shape == (2, 5)
    with pytest.raises(ValueError, match="expected 7 positive ints"):
        build_model("momp_caffenet", **TINY, inner_widths=[6, 20, 30])
    with pytest.raises(ValueError, match="multiples of groups=2"):
        build_model("momp_caffenet", **TINY, inner_widths=[7, 20, 30, 28, 18, 100, 90])
    build_model("momp_caffenet", **TINY, groups=1, inner_widths=[7, 21, 31, 29, 19, 100, 90])


def test_wrong_input_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 1 images per clip, got 4"):
        tiny()(clip(t=4))
    with pytest.raises(ValueError, match="expected 67x67 images, got 75x75"):
        tiny()(clip(size=75))
    with pytest.raises(ValueError, match="norm must be one of lrn, bn"):
        CaffeNet(num_classes=2, norm="gn")
    with pytest.raises(ValueError, match="groups must be 1 or 2"):
        CaffeNet(num_classes=2, groups=4)


@pytest.mark.parametrize("norm", ["lrn", "bn"])
def test_onnx_export_matches_torch(norm, tmp_path):
    m = tiny(norm=norm)
    if norm == "bn":  # non-trivial running statistics
        m.train()
        with torch.no_grad():
            m(clip(8, seed=5))
        m.eval()
    path = export_onnx(m, clip(1), tmp_path / "m.onnx")
    x = clip(3, seed=2).numpy()  # batch 3: the batch axis is dynamic
    assert max_abs_diff(m, path, x) <= 1e-4
    assert max_abs_diff(m, path, np.ascontiguousarray(x * 40.0)) <= 1e-4 * 40  # LRN's saturating range


def test_other_model_lists_leave_it_out():
    assert "momp_caffenet" in list_models()
    segment = [n for n in list_models() if n.startswith(("tsn_", "tsm_", "mstsm_"))]
    assert "momp_caffenet" not in segment
    from train.models.c3d import MODELS as C3D_MODELS

    assert "momp_caffenet" not in C3D_MODELS


def test_he_init_keeps_the_signal_to_the_logits():
    torch.manual_seed(0)
    m = build_model("momp_caffenet", num_classes=5, width=16, size=64).eval()
    with torch.no_grad():
        assert m(torch.randn(8, 1, 3, 64, 64, generator=torch.Generator().manual_seed(1))).std() > 0.1
