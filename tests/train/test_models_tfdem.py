"""ResNet-50 segment models and MSTSM + TFDEM (multiscale-tsm-tfdem-pruning.txt): parameter counts against
Tables 1-2 (UCF-101, 101 classes), shapes at tiny geometry, checkpoint round trip, the bottleneck's structure
and inner widths, TFDEM's frame differences, the Eq. 4 training loss through ``training_loss``, ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from export.onnx import export_onnx, max_abs_diff
from train.compress import surgery
from train.engine import Checkpoint
from train.models import build_model, list_models
from train.models.resnet import Bottleneck
from train.models.tfdem import TFDEM

NEW = ["tsn_resnet50", "tsm_resnet50", "mstsm_resnet50", "mstsm_tfdem_resnet18", "mstsm_tfdem_resnet50"]
TINY = {"num_classes": 5, "num_segments": 4, "width": 8}
UCF101 = 101


def n_params(name: str, **config: object) -> int:
    with torch.device("meta"):  # nothing allocated
        model = build_model(name, num_classes=UCF101, **config)
    return sum(p.numel() for p in model.parameters())


def truncated(n: int, decimals: int) -> float:
    """The paper's figures in millions are truncated, not rounded (all four of Table 2 agree only so)."""
    return int(n / 10 ** (6 - decimals)) / 10**decimals


def tiny(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, **TINY).eval()


