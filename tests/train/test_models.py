"""Every registered model: shapes, checkpoint round trip, and the property that separates TSN from TSM."""

import pytest
import torch

from train.models import build_model, list_models

TINY = {"resnet18": 8, "mobilenetv2": 0.25, "resnet50": 8}  # by backbone, the name's last part
# the 2D segment models; the 3D models have their own tests in test_models_3d.py
SEGMENT_MODELS = [n for n in list_models() if n.startswith(("tsn_", "tsm_", "mstsm_"))]


def tiny(name: str, width: float | None = None):
    torch.manual_seed(0)
    width = width or TINY[name.rsplit("_", 1)[1]]
    return build_model(name, num_classes=5, num_segments=4, width=width).eval()


def test_registry_lists_tsn_tsm_and_mstsm_for_both_backbones():
    assert set(list_models()) >= {f"{k}_{b}" for k in ("tsn", "tsm", "mstsm") for b in TINY}


def test_unknown_model_names_the_available_ones():
    with pytest.raises(KeyError, match="tsm_resnet18"):
        build_model("nope", num_classes=2)


@pytest.mark.parametrize("name", SEGMENT_MODELS)
def test_output_shape_and_rebuild_from_state_dict(name):
    m = tiny(name)
    x = torch.randn(2, 4, 3, 32, 32)
    y = m(x)
    assert y.shape == (2, 5)
    again = tiny(name)
    for p in again.parameters():
        torch.nn.init.normal_(p)
    again.load_state_dict(m.state_dict())
    assert torch.allclose(again(x), y, atol=1e-6)


@pytest.mark.parametrize("kind", ["tsm", "mstsm"])
@pytest.mark.parametrize("backbone", sorted(TINY))
def test_tsn_is_blind_to_frame_order_and_shift_models_are_not(backbone, kind):
    x = torch.randn(1, 4, 3, 32, 32)
    rev = x.flip(1)
    tsn, tsm = tiny(f"tsn_{backbone}"), tiny(f"{kind}_{backbone}")
    with torch.no_grad():
        for m in (tsn, tsm):  # realistic BN statistics and non-zero residual branches so the shift matters
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    torch.nn.init.uniform_(mod.weight, 0.5, 1.5)
                    mod.momentum = None
            m.train()(torch.cat([x, rev]))
            m.eval()
        assert torch.allclose(tsn(x), tsn(rev), atol=1e-5)
        assert (tsm(x) - tsm(rev)).abs().max() > 1e-3


def test_tsm_shifts_an_eighth_of_channels_each_way_in_every_resnet_block():
    m = tiny("tsm_resnet18")
    shifts = [mod for mod in m.modules() if type(mod).__name__ == "TemporalShift"]
    assert len(shifts) == 8 and all(s.fold_div == 8 and s.n_segments == 4 for s in shifts)


@pytest.mark.parametrize("name, block, count", [("mstsm_resnet18", "BasicBlock", 8),
                                                 ("mstsm_resnet50", "Bottleneck", 16)])
def test_mstsm_widens_each_block_input_by_its_two_unit_folds(name, block, count):
    m = tiny(name, width=32)
    blocks = [b for b in m.modules() if type(b).__name__ == block]
    assert len(blocks) == count
    for b in blocks:
        cin = b.downsample[0].in_channels if b.downsample else b.last_bn().num_features  # no shortcut: cin = cout
        assert b.conv1[0].in_channels == cin + 2 * (cin // 16)
        assert (b.temporal.fold_div, b.temporal.two_unit_div) == (8, 16)


def test_wrong_number_of_frames_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 4 frames"):
        tiny("tsm_resnet18")(torch.randn(1, 3, 3, 32, 32))


@pytest.mark.parametrize("name, params", [
    # torchvision's mobilenet_v2 (3,504,872 at 1000 classes) with a 101-class head: 1280 * 899 + 899 fewer
    ("tsm_mobilenetv2", 2_353_253),
    ("tsm_resnet18", 11_228_325),  # resnet18's 11,689,512 with a 101-class head
])
def test_default_width_is_the_papers_network(name, params):
    with torch.device("meta"):  # a 64x MobileNetV2 (width read as a ResNet stem) would not fit in memory
        model = build_model(name, num_classes=101)
    assert sum(p.numel() for p in model.parameters()) == params
