"""The CUDA kernels against the references, on a GPU. Skipped (with the reason) where torch sees no GPU or
the kernels are not built; CI has neither, so tests/kernels/test_temporal_shift.py and test_csr.py hold the
semantics there."""

import numpy as np
import pytest
import torch

from kernels import CSRMatrix, csr_spmv, ops, temporal_shift
from kernels.cuda import library
from kernels.reference import temporal_shift_torch

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
    pytest.mark.skipif(torch.cuda.is_available() and library("temporal_shift") is None,
                       reason="CUDA kernels not built (no nvcc)"),
]

DTYPES = [torch.float32, torch.float16]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("two", [None, 16])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("hw", [(7, 7), (8, 8), (2, 3), (56, 56)])  # vector widths 1, 2, 4/8
def test_shift_forward_is_exact(dtype, two, causal, hw):
    x = torch.randn(3 * 8, 64, *hw, device="cuda", dtype=dtype)
    torch.testing.assert_close(temporal_shift(x, 8, two_unit_div=two, causal=causal),
                               temporal_shift_torch(x, 8, 8, two, causal), rtol=0, atol=0)


def test_shift_on_an_unaligned_view_falls_back_to_scalar_loads():
    base = torch.randn(8 * 32 * 4 * 4 + 1, device="cuda")
    x = base[1:].view(8, 32, 4, 4)  # 4-byte offset: no 16-byte vectors
    torch.testing.assert_close(temporal_shift(x, 4), temporal_shift_torch(x, 4), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("two", [None, 16])
@pytest.mark.parametrize("causal", [False, True])
def test_shift_backward_matches_autograd_of_the_reference(dtype, two, causal):
    x = torch.randn(2 * 8, 64, 5, 5, device="cuda", dtype=dtype, requires_grad=True)
    gy = torch.randn_like(temporal_shift_torch(x.detach(), 8, 8, two, causal))
    temporal_shift(x, 8, two_unit_div=two, causal=causal).backward(gy)
    xr = x.detach().clone().requires_grad_()
    temporal_shift_torch(xr, 8, 8, two, causal).backward(gy)
    torch.testing.assert_close(x.grad, xr.grad, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_shift_in_place(dtype):
    x = torch.randn(2 * 8, 64, 6, 6, device="cuda", dtype=dtype)
    expect = temporal_shift_torch(x, 8)
    assert temporal_shift(x, 8, inplace=True) is x
    torch.testing.assert_close(x, expect, rtol=0, atol=0)


def test_tsm_model_trains_the_same_on_the_kernel_and_the_reference(monkeypatch):
    from train.models import build_model

    torch.manual_seed(0)
    m = build_model("mstsm_resnet18", num_classes=5, num_segments=4, width=16).cuda()
    x = torch.randn(2, 4, 3, 32, 32, device="cuda")
    m(x).sum().backward()
    grads = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    monkeypatch.setattr(ops, "_use_cuda_kernel", lambda *a, **k: False)
    m(x).sum().backward()
    for g, p in zip(grads, m.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-4), (np.float16, 2e-2)])
@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("k", [None, 1, 3, 16, 21])
@pytest.mark.parametrize("warp_min", [0, 10**9])  # force warp-per-row, then thread-per-row
def test_spmm_matches_the_reference(dtype, tol, sparsity, k, warp_min, monkeypatch):
    monkeypatch.setattr(ops, "WARP_PER_ROW_MIN_NNZ", warp_min)
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((300, 517)).astype(dtype)
    dense[rng.random(dense.shape) < sparsity] = 0
    a = CSRMatrix.from_dense(dense)
    x = rng.standard_normal((517,) if k is None else (517, k)).astype(dtype)
    y = csr_spmv(a, torch.from_numpy(x).cuda())
    assert y.is_cuda and y.dtype == torch.from_numpy(x).dtype
    np.testing.assert_allclose(y.cpu().numpy().astype(np.float64), a.to_scipy().astype(np.float64) @ x,
                               rtol=tol, atol=tol * 10)


def test_swapped_sparse_classifier_runs_on_the_gpu():
    from kernels.sparse_linear import swap_sparse_linears

    lin = torch.nn.Linear(512, 101).cuda()
    with torch.no_grad():
        lin.weight[torch.rand_like(lin.weight) < 0.9] = 0
    model = torch.nn.Sequential(lin)
    x = torch.randn(5, 512, device="cuda")
    before = model(x)
    assert swap_sparse_linears(model) == ["0"]
    torch.testing.assert_close(model(x), before, rtol=1e-4, atol=1e-4)
