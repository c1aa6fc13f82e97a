"""Dual-action Stream's losses against hand-computed values (Eq. 1 MARS, Eq. 2 multi-level MAE, Eq. 3 Gram
with its (n-1) C T H W normalisation), the feature taps, and a frozen teacher that a student's training
step leaves exactly as it was (weights and BatchNorm statistics)."""

import pytest
import torch
from torch import nn

from train.distill import FeatureTap, as_block, distill_loss, freeze, gram, gram_loss, mae_loss, mars_loss


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_mars_is_the_mean_squared_error_of_the_penultimate_features():
    assert mars_loss(t([1.0, 2.0]), t([0.0, 0.0])).item() == pytest.approx(2.5)  # (1 + 4) / 2


def test_mae_averages_each_levels_mean_absolute_error_over_levels():
    students = [torch.ones(1, 2, 2), t([1.0, -3.0])]
    teachers = [torch.zeros(1, 2, 2), t([0.0, 0.0])]
    assert mae_loss(students, teachers).item() == pytest.approx((1.0 + 2.0) / 2)


def test_gram_is_the_inner_product_of_flattened_channels():
    f = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # one clip, C=2, T*H*W=2
    assert gram(f).tolist() == [[[5.0, 11.0], [11.0, 25.0]]]


def test_gram_loss_averages_the_entries_over_levels_and_positions():
    f = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # |G| sums to 52 over 4 entries; C = 2, T*H*W = 2
    zero = torch.zeros_like(f)
    assert gram_loss([f], [zero]).item() == pytest.approx(52 / 4 / (1 * 2))  # the paper's 52 / (1 * C*T*H*W), / C
    big = torch.ones(1, 3, 2, 2, 2)  # C=3, T=H=W=2: every G entry is 8, 9 of them
    assert gram_loss([f, big], [zero, torch.zeros_like(big)]).item() == pytest.approx(13 / (2 * 2) + 8 / (2 * 8))
    batch = torch.cat([f, 2 * f])  # per clip, then the batch mean: (6.5 + 4 * 6.5) / 2
    assert gram_loss([batch], [torch.zeros_like(batch)]).item() == pytest.approx((6.5 + 26) / 2)


def test_the_loss_kinds_and_their_errors():
    s, z = [t([1.0, 1.0]), t([2.0, 0.0])], [t([0.0, 0.0]), t([0.0, 0.0])]
    assert distill_loss("mars", s, z).item() == pytest.approx(2.0)  # the last level only
    assert distill_loss("mae+gram", s, z).item() == pytest.approx(
        distill_loss("mae", s, z).item() + distill_loss("gram", s, z).item())
    with pytest.raises(ValueError, match="--distill-loss 'l2': expected one of mae\\+gram, mae, gram, mars"):
        distill_loss("l2", s, z)
    with pytest.raises(ValueError, match="level 0: student features \\(1, 2\\) against the teacher's \\(1, 3\\)"):
        mae_loss([t([1.0, 1.0])], [t([0.0, 0.0, 0.0])])


def test_taps_keep_named_levels_and_regroup_frames_per_clip():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    tap = FeatureTap(net, ["0", "2"], segments=3)
    net(torch.randn(2 * 3, 3, 5, 5))
    first, last = tap.get()
    assert first.shape == (2, 4, 3, 5, 5) and last.shape == (2, 2, 3, 5, 5)  # (N, C, T, H, W)
    assert torch.equal(as_block(torch.ones(4, 7), 2), torch.ones(4, 7))  # pooled features stay
    tap.remove()
    with pytest.raises(ValueError, match="no module named 'head'"):
        FeatureTap(net, ["head"])


def test_a_frozen_teacher_is_untouched_by_the_students_training():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    teacher(torch.randn(4, 2, 6, 6))  # give BatchNorm some statistics
    freeze(teacher)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    opt = torch.optim.SGD(student.parameters(), lr=0.1)
    for _ in range(3):
        rgb, flow = torch.randn(4, 3, 6, 6), torch.randn(4, 2, 6, 6)
        with torch.no_grad():
            target = teacher(flow)
        loss = distill_loss("mae+gram", [student(rgb)], [target])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # BN stats included
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
