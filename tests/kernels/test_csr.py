"""CSR storage and Y = A X: hand cases, scipy.sparse as the oracle over shapes/sparsity/dtypes, the kinds
csr_spmv accepts and returns, and the pruned-Linear swap."""

import numpy as np
import pytest
import scipy.sparse
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import CSRMatrix, csr_spmv
from kernels.sparse_linear import SparseLinear, swap_sparse_linears

A = np.array([[0, 2, 0, 0], [0, 0, 0, 0], [1, 0, 3, 4]], dtype=np.float32)


def test_from_dense_hand_case():
    m = CSRMatrix.from_dense(A)
    assert m.row_ptr.tolist() == [0, 1, 1, 4]
    assert m.col_idx.tolist() == [1, 0, 2, 3]
    assert m.values.tolist() == [2, 1, 3, 4]
    assert (m.nnz, m.shape, m.row_ptr.dtype, m.col_idx.dtype) == (4, (3, 4), np.int32, np.int32)
    assert csr_spmv(m, np.array([1, 10, 100, 1000], np.float32)).tolist() == [20, 0, 4301]


def test_scipy_round_trip_and_torch_input():
    s = scipy.sparse.random(50, 70, density=0.2, format="csr", random_state=0, dtype=np.float32)
    m = CSRMatrix.from_scipy(s)
    assert (m.to_scipy() != s).nnz == 0
    np.testing.assert_array_equal(m.to_dense(), s.toarray())
    assert CSRMatrix.from_dense(torch.from_numpy(s.toarray())).nnz == s.nnz


def test_malformed_csr_is_refused():
    with pytest.raises(ValueError, match="row_ptr does not describe 2 rows"):
        CSRMatrix(np.array([0, 1]), np.array([0]), np.array([1.0]), (2, 2))
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        CSRMatrix(np.array([0, 1, 1]), np.array([5]), np.array([1.0]), (2, 2))


@pytest.mark.parametrize("col, ok", [(-1, False), (0, True), (2, True), (3, False)])
def test_column_indices_are_bounded_by_exactly_cols(col, ok):
    make = lambda: CSRMatrix(np.array([0, 1, 1]), np.array([col]), np.array([1.0]), (2, 3))  # noqa: E731
    if ok:
        assert make().to_dense()[0, col] == 1.0
    else:
        with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
            make()


@pytest.mark.parametrize("row_ptr, nnz", [([1, 1, 1], 0), ([0, 1, 2], 1), ([0, 1], 1), ([0, 1, 1, 1], 1)])
def test_row_pointers_must_start_at_zero_end_at_nnz_and_cover_every_row(row_ptr, nnz):
    with pytest.raises(ValueError, match="row_ptr does not describe 2 rows"):
        CSRMatrix(np.array(row_ptr), np.zeros(nnz, np.int32), np.ones(nnz, np.float32), (2, 3))


def test_values_and_indices_must_pair_up_and_values_keep_fp16():
    with pytest.raises(ValueError, match="^CSRMatrix: values and col_idx differ in length$"):
        CSRMatrix(np.array([0, 1, 2]), np.array([0, 1]), np.array([1.0]), (2, 3))
    half = CSRMatrix(np.array([0, 1, 1]), np.array([2]), np.array([1.5], np.float16), (2, 3))
    wide = CSRMatrix(np.array([0, 1, 1]), np.array([2]), np.array([1.5], np.float64), (2, 3))
    assert half.values.dtype == np.float16 and wide.values.dtype == np.float32
    assert (half.density, half.mean_row_length) == (1 / 6, 0.5)


def test_from_dense_takes_tensors_that_need_grad_keeps_or_sets_the_dtype_and_refuses_non_matrices():
    w = torch.tensor([[0.0, 1.5], [2.5, 0.0], [0.0, 0.0]], requires_grad=True)  # a layer's weight
    m = CSRMatrix.from_dense(w)
    assert m.row_ptr.tolist() == [0, 1, 2, 2] and m.values.tolist() == [1.5, 2.5]
    assert CSRMatrix.from_dense(w, dtype=np.float16).values.dtype == np.float16
    assert CSRMatrix.from_dense(np.eye(2, dtype=np.float16)).values.dtype == np.float16
    assert CSRMatrix.from_dense(np.eye(2, dtype=np.float64)).values.dtype == np.float32
    assert CSRMatrix.from_dense(np.array([[0.1, -0.5, 0.3]]), threshold=0.2).col_idx.tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"^CSRMatrix.from_dense: expected a 2-D matrix, got shape \(3,\)$"):
        CSRMatrix.from_dense(np.zeros(3))


def test_device_arrays_are_uploaded_once_per_device():
    m = CSRMatrix.from_dense(A)
    cpu = m.device_arrays("cpu")
    assert [t.tolist() for t in cpu] == [m.row_ptr.tolist(), m.col_idx.tolist(), m.values.tolist()]
    assert m.device_arrays("cpu") is cpu
    meta = m.device_arrays(torch.device("meta"))  # a second device: its own copies, not the CPU ones
    assert all(t.device.type == "meta" for t in meta) and m.device_arrays("cpu") is cpu