def clip(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_the_new_models_are_registered():
    assert set(NEW) <= set(list_models())


# --- parameter counts -----------------------------------------------------------------------------------

def test_resnet50_backbone_is_torchvisions_resnet50_without_its_classifier():
    # torchvision resnet50: 25,557,032 with a 2048 -> 1000 fc (2,049,000)
    assert n_params("tsn_resnet50") == 25_557_032 - 2_049_000 + 2048 * UCF101 + UCF101 == 23_714_981
    assert n_params("tsm_resnet50") == n_params("tsn_resnet50")  # the shift has no weights


@pytest.mark.parametrize("name, paper", [("tsm_resnet50", 23.7), ("mstsm_resnet50", 24.2),
                                         ("mstsm_tfdem_resnet50", 24.5)])
def test_table_1_parameter_counts(name, paper):
    n = n_params(name)
    assert n == pytest.approx(paper * 1e6, rel=0.02)
    assert truncated(n, 1) == paper


def test_table_1_tsm_plus_tfdem():
    # "[16] + TFDEM": the TSM baseline with the same TFDEM path beside it, 23.9M
    tfdem = n_params("mstsm_tfdem_resnet50") - n_params("mstsm_resnet50")
    assert truncated(n_params("tsm_resnet50") + tfdem, 1) == 23.9


def test_mstsm_widening_is_two_sixteenths_of_every_bottleneck_conv1_input():
    # sum over the 16 bottlenecks of cin * planes = 4,329,472; MSTSM adds 2 * cin / 16 inputs to each conv1
    assert n_params("mstsm_resnet50") - n_params("tsm_resnet50") == 4_329_472 // 8 == 541_184


@pytest.mark.parametrize("fold_div, two_unit_div, paper", [(16, 8, 24.79), (8, 12, 24.43), (8, 16, 24.25),
                                                           (8, 20, 24.14)])
def test_table_2_shift_ratios(fold_div, two_unit_div, paper):
    # only the two-unit (concatenated) ratio changes the count; R_one replaces channels in place
    n = n_params("mstsm_resnet50", fold_div=fold_div, two_unit_div=two_unit_div)
    assert truncated(n, 2) == paper
    assert n == pytest.approx(paper * 1e6, rel=0.001)


def test_tfdem_adds_the_same_parameters_to_every_backbone():
    # its own path from the frames (Eq. 3's W_TFDEM): 4 stride-2 convs 3-16-32-64-128, a 128 -> 128 conv,
    # 5 BNs, a 128 -> 101 FC
    convs = 9 * (3 * 16 + 16 * 32 + 32 * 64 + 64 * 128 + 128 * 128)
    expected = convs + 2 * (16 + 32 + 64 + 128 + 128) + 128 * UCF101 + UCF101
    assert expected == 258_421
    assert n_params("mstsm_tfdem_resnet50") - n_params("mstsm_resnet50") == expected
    assert n_params("mstsm_tfdem_resnet18") - n_params("mstsm_resnet18") == expected
    assert n_params("mstsm_tfdem_resnet50", tfdem_width=8) - n_params("mstsm_resnet50") < expected / 3


# --- ResNet-50 structure and inner widths -----------------------------------------------------------------

def test_resnet50_has_3_4_6_3_bottlenecks_with_the_shift_widening_conv1():
    m = tiny("mstsm_resnet50")
    stages = m.backbone.stages
    assert [len(s) for s in stages] == [3, 4, 6, 3]
    for i, stage in enumerate(stages):
        planes = 8 * 2**i
        for j, b in enumerate(stage):
            assert isinstance(b, Bottleneck)
            cin = (8 if i == 0 else 4 * planes // 2) if j == 0 else 4 * planes
            assert b.conv1[0].in_channels == cin + 2 * (cin // 16)
            assert b.conv1[0].kernel_size == (1, 1) and b.conv3[0].kernel_size == (1, 1)
            assert (b.conv1[0].out_channels, b.conv2[0].out_channels, b.conv3[0].out_channels) == (
                planes, planes, 4 * planes)
            assert b.conv2[0].stride == ((2, 2) if i > 0 and j == 0 else (1, 1))
            assert (b.downsample is not None) == (j == 0)
            assert b.conv3[1].weight.abs().sum() == 0  # zero-initialised: the block starts as identity
    assert m.fc.in_features == 8 * 8 * 4


def test_resnet50_inner_widths_are_two_per_bottleneck_in_order():
    widths = [3 + k for k in range(32)]
    m = build_model("tsm_resnet50", **TINY, inner_widths=widths)
    got = [w for b in m.modules() if isinstance(b, Bottleneck)
           for w in (b.conv1[0].out_channels, b.conv2[0].out_channels)]
    assert got == widths
    convs = [b for b in m.modules() if isinstance(b, Bottleneck)]
    assert all(b.conv2[0].in_channels == b.conv1[0].out_channels for b in convs)
    assert all(b.conv3[0].in_channels == b.conv2[0].out_channels for b in convs)
    assert m(clip()).shape == (2, 5)
    with pytest.raises(ValueError, match=r"expected 32 positive ints \(two per bottleneck"):
        build_model("tsm_resnet50", **TINY, inner_widths=[4] * 16)


def test_surgery_prunes_both_bottleneck_groups_and_keeps_the_residual_channels():
    torch.manual_seed(0)
    big = build_model("mstsm_tfdem_resnet50", **TINY).eval()
    groups = surgery.groups(big)
    assert len(groups) == 32 and [g.producer.rsplit(".", 2)[-2] for g in groups[:2]] == ["conv1", "conv2"]
    assert [g.producer for g in surgery.selected(groups, ("backbone.stages.3.2",))] == [
        "backbone.stages.3.2.conv1.0", "backbone.stages.3.2.conv2.0"]
    small, config, plans = surgery.filter_prune(big, "mstsm_tfdem_resnet50", dict(TINY), "l1", 0.5)
    assert config["inner_widths"] == [g.width - g.width // 2 for g in groups]
    b = small.backbone.stages[1][0]
    assert (b.conv1[0].out_channels, b.conv2[0].in_channels, b.conv2[0].out_channels,
            b.conv3[0].in_channels, b.conv3[0].out_channels) == (8, 8, 8, 8, 64)
    shapes = {k: v.shape for k, v in small.state_dict().items()}
    assert all(shapes[k] == v.shape for k, v in big.state_dict().items() if k.startswith("tfdem."))
    build_model("mstsm_tfdem_resnet50", **config).load_state_dict(small.state_dict())


# --- every new model at tiny geometry -------------------------------------------------------------------

@pytest.mark.parametrize("name", NEW)
def test_output_shape_in_eval_and_train_mode(name):
    m = tiny(name)
    x = clip()
    with torch.no_grad():
        y = m(x)
        assert y.shape == (2, 5) and torch.isfinite(y).all()
        assert m.train()(x).shape == y.shape


@pytest.mark.parametrize("name", NEW)
def test_checkpoint_round_trip(name, tmp_path):
    m = tiny(name)
    ckpt = Checkpoint(name, dict(TINY), m.state_dict(), list("abcde"), {"preprocess": {}, "clip": {}})
    ckpt.save(tmp_path / "m.pt")
    again = Checkpoint.load(tmp_path / "m.pt").build()
    other = tiny(name, seed=1)
    x = clip()
    with torch.no_grad():
        assert not torch.allclose(other(x), m(x))
        assert torch.equal(again(x), m(x))


# --- TFDEM ------------------------------------------------------------------------------------------------

def test_a_static_clip_has_exactly_zero_feature_differences():
    m = tiny("mstsm_tfdem_resnet18")
    frame = torch.randn(2, 1, 3, 32, 32)
    with torch.no_grad():
        d = m.tfdem.differences(frame.expand(2, 4, 3, 32, 32).contiguous())
        assert d.shape == (2, 3, 128, 4, 4)  # T-1 pairs, 8w channels, 32 / 16 upsampled x2
        assert torch.count_nonzero(d) == 0
        moving = m.tfdem.differences(clip())
        assert (moving.flatten(2).abs().amax(2) > 1e-3).all()  # every pair of a moving clip differs


def test_the_differences_are_current_minus_next_frame():
    m = tiny("mstsm_tfdem_resnet18")
    x = clip()
    with torch.no_grad():
        f = m.tfdem.upsample(m.tfdem.encode(x.reshape(8, 3, 32, 32))).reshape(2, 4, 128, 4, 4)
        d = m.tfdem.differences(x)
    assert torch.allclose(d[:, 1], f[:, 1] - f[:, 2], atol=1e-6)
    assert torch.allclose(d, f[:, :-1] - f[:, 1:], atol=1e-6)


def test_tfdem_scores_depend_on_frame_order_and_are_added_to_the_main_path():
    m = tiny("mstsm_tfdem_resnet18")
    x = clip()
    with torch.no_grad():
        tfdem, rev = m.tfdem(x), m.tfdem(x.flip(1))
        assert (tfdem - rev).abs().max() > 1e-4
        main = super(type(m), m).forward(x)  # the SegmentRecognizer part alone
        assert torch.allclose(m(x), main + tfdem, atol=1e-6)
        assert (tfdem.abs().max() > 1e-4) and (main.abs().max() > 1e-4)


def test_tfdem_needs_two_frames():
    with pytest.raises(ValueError, match="num_segments >= 2, got 1"):
        TFDEM(5, 1)


# --- the training loss (Sec. 3.4, Eq. 2-4) --------------------------------------------------------------

def _trained_step(name: str = "mstsm_tfdem_resnet18"):
    m = tiny(name).train()
    y = torch.tensor([1, 3])
    out = m(clip())
    return m, y, out


def test_training_loss_is_the_papers_total_loss():
    m, y, out = _trained_step()
    main, tfdem = m._stash
    loss = m.training_loss(y)
    want = F.cross_entropy(main, y) + F.cross_entropy(tfdem, y)  # Eq. 4: L_main + L_TFDEM
    assert loss.shape == () and loss.item() == pytest.approx(want.item(), abs=1e-6)
    assert loss.item() > F.cross_entropy(out, y).item()  # not the fused output's cross-entropy


def test_training_loss_trains_each_path_on_its_own_scores():
    m, y, _ = _trained_step()
    main, tfdem = m._stash
    total = m.training_loss(y)
    params = dict(m.named_parameters())
    got = torch.autograd.grad(total, list(params.values()), retain_graph=True)
    tfdem_params = [p for k, p in params.items() if k.startswith("tfdem.")]
    main_params = [p for k, p in params.items() if not k.startswith("tfdem.")]
    alone = {"tfdem": torch.autograd.grad(F.cross_entropy(tfdem, y), tfdem_params, retain_graph=True),
             "main": torch.autograd.grad(F.cross_entropy(main, y), main_params, allow_unused=True)}
    g_tfdem = [g for k, g in zip(params, got, strict=True) if k.startswith("tfdem.")]
    g_main = [g for k, g in zip(params, got, strict=True) if not k.startswith("tfdem.")]
    assert all(g.abs().max() > 0 for g in g_tfdem[:1] + g_tfdem[-2:])  # first conv, the FC
    for a, b in zip(g_tfdem, alone["tfdem"], strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(g_main, alone["main"], strict=True):
        assert torch.allclose(a, torch.zeros_like(a) if b is None else b, atol=1e-6)


def test_training_loss_without_a_training_forward_is_a_clear_error():
    m = tiny("mstsm_tfdem_resnet18")
    y = torch.tensor([0, 1])
    with pytest.raises(RuntimeError, match="needs a training-mode forward"):
        m.training_loss(y)
    with torch.no_grad():
        m.eval()(clip())
    with pytest.raises(RuntimeError, match="needs a training-mode forward"):
        m.training_loss(y)
    m.train()(clip())
    m.eval()  # switching mode drops what the forward kept
    with pytest.raises(RuntimeError, match="needs a training-mode forward"):
        m.training_loss(y)
    m.train()(clip())
    assert m.training_loss(y).item() > 0
    with pytest.raises(RuntimeError, match="once per forward"):
        m.training_loss(y)


# --- export ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mstsm_resnet50", "mstsm_tfdem_resnet18", "mstsm_tfdem_resnet50"])
def test_onnx_export_matches_torch(name, tmp_path):
    m = tiny(name)
    with torch.no_grad():  # realistic BN statistics so the parity is checked on non-trivial activations
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                nn.init.uniform_(mod.weight, 0.5, 1.5)
                mod.momentum = None
        m.train()(clip(4, seed=3))
    m.eval()
    path = export_onnx(m, clip(1), tmp_path / "m.onnx")
    x = clip(3, seed=2).numpy()  # batch 3: the batch axis is dynamic
    assert max_abs_diff(m, path, x) <= 1e-4
    assert max_abs_diff(m, path, np.ascontiguousarray(x[:, ::-1])) <= 1e-4
    with torch.no_grad():
        assert m(torch.from_numpy(x)).abs().max() > 1e-3
