"""Every registered model: shapes, checkpoint round trip, and the property that separates TSN from TSM."""

import pytest
import torch

from train.models import build_model, list_models

TINY = {"resnet18": 8, "mobilenetv2": 0.25}


def tiny(name: str, **kw):
    torch.manual_seed(0)
    return build_model(name, num_classes=5, num_segments=4, width=TINY[name.split("_", 1)[1]], **kw).eval()


def test_registry_lists_tsn_and_tsm_for_both_backbones():
    assert set(list_models()) >= {"tsn_resnet18", "tsm_resnet18", "tsn_mobilenetv2", "tsm_mobilenetv2"}


def test_unknown_model_names_the_available_ones():
    with pytest.raises(KeyError, match="tsm_resnet18"):
        build_model("nope", num_classes=2)


@pytest.mark.parametrize("name", list_models())
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


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenetv2"])
def test_tsn_is_blind_to_frame_order_and_tsm_is_not(backbone):
    x = torch.randn(1, 4, 3, 32, 32)
    rev = x.flip(1)
    tsn, tsm = tiny(f"tsn_{backbone}"), tiny(f"tsm_{backbone}")
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


def test_wrong_number_of_frames_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 4 frames"):
        tiny("tsm_resnet18")(torch.randn(1, 3, 3, 32, 32))