def test_wrong_x_shape_names_the_expected_one():
    with pytest.raises(ValueError, match=r"expected \(4,\) or \(4, k\)"):
        csr_spmv(CSRMatrix.from_dense(A), np.zeros(3, np.float32))


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 80), cols=st.integers(1, 80), sparsity=st.sampled_from([0.0, 0.5, 0.8, 0.95, 1.0]),
       k=st.sampled_from([None, 1, 3, 16, 21]), dtype=st.sampled_from([np.float32, np.float16]),
       seed=st.integers(0, 2**16))
def test_matches_scipy(rows, cols, sparsity, k, dtype, seed):
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((rows, cols)).astype(dtype)
    dense[rng.random((rows, cols)) < sparsity] = 0
    m = CSRMatrix.from_dense(dense)
    x = rng.standard_normal((cols,) if k is None else (cols, k)).astype(dtype)
    expect = m.to_scipy().astype(np.float64) @ x.astype(np.float64)
    tol = 1e-4 if dtype == np.float32 else 2e-2
    for y in (csr_spmv(m, x), csr_spmv(m, torch.from_numpy(x)).numpy()):
        assert y.shape == expect.shape and y.dtype == dtype
        np.testing.assert_allclose(y.astype(np.float64), expect, rtol=tol, atol=tol * np.sqrt(cols))


def test_wide_right_hand_sides_are_split_into_padded_launches():
    from kernels.ops import k_chunks

    assert k_chunks(1) == [(0, 1, 1)]
    assert k_chunks(3) == [(0, 3, 4)]
    assert k_chunks(16) == [(0, 16, 16)]
    assert k_chunks(21) == [(0, 16, 16), (16, 5, 8)]
    assert k_chunks(0) == []
    for k in range(1, 70):
        chunks = k_chunks(k)
        assert sum(w for _, w, _ in chunks) == k and all(w <= p <= 16 and p in (1, 2, 4, 8, 16) for _, w, p in chunks)


def test_returns_the_kind_it_was_given():
    m = CSRMatrix.from_dense(A)
    assert isinstance(csr_spmv(m, np.ones(4, np.float32)), np.ndarray)
    y = csr_spmv(m, torch.ones(4, 2))
    assert isinstance(y, torch.Tensor) and y.device.type == "cpu" and y.shape == (3, 2)


def pruned_linear(n_in: int, n_out: int, sparsity: float, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    lin = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        lin.weight[torch.rand_like(lin.weight) < sparsity] = 0
    return lin


def test_sparse_linear_matches_the_dense_layer_on_any_leading_shape():
    lin = pruned_linear(64, 10, 0.9)
    sp = SparseLinear.from_linear(lin)
    assert sp.weight_csr.nnz == int((lin.weight != 0).sum())
    x = torch.randn(2, 3, 64)
    torch.testing.assert_close(sp(x), lin(x), atol=1e-5, rtol=1e-5)


def test_swap_replaces_only_layers_pruned_enough_and_keeps_outputs():
    model = torch.nn.Sequential(pruned_linear(32, 48, 0.8), torch.nn.ReLU(), pruned_linear(48, 5, 0.1, seed=1))
    x = torch.randn(4, 32)
    before = model(x)
    assert swap_sparse_linears(model, min_sparsity=0.5) == ["0"]
    assert isinstance(model[0], SparseLinear) and isinstance(model[2], torch.nn.Linear)
    torch.testing.assert_close(model(x), before, atol=1e-5, rtol=1e-5)


def test_swap_finds_a_recognizers_pruned_classifier():
    from train.models import build_model

    m = build_model("tsm_resnet18", num_classes=7, num_segments=2, width=8).eval()
    fc_name, fc = next((n, mod) for n, mod in m.named_modules() if isinstance(mod, torch.nn.Linear))
    with torch.no_grad():
        fc.weight[torch.rand_like(fc.weight) < 0.9] = 0
    x = torch.randn(3, 2, 3, 32, 32)
    before = m(x)
    assert swap_sparse_linears(m) == [fc_name]
    torch.testing.assert_close(m(x), before, atol=1e-5, rtol=1e-5)


def test_references_accumulate_in_fp32_like_the_kernels():
    # 1e8 + 1 rounds back to 1e8 in fp32, so the row sums to 0 where float64 would give 1: the references
    # must show the kernels' fp32 rounding, not hide it behind a wider accumulator
    from kernels.reference import csr_spmm_numpy, csr_spmm_torch

    m = CSRMatrix.from_dense(np.array([[1e8, 1.0, -1e8]], np.float32))
    x = np.ones(3, np.float32)
    assert csr_spmm_numpy(m.row_ptr, m.col_idx, m.values, x).tolist() == [0.0]
    t = [torch.from_numpy(a) for a in (m.row_ptr, m.col_idx, m.values)]
    assert csr_spmm_torch(*t, torch.from_numpy(x)).tolist() == [0.0]
    assert np.array([1e8, 1.0, -1e8]).sum() == 1.0  # the difference a float64 accumulator makes
