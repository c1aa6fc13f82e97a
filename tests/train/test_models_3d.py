"""The asymmetric 3D-CNN paper's models: parameter counts at paper geometry (Tables 2-3), shapes, checkpoint
round trip, the cascade's receptive field, clip-length errors, ONNX parity, and the size in train configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from export.onnx import export_onnx, max_abs_diff
from train.models import accepts, build_model, list_models
from train.models.c3d import MODELS as C3D_MODELS
from train.models.conv3d import MicroNet, asymmetric, conv_relu
from train.run import model_config

# the asymmetric 3D-CNN paper's models; T-C3D's res3d18 / tc3d_res3d18 are in test_models_tc3d.py
MODELS_3D = [n for n in list_models() if n in C3D_MODELS]
TINY = {"num_classes": 5, "num_segments": 8, "width": 8, "size": 32}

# paper's parameter counts in millions: Table 2 (c3d-b5/b8 and their asymmetric variants), Table 3 (b5-M1..4)
TABLE_2 = {"c3d_b5": 17.44, "b5_asyconv3": 17.05, "b5_asyconv4": 16.26, "b5_asyconv5": 16.26,
           "b5_asyconv34": 15.87, "b5_asyconv35": 15.87, "b5_asyconv45": 15.08, "b5_asyconv345": 14.69,
           "c3d_b8": 78.40, "b8_asyconv3": 76.43, "b8_asyconv4": 70.53, "b8_asyconv5": 67.65,
           "b8_asyconv34": 68.56, "b8_asyconv35": 65.68, "b8_asyconv45": 59.78, "b8_asyconv345": 57.82}
TABLE_3 = {"b5_m1": 16.07, "b5_m2": 16.04, "b5_m3": 15.87, "b5_m4": 15.84}


def n_params(name: str, **config: object) -> int:
    with torch.device("meta"):  # counts without allocating c3d-b8's 300 MB
        model = build_model(name, num_classes=101, **config)
    return sum(p.numel() for p in model.parameters())


def tiny(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, **TINY).eval()


def clip(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 8, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_every_paper_model_is_registered():
    assert set(MODELS_3D) == set(TABLE_2) | set(TABLE_3) | {"asym3d"}


@pytest.mark.parametrize("name", ["c3d_b8", "c3d_b5"])
def test_baselines_have_the_papers_parameter_count(name):
    assert n_params(name) == {"c3d_b8": 78_409_573, "c3d_b5": 17_444_965}[name]
    assert n_params(name) == pytest.approx(TABLE_2[name] * 1e6, rel=0.005)


@pytest.mark.parametrize("name", [n for n in TABLE_2 if "asyconv" in n])
def test_asymmetric_variants_match_table_2(name):
    assert n_params(name) == pytest.approx(TABLE_2[name] * 1e6, rel=0.01)


@pytest.mark.parametrize("name", sorted(TABLE_3))
def test_micronet_variants_match_table_3(name):
    assert n_params(name) == pytest.approx(TABLE_3[name] * 1e6, rel=0.01)


def test_cascades_and_micronets_save_what_the_tables_say():
    # one 3x3x3 256->256 (1,769,728) becomes 3 * (256*3*256 + 256) = 590,592: 1,179,136 fewer
    assert n_params("c3d_b5") - n_params("b5_asyconv4") == 1_179_136
    # conv3a+3b (2,654,720) -> 128*5*256 + 256*5*256 + 256*3*256 + 3*256 = 688,896
    assert n_params("c3d_b8") - n_params("b8_asyconv3") == 2_654_720 - 688_896
    # the left column's cascade saves ~0.03M, the middle column's ~0.2M (Table 3 differences)
    assert n_params("b5_m1") - n_params("b5_m2") == n_params("b5_m3") - n_params("b5_m4") == 30_688
    assert n_params("b5_m1") - n_params("b5_m3") == 196_352


def test_widths_scale_every_layer_and_size_sets_the_fc_input():
    assert n_params("c3d_b8", width=32) < n_params("c3d_b8") / 3
    with torch.device("meta"):
        b8 = build_model("c3d_b8", num_classes=3, size=64, num_segments=8)
        b5 = build_model("c3d_b5", num_classes=3, width=32)
    fc6 = b8.head[1]
    assert (fc6.in_features, fc6.out_features) == (512 * 1 * 3 * 3, 4096)  # 8x64x64 -> 1x3x3 (pool5 padded)
    fc6 = b5.head[1]
    assert (fc6.in_features, fc6.out_features) == (128 * 1 * 4 * 4, 1024)


def test_head_is_fc6_fc7_classifier_with_relus_and_dropout_before_each_fc():
    with torch.device("meta"):
        plain, dropped = (build_model("c3d_b5", num_classes=3, dropout=p) for p in (0.0, 0.5))
    assert [type(m).__name__ for m in plain.head] == [
        "Identity", "Linear", "ReLU", "Identity", "Linear", "ReLU", "Identity", "Linear"]
    assert [type(m).__name__ for m in dropped.head] == [
        "Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert all(m.p == 0.5 for m in dropped.head if isinstance(m, nn.Dropout))
    assert plain.state_dict().keys() == dropped.state_dict().keys()  # a dropout checkpoint loads without it


def test_micronet_m1_widths_and_output_channels():
    m = MicroNet(256, 256, "m1")
    convs = {name: mod for name, mod in m.named_modules() if isinstance(mod, nn.Conv3d)}
    assert {n: (c.in_channels, c.out_channels, c.kernel_size) for n, c in convs.items()} == {
        "linear.0": (256, 64, (1, 1, 1)),
        "middle.0.0": (256, 96, (1, 1, 1)), "middle.1.0": (96, 128, (3, 3, 3)),
        "left.0.0": (256, 16, (1, 1, 1)), "left.1.0.0": (16, 32, (3, 3, 3)),
        "left.1.1.0": (32, 32, (3, 3, 3)),
        "pool.1.0": (256, 32, (1, 1, 1))}
    m4 = MicroNet(256, 256, "m4")
    kernels = [c.kernel_size for c in m4.modules() if isinstance(c, nn.Conv3d)]
    assert kernels.count((1, 5, 1)) == kernels.count((1, 3, 1)) == 1 and kernels.count((3, 1, 1)) == 2
    assert m.out_channels == m4.out_channels == 256
    assert m4(torch.randn(1, 256, 2, 5, 5)).shape == (1, 256, 2, 5, 5)


@pytest.mark.parametrize("name", MODELS_3D)
def test_output_shape_and_rebuild_from_state_dict(name):
    m = tiny(name)
    x = clip()
    with torch.no_grad():
        y = m(x)
        assert y.shape == (2, 5) and torch.isfinite(y).all()
        again = tiny(name, seed=1)
        assert not torch.allclose(again(x), y)
        again.load_state_dict(m.state_dict())
        assert torch.equal(again(x), y)


@pytest.mark.parametrize("name", ["c3d_b8", "b5_asyconv3", "b8_asyconv45", "b5_m4", "asym3d"])
def test_wrong_number_of_frames_is_a_clear_error(name):
    with pytest.raises(ValueError, match="expected 8 frames per clip, got 4"):
        tiny(name)(torch.randn(1, 4, 3, 32, 32))
    with pytest.raises(ValueError, match="expected 32x32 frames, got 48x48"):
        tiny(name)(torch.randn(1, 8, 3, 48, 48))


def _support(net: nn.Module) -> torch.Tensor:
    """Where an impulse at the centre of a 9x9x9 volume reaches: positive weights, zero biases, so nothing
    cancels and the ReLUs pass everything the kernels touch."""
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, nn.Conv3d):
                mod.weight.fill_(1.0)
                mod.bias.zero_()
        x = torch.zeros(1, 1, 9, 9, 9)
        x[0, 0, 4, 4, 4] = 1.0
        return net(x)[0, 0] > 0


def _box(t: int, h: int, w: int) -> torch.Tensor:
    box = torch.zeros(9, 9, 9, dtype=torch.bool)
    box[4 - t // 2:5 + t // 2, 4 - h // 2:5 + h // 2, 4 - w // 2:5 + w // 2] = True
    return box


def test_the_three_kernel_cascade_sees_what_one_3x3x3_conv_sees():
    assert torch.equal(_support(asymmetric(1, 1, 3)), _box(3, 3, 3))
    assert torch.equal(_support(conv_relu(1, 1)), _box(3, 3, 3))


def test_the_five_kernel_cascade_sees_5x5_in_space_and_3_in_time():
    # Fig. 2b: two stacked 3x3x3 convs see 5x5x5; the cascade keeps H and W at 5 but time at 3 (Sec. 3.1)
    assert torch.equal(_support(asymmetric(1, 1, 5)), _box(3, 5, 5))
    assert torch.equal(_support(nn.Sequential(conv_relu(1, 1), conv_relu(1, 1))), _box(5, 5, 5))


def test_cascade_kernels_are_height_then_width_then_time():
    kernels = [m.kernel_size for m in asymmetric(4, 8, 5).modules() if isinstance(m, nn.Conv3d)]
    assert kernels == [(1, 5, 1), (1, 1, 5), (3, 1, 1)]


@pytest.mark.parametrize("name", MODELS_3D)
def test_onnx_export_matches_torch(name, tmp_path):
    m = tiny(name)
    path = export_onnx(m, clip(1), tmp_path / "m.onnx")
    x = clip(3, seed=2).numpy()  # batch 3: the batch axis is dynamic
    assert max_abs_diff(m, path, x) <= 1e-4
    assert max_abs_diff(m, path, np.ascontiguousarray(x[:, ::-1])) <= 1e-4


def test_train_config_carries_size_for_models_that_take_it():
    assert accepts("c3d_b5", "size") and not accepts("tsm_resnet18", "size")
    config = model_config("c3d_b5", 4, 8, 8, 32)
    assert config == {"num_classes": 4, "num_segments": 8, "width": 8, "size": 32}
    assert build_model("c3d_b5", **config)(torch.randn(1, 8, 3, 32, 32)).shape == (1, 4)
    assert model_config("tsm_resnet18", 4, 8, 8, 32) == {"num_classes": 4, "num_segments": 8, "width": 8}


@pytest.mark.parametrize("name", ["c3d_b8", "b8_asyconv345", "asym3d"])
def test_he_init_keeps_the_signal_through_the_deepest_chains(name):
    # PyTorch's default init shrinks each ReLU layer's output variance ~6-fold: c3d-b8's logits would start
    # ~1e-3 of the input's scale, and it never left chance on the synthetic set (docs/models.md)
    torch.manual_seed(0)
    m = build_model(name, num_classes=5, num_segments=16, width=16, size=32).eval()
    with torch.no_grad():
        logits = m(torch.randn(8, 16, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    assert logits.std() > 0.1
    assert all(mod.weight.std().item() == pytest.approx((2 / mod.weight[0].numel()) ** 0.5, rel=0.1)
               for mod in m.modules() if isinstance(mod, nn.Conv3d) and mod.weight.numel() > 1000)
