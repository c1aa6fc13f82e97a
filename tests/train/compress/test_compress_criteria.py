"""Each criterion on hand-made weights where the paper's choice can be worked out by hand."""

import math

import numpy as np
import pytest
import torch

from train.compress.criteria import CRITERIA, correlation, covariance, geometric_median, l1, select_pruned

# zero-mean, mutually orthogonal patterns over 4 weights: cov(a, a) = 1, cov(a, b) = 0
A = np.array([1.0, -1.0, 1.0, -1.0])
B = np.array([1.0, 1.0, -1.0, -1.0])
C = np.array([1.0, -1.0, -1.0, 1.0])


def test_l1_sums_absolute_weights_and_prunes_the_smallest_filter():
    w = np.array([[1.0, -1.0, 1.0], [0.1, 0.2, -0.1], [3.0, 0.0, 0.0], [-0.5, 0.5, 0.5]])
    np.testing.assert_allclose(l1(w), [3.0, 0.4, 3.0, 1.5], rtol=1e-12)
    assert select_pruned(l1(w), 0.25).tolist() == [1]
    assert select_pruned(l1(w), 0.5).tolist() == [1, 3]


def test_conv_filters_are_flattened_over_in_and_kernel():
    w = np.ones((3, 2, 2, 2))
    w[1] *= 0.5
    w[2, 1, 1, 0] = -4.0
    np.testing.assert_allclose(l1(w), [8.0, 4.0, 11.0])
    assert select_pruned(l1(w), 0.4).tolist() == [1]


def test_covariance_prunes_the_filter_with_the_largest_mean_covariance_diagonal_included():
    # filter 0 is independent of the others but has variance 100: m_0 = (100 + 0 + 0 + 0) / 4 = 25.
    # MOMP's m_i sums all N columns, the diagonal too, so it is the most "dependent" and goes first
    # (without the diagonal m_0 would be 0 and it would go last).
    w = np.stack([10 * B, A, A + 0.1 * C, C])
    np.testing.assert_allclose(covariance(w), [-25.0, -0.5, -0.5275, -0.275], rtol=1e-12)
    assert select_pruned(covariance(w), 0.25).tolist() == [0]
    assert select_pruned(covariance(w), 0.5).tolist() == [0, 2]


def test_correlation_ignores_scale_and_prunes_the_filter_most_correlated_with_the_rest():
    # same filters: filter 2 correlates 0.995 with filter 1 and 0.0995 with filter 3, so its mean is largest
    w = np.stack([10 * B, A, A + 0.1 * C, C])
    r = 1 / math.sqrt(1.01)
    np.testing.assert_allclose(correlation(w), [-0.25, -(1 + r) / 4, -(1 + 1.1 * r) / 4, -(1 + 0.1 * r) / 4],
                               rtol=1e-12)
    assert select_pruned(correlation(w), 0.25).tolist() == [2]
    assert select_pruned(correlation(w), 0.5).tolist() == [1, 2]


def test_dependence_is_ranked_by_magnitude_so_strongly_anti_correlated_filters_are_pruned_too():
    # m = [-0.5, 0.5, 0.5, 0.75]: filter 0 is anti-aligned with the others; |m_i| > tau prunes it like the
    # positive ones (ties go to the lower index), where a signed ranking would keep it to the last
    w = np.stack([A, -A + B, -A - B, -A + C])
    np.testing.assert_allclose(covariance(w), [-0.5, -0.5, -0.5, -0.75], rtol=1e-12)
    assert select_pruned(covariance(w), 0.5).tolist() == [0, 3]


def test_constant_filters_have_zero_dependence_and_no_nan():
    # 0.1 three times has a float64 mean of 0.10000000000000002: still a constant filter
    # of the varying filters, 3 has by far the largest variance (covariance prunes it); 2 and 4 are nearly
    # collinear, and 4 correlates more with 3 than 2 does (correlation prunes 4)
    w = np.array([[0.0, 0.0, 0.0], [0.1, 0.1, 0.1], [1.0, 2.0, 3.0], [10.0, -3.0, 5.0], [1.1, 2.0, 3.2]])
    for criterion, first in ((covariance, 3), (correlation, 4)):
        s = criterion(w)
        assert np.isfinite(s).all()
        assert s[0] == 0.0 and s[1] == 0.0
        assert select_pruned(s, 0.25).tolist() == [first]
    assert correlation(np.zeros((3, 5))).tolist() == [0.0, 0.0, 0.0]


def test_fan_in_of_one_is_defined():
    w = np.array([[1.0], [2.0], [-3.0]])
    assert covariance(w).tolist() == [0.0, 0.0, 0.0]
    assert correlation(w).tolist() == [0.0, 0.0, 0.0]


def test_geometric_median_is_the_medoid_and_its_nearest_kernels_go_first():
    # (0, 0) has the least total distance; the outlier (5, 5) pulls the mean to (0.8, 0.75), nearest to
    # (1, 0), so a distance-to-mean rule would prune (1, 0) first. Eq. 7 prunes K_GM itself (d = 0) first.
    pts = np.array([[5.0, 5.0], [0.0, -2.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.5], [-1.2, 0.0]])
    np.testing.assert_allclose(geometric_median(pts), [math.sqrt(50), 2.0, 1.0, 0.0, 1.5, 1.2], rtol=1e-12)
    assert select_pruned(geometric_median(pts), 0.2).tolist() == [3]
    assert select_pruned(geometric_median(pts), 0.5).tolist() == [2, 3, 5]
    np.testing.assert_array_equal(geometric_median(pts.reshape(6, 2, 1, 1)), geometric_median(pts))


def test_geometric_median_takes_the_first_kernel_on_a_tie():
    pts = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert geometric_median(pts).tolist() == [0.0, 1.0]


def test_torch_weights_of_fc_and_conv_layers_give_the_numpy_scores():
    torch.manual_seed(0)
    for layer in (torch.nn.Linear(6, 5), torch.nn.Conv3d(2, 4, 3)):
        w = layer.weight  # requires grad: the criteria detach it
        for name, criterion in CRITERIA.items():
            np.testing.assert_array_equal(criterion(w), criterion(w.detach().double().numpy()), err_msg=name)


def test_criteria_refuse_a_bias_shaped_or_non_finite_weight():
    with pytest.raises(ValueError, match="shape"):
        l1(np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        covariance(np.array([[1.0, np.nan], [0.0, 1.0]]))


@pytest.mark.parametrize(("n", "ratio", "count"), [(10, 0.0, 0), (10, 0.1, 1), (10, 0.35, 3), (10, 0.99, 9),
                                                   (100, 0.29, 29), (3, 0.7, 2), (1, 0.9, 0), (10, 1 - 1e-10, 9)])
def test_select_pruned_removes_floor_ratio_n_and_never_every_filter(n, ratio, count):
    assert len(select_pruned(np.arange(n)[::-1], ratio)) == count
    assert select_pruned(np.arange(n)[::-1], ratio).tolist() == list(range(n - count, n))


def test_select_pruned_breaks_ties_by_lower_index_and_rejects_bad_ratios():
    assert select_pruned([1.0, 0.0, 1.0, 0.0, 0.0], 0.6).tolist() == [1, 3, 4]
    assert select_pruned([2.0, 1.0, 1.0, 1.0], 0.5).tolist() == [1, 2]
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="outside"):
            select_pruned([1.0, 2.0], bad)
