"""The online (causal) TSM/MSTSM models: no frame sees the future, and the per-frame model fed one frame
at a time with its shift buffers reproduces the clip model's per-frame scores (the TSM paper's online
model, Sec. 4)."""

import pytest
import torch

from train.models import build_model
from train.models.online import OnlineStep, is_online

CASES = [("tsm_online_resnet18", {"width": 16}), ("mstsm_online_resnet18", {"width": 16}),
         ("tsm_online_mobilenetv2", {"width": 0.5}), ("mstsm_online_mobilenetv2", {"width": 0.5})]


def model(name, options):
    torch.manual_seed(0)
    return build_model(name, num_classes=5, num_segments=6, **options).eval()


@pytest.mark.parametrize("name, options", CASES)
def test_a_frames_scores_do_not_depend_on_later_frames(name, options):
    m = model(name, options)
    x = torch.randn(1, 6, 3, 32, 32)
    later = x.clone()
    later[:, 4:] = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        a, b = m.frame_logits(x), m.frame_logits(later)
    assert torch.equal(a[:, :4], b[:, :4]) and not torch.equal(a[:, 4:], b[:, 4:])


@pytest.mark.parametrize("name, options", CASES)
def test_frame_by_frame_equals_the_clip_model(name, options):
    m = model(name, options)
    step = OnlineStep(m)
    x = torch.randn(2, 6, 3, 32, 32)
    buffers = step.zero_buffers((3, 32, 32), batch=2)
    assert len(buffers) == len(step.shifts) > 0
    got = []
    with torch.no_grad():
        for t in range(6):
            logits, *buffers = step(x[:, t], *buffers)
            got.append(logits)
        want = m.frame_logits(x)
    torch.testing.assert_close(torch.stack(got, 1), want, rtol=0, atol=1e-5)
    assert torch.allclose(want.mean(1), m(x))  # the clip model averages exactly these


def test_mstsm_buffers_hold_two_past_frames_of_its_two_unit_channels():
    step = OnlineStep(model("mstsm_online_resnet18", {"width": 16}))
    c, h, w = step.buffer_shapes((3, 32, 32))[0]  # first block: 16 channels, fold 2, two-unit 1
    assert (c, h, w) == (2 + 2 * 1, 8, 8)


def test_offline_models_have_no_per_frame_form():
    assert not is_online(build_model("tsm_resnet18", num_classes=3, num_segments=2, width=4))
    with pytest.raises(ValueError, match="only \\*_online_\\* models"):
        OnlineStep(build_model("tsn_resnet18", num_classes=3, num_segments=2, width=4))
