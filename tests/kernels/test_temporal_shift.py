"""Temporal shift semantics: hand-computed TSM and MSTSM cases, numpy == torch over many shapes, the inverse
map the CUDA backward uses, and in-place rules. These run everywhere; tests/kernels/test_cuda.py holds the
kernel itself to the same references on a GPU."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import temporal_shift, temporal_shift_step
from kernels.reference import ShiftSpec, temporal_shift_numpy, temporal_shift_torch


def frames(n: int, t: int, c: int, hw: int = 1) -> np.ndarray:
    """Value = 100*frame + channel (+ position/1000), so every output names where it came from."""
    v = (100 * np.arange(t)[:, None] + np.arange(c)[None, :]).astype(np.float32)
    x = np.broadcast_to(v[None, :, :, None], (n, t, c, hw)) + np.arange(hw, dtype=np.float32) / 1000
    return np.ascontiguousarray(x.reshape(n * t, c, hw, 1))


def test_tsm_default_is_the_papers_shift():
    # C=16, fold 8: channels 0-1 take t+1, channels 2-3 take t-1, zeros at the clip ends, the rest unchanged
    y = temporal_shift(frames(1, 3, 16), 3)[:, :, 0, 0]
    assert y[:, 0].tolist() == [100, 200, 0]
    assert y[:, 1].tolist() == [101, 201, 0]
    assert y[:, 2].tolist() == [0, 2, 102]
    assert y[:, 3].tolist() == [0, 3, 103]
    assert y[:, 4:].tolist() == frames(1, 3, 16)[:, 4:, 0, 0].tolist()
    assert np.array_equal(temporal_shift_numpy(frames(1, 3, 16), 3), temporal_shift(frames(1, 3, 16), 3))
    # the torch reference (what ONNX export traces) has the same default
    assert np.array_equal(temporal_shift_torch(torch.from_numpy(frames(1, 3, 16)), 3).numpy()[:, :, 0, 0], y)


def test_clips_in_a_batch_do_not_leak_into_each_other():
    x = frames(2, 2, 8)
    x[2:] += 10_000  # second clip
    y = temporal_shift(x, 2)[:, :, 0, 0]
    assert y[1, 0] == 0 and y[2, 1] == 0  # channel 0 of the last frame of clip 1 is padding, not clip 2
    assert y[2, 0] == x[3, 0, 0, 0]


def test_mstsm_replaces_one_unit_and_concatenates_two_unit_shifts():
    # C=16: one-unit folds of 2 (ch 0-1 from t+1, 2-3 from t-1) replace; two-unit folds of 1 are appended:
    # output 16 is channel 4 from t+2, output 17 is channel 5 from t-2
    x = frames(1, 4, 16)
    y = temporal_shift(x, 4, two_unit_div=16)[:, :, 0, 0]
    assert y.shape == (4, 18)
    assert y[:, 0].tolist() == [100, 200, 300, 0]
    assert y[:, 2].tolist() == [0, 2, 102, 202]
    assert y[:, 4].tolist() == [4, 104, 204, 304]  # the original channel is kept
    assert y[:, 16].tolist() == [204, 304, 0, 0]
    assert y[:, 17].tolist() == [0, 0, 5, 105]


def test_causal_shift_takes_only_the_past():
    # C=16 online TSM: channels 0-1 of frame t are frame t-1's (zero at t=0); nothing from t+1
    x = frames(1, 3, 16)
    y = temporal_shift(x, 3, causal=True)[:, :, 0, 0]
    assert y.shape == (3, 16)
    assert y[:, 0].tolist() == [0, 0, 100] and y[:, 1].tolist() == [0, 1, 101]
    assert y[:, 2:].tolist() == x[:, 2:, 0, 0].tolist()
    # causal MSTSM: the two-unit channel after the fold (channel 2) of frame t-2 is appended (C + C//16)
    y = temporal_shift(frames(1, 4, 16), 4, two_unit_div=16, causal=True)[:, :, 0, 0]
    assert y.shape == (4, 17) and y[:, 16].tolist() == [0, 0, 2, 102]
    assert ShiftSpec(16, 8, 16, causal=True).buffer_channels == 2 + 2 * 1


@pytest.mark.parametrize("two", [None, 16])
def test_one_frame_at_a_time_with_a_buffer_is_the_causal_clip_shift(two):
    """What makes the per-frame online model exact: frame t of the causal clip shift from frame t and the
    buffer carried from frame t-1, starting from zeros."""
    n, t, c = 2, 5, 32
    x = torch.randn(n * t, c, 3, 3)
    want = temporal_shift(x, t, two_unit_div=two, causal=True).reshape(n, t, -1, 3, 3)
    v = x.reshape(n, t, c, 3, 3)
    buffer = torch.zeros(n, ShiftSpec(c, 8, two, causal=True).buffer_channels, 3, 3)
    for i in range(t):
        y, buffer = temporal_shift_step(v[:, i], buffer, 8, two)
        assert torch.equal(y, want[:, i])


def test_spec_tables_and_bands():
    spec = ShiftSpec(16, 8, 16)
    src, off = spec.src_off
    assert spec.out_channels == 18 and not spec.in_place_ok and ShiftSpec(16).in_place_ok
    assert src.tolist() == list(range(16)) + [4, 5]
    assert off.tolist() == [1, 1, -1, -1] + [0] * 12 + [2, -2]
    assert spec.bands() == [(0, 2, 1), (2, 2, -1), (4, 12, 0), (4, 1, 2), (5, 1, -2)]


@pytest.mark.parametrize("bad", [dict(fold_div=1), dict(two_unit_div=1)])
def test_bad_folds_are_refused(bad):
    with pytest.raises(ValueError, match="must be >= 2"):
        temporal_shift(frames(1, 2, 8), 2, **bad)


def test_leading_dim_must_be_whole_clips():
    with pytest.raises(ValueError, match="not a multiple of n_segments=4"):
        temporal_shift(np.zeros((6, 8, 2, 2), np.float32), 4)
    with pytest.raises(ValueError, match="not a multiple of n_segments=4"):  # the torch reference, eagerly
        temporal_shift_torch(torch.zeros(6, 8, 2, 2), 4)


shapes = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(4, 40), st.integers(1, 7), st.integers(1, 5))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, fold_div=st.sampled_from([2, 3, 4, 8]), two=st.sampled_from([None, 4, 8, 16]),
       dtype=st.sampled_from([np.float32, np.float16]))
@pytest.mark.parametrize("causal", [False, True])
def test_numpy_and_torch_references_agree(shape, fold_div, two, dtype, causal):
    n, t, c, h, w = shape
    if two and 2 * (c // fold_div) + 2 * (c // two) > c:
        two = None
    x = np.random.default_rng(0).standard_normal((n * t, c, h, w)).astype(dtype)
    a = temporal_shift_numpy(x, t, fold_div, two, causal)
    b = temporal_shift_torch(torch.from_numpy(x), t, fold_div, two, causal).numpy()
    assert a.dtype == b.dtype == dtype
    np.testing.assert_array_equal(a, b)


def adjoint_numpy(gy: np.ndarray, t: int, spec: ShiftSpec) -> np.ndarray:
    """grad_x through the inverse (ptr, oc, off) map, exactly as the CUDA backward kernel walks it."""
    ptr, oc, off = spec.inverse
    g = gy.reshape(-1, t, spec.out_channels, *gy.shape[2:])
    gx = np.zeros((g.shape[0], t, spec.channels, *gy.shape[2:]), np.float64)
    for c in range(spec.channels):
        for k in range(ptr[c], ptr[c + 1]):
            for ti in range(t):
                to = ti - off[k]
                if 0 <= to < t:
                    gx[:, ti, c] += g[:, to, oc[k]]
    return gx.reshape(-1, spec.channels, *gy.shape[2:])


@settings(max_examples=30, deadline=None)
@given(shape=shapes, two=st.sampled_from([None, 16, 8]), causal=st.booleans())
def test_inverse_map_is_the_autograd_gradient(shape, two, causal):
    n, t, c, h, w = shape
    c = max(c, 16)
    spec = ShiftSpec(c, 8, two, causal)
    x = torch.randn(n * t, c, h, w, dtype=torch.float64, requires_grad=True)
    gy = torch.randn(n * t, spec.out_channels, h, w, dtype=torch.float64)
    temporal_shift(x, t, two_unit_div=two, causal=causal).backward(gy)
    np.testing.assert_allclose(adjoint_numpy(gy.numpy(), t, spec), x.grad.numpy(), atol=1e-12)


def test_in_place_on_numpy_and_cpu_tensors():
    x = frames(2, 4, 16, hw=3)
    expect = temporal_shift(x, 4)
    assert temporal_shift(x, 4, inplace=True) is x
    np.testing.assert_array_equal(x, expect)
    xt = torch.from_numpy(frames(2, 4, 16, hw=3))
    assert temporal_shift(xt, 4, inplace=True) is xt
    np.testing.assert_array_equal(xt.numpy(), expect)


def test_in_place_is_refused_where_unsafe():
    with pytest.raises(ValueError, match="no channels are added"):
        temporal_shift(frames(1, 4, 16), 4, two_unit_div=16, inplace=True)
    with pytest.raises(ValueError, match="requires grad"):
        temporal_shift(torch.zeros(4, 16, 1, 1, requires_grad=True), 4, inplace=True)


def test_onnx_export_traces_slices_and_concats(tmp_path):
    import onnx

    class Shift(torch.nn.Module):
        def forward(self, x):
            return temporal_shift(x, 4, two_unit_div=16)

    path = tmp_path / "shift.onnx"
    torch.onnx.export(Shift(), (torch.randn(8, 16, 2, 2),), str(path), opset_version=17, dynamo=False)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "Concat" in ops and "Slice" in ops and "ScatterND" not in ops


def test_shift_spec_limits_are_exact_one_line_errors():
    with pytest.raises(ValueError, match=r"^temporal_shift: fold_div and two_unit_div must be >= 2$"):
        ShiftSpec(16, fold_div=1)
    with pytest.raises(ValueError, match=r"^temporal_shift: fold_div and two_unit_div must be >= 2$"):
        ShiftSpec(16, 8, two_unit_div=1)
    assert ShiftSpec(8, fold_div=4, two_unit_div=4).out_channels == 12  # 2*2 + 2*2 = 8: exactly fits
    assert ShiftSpec(8, fold_div=16, two_unit_div=2).out_channels == 16  # 2 is the smallest divisor allowed
    with pytest.raises(ValueError, match=r"^temporal_shift: 8 channels cannot hold the two-unit folds$"):
        ShiftSpec(8, fold_div=2, two_unit_div=4)  # 2*4 + 2*2 = 12 > 8
    with pytest.raises(ValueError, match=r"^temporal_shift: leading dim 10 is not a multiple of n_segments=3$"):
        temporal_shift_numpy(np.zeros((10, 8, 1, 1), np.float32), 3)
    with pytest.raises(ValueError, match="n_segments=0"):
        temporal_shift_numpy(np.zeros((10, 8, 1, 1), np.float32), 0)
