"""Progressive sparsity values and the 2:4 checker/mask on hand-made tensors."""

import numpy as np
import pytest
import torch

from train.compress.schedule import TwoFourRow, mask_2_4, meets_2_4, progressive_sparsity, two_four_report


@pytest.mark.parametrize(("target", "step", "values"), [
    (0.8, 0.1, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]),  # T-C3D's example: 0.8, +0.1 a epoch, 8 epochs
    (0.9, 0.1, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
    (0.95, 0.1, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]),
    (0.85, 0.2, [0.2, 0.4, 0.6, 0.8, 0.85]),
    (0.5, 0.25, [0.25, 0.5]),
    (0.3, 1.0, [0.3]),
    (0.07, 0.01, [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07]),  # 0.07 / 0.01 is 7.000000000000001 in floats
    (0.0, 0.1, []),
])
def test_progressive_sparsity_grows_by_step_and_ends_on_the_target(target, step, values):
    assert progressive_sparsity(target, step) == values


def test_progressive_sparsity_rejects_bad_arguments():
    for target, step in ((1.0, 0.1), (-0.1, 0.1), (0.5, 0.0), (0.5, 1.5)):
        with pytest.raises(ValueError):
            progressive_sparsity(target, step)


LINEAR_MET = np.array([[1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0],
                       [0.0, 0.0, 0.0, 0.0, -1.0, 2.0, 0.0, 0.0]])


def test_linear_groups_of_four_inputs():
    assert meets_2_4(LINEAR_MET)
    three = LINEAR_MET.copy()
    three[1, 5:8] = [2.0, 5.0, 1.0]  # 3 non-zeros in inputs 4..7 of row 1
    assert not meets_2_4(three)
    straddling = np.array([[0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]])  # 4 in a row, but 2 per aligned group
    assert meets_2_4(straddling)


def test_conv_groups_run_along_input_channels_not_memory_order():
    # (out=1, in=4, kh=1, kw=4): for every kernel position, input channels 0-1 are set: 2 of 4 -> met,
    # although every row of 4 consecutive weights in memory (along kw) is fully dense
    w = np.zeros((1, 4, 1, 4))
    w[0, :2] = 1.0
    assert meets_2_4(w)
    # and the transpose: kernel positions 0-1 set for all 4 channels -> 4 of 4 at those positions
    w = np.zeros((1, 4, 1, 4))
    w[..., :2] = 1.0
    assert not meets_2_4(w)


def test_input_channels_not_a_multiple_of_four_never_meet():
    assert not meets_2_4(np.zeros((2, 6)))
    assert not meets_2_4(np.zeros((4, 3, 3, 3)))  # the RGB stem
    with pytest.raises(ValueError, match="not a multiple of 4"):
        mask_2_4(np.ones((2, 6)))


def test_mask_keeps_the_two_largest_magnitudes_lower_index_on_ties():
    w = np.array([[0.1, -3.0, 2.0, 0.5, 1.0, 1.0, 1.0, 1.0]])
    assert mask_2_4(w).tolist() == [[False, True, True, False, True, True, False, False]]
    assert meets_2_4(w * mask_2_4(w))


def test_conv_mask_keeps_the_largest_input_channels_at_every_kernel_position():
    # |w[0, c, 0, k]| = (c + 1) * (k + 1): along input channels the top two are always c = 2, 3
    c, k = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    w = ((c + 1) * (k + 1) * (-1.0) ** k).reshape(1, 4, 1, 4)
    m = mask_2_4(w)
    assert m.shape == w.shape
    assert m[0, :, 0, :].tolist() == [[False] * 4, [False] * 4, [True] * 4, [True] * 4]


def test_torch_conv3d_weight_masked_then_met():
    torch.manual_seed(0)
    w = torch.nn.Conv3d(8, 4, 3).weight
    m = mask_2_4(w)
    assert m.shape == tuple(w.shape) and m.sum() == w.numel() // 2
    assert not meets_2_4(w) and meets_2_4(w.detach().numpy() * m)


def test_report_rows():
    conv = np.zeros((1, 4, 1, 4))
    conv[..., :2] = 1.0
    rows = two_four_report([("fc", LINEAR_MET), ("conv", torch.from_numpy(conv)), ("odd", np.ones((2, 6)))])
    assert rows == [TwoFourRow("fc", (2, 8), True, 6 / 16), TwoFourRow("conv", (1, 4, 1, 4), False, 0.5),
                    TwoFourRow("odd", (2, 6), False, 1.0)]
    with pytest.raises(ValueError, match="shape"):
        two_four_report([("bias", np.ones(4))])
