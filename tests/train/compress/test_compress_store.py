"""``.edgez``: relative indices with fillers on hand-made rows, an exact round trip of a pruned
weight-shared model, a payload near the entropy bound, and clear refusals of files that are not one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from compress_helpers import checkpoint, tiny_model

from edge.errors import EdgeError
from train.compress import kmeans, masks, store
from train.engine import Checkpoint


def test_relative_indices_bridge_long_gaps_with_filler_zeros() -> None:
    codes = np.array([0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
    gaps, values = store.relative(codes, bits=3)  # a gap symbol covers 1..8 positions
    # 3 at 1 (gap 2 -> 1); 5 at 11 (gap 10: a filler of 8, then 2); 7 at 12; 1 at 26 (gap 14: 8, then 6)
    assert gaps.tolist() == [1, 7, 1, 0, 7, 5]
    assert values.tolist() == [3, 0, 5, 7, 0, 1]
    assert store.absolute(gaps, values, codes.size).tolist() == codes.tolist()
    exact = np.zeros(16, dtype=np.int64)
    exact[[7, 15]] = [2, 4]  # gaps of exactly 8: no filler needed
    assert store.relative(exact, 3)[0].tolist() == [7, 7]
    assert store.relative(np.zeros(5, dtype=np.int64), 3)[0].size == 0


def test_csc_order_walks_columns_of_the_out_by_fan_in_matrix() -> None:
    w = np.arange(12).reshape(2, 3, 2)  # out 2, fan-in 6
    assert store.csc_order(w).tolist() == [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]
    assert np.array_equal(store.from_csc(store.csc_order(w), w.shape), w)


def test_entropy_bits_of_a_known_stream() -> None:
    assert store.entropy_bits(np.array([0, 0, 1, 1, 2, 2, 3, 3])) == pytest.approx(16.0)
    assert store.entropy_bits(np.array([5, 5, 5])) == 0.0


@pytest.fixture(scope="module")
def compressed():
    model = tiny_model()
    masks.prune_to(model, masks.by_kind(model, 0.9, 0.95))
    kmeans.share(model, conv_bits=8, fc_bits=5)
    return checkpoint(model)


def test_round_trip_is_bit_exact(compressed, tmp_path) -> None:
    report = store.write_edgez(compressed, tmp_path / "m.edgez")
    back = Checkpoint.load(tmp_path / "m.edgez")
    assert back.model == compressed.model and back.config == compressed.config
    assert back.labels == compressed.labels
    assert back.state_dict.keys() == compressed.state_dict.keys()
    for k, v in compressed.state_dict.items():
        assert back.state_dict[k].dtype == v.dtype and torch.equal(back.state_dict[k], v), k
    assert [p.name for p in tmp_path.iterdir()] == ["m.edgez"]  # no temp file left behind
    assert back.train_state == {}
    quantized = Checkpoint(compressed.model, compressed.config, compressed.state_dict, compressed.labels,
                           compressed.input, {"qat": {"fc": 0.25}, "optimizer": {}})
    store.write_edgez(quantized, tmp_path / "q.edgez")
    assert Checkpoint.load(tmp_path / "q.edgez").train_state == {"qat": {"fc": 0.25}}  # INT8 scales travel
    assert report.file_bytes == (tmp_path / "m.edgez").stat().st_size


def test_payload_is_within_3_percent_of_the_entropy_bound(compressed, tmp_path) -> None:
    report = store.write_edgez(compressed, tmp_path / "m.edgez")
    assert report.entropy_bits <= report.payload_bits <= 1.03 * report.entropy_bits
    layer = next(x for x in report.layers if x.name == "backbone.stages.3.1.conv2.0")
    assert layer.nonzero == layer.weights - math.floor(0.9 * layer.weights)
    assert layer.codebook <= 256
    fc = next(x for x in report.layers if x.name == "fc")
    assert fc.codebook <= 32
    dense_fp32 = sum(v.numel() * 4 for v in compressed.state_dict.values())
    assert report.file_bytes < dense_fp32 / 4


def test_bad_files_are_refused_in_one_line(compressed, tmp_path) -> None:
    (tmp_path / "x.edgez").write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(EdgeError, match=r"x.edgez: not an .edgez file"):
        store.read_edgez(tmp_path / "x.edgez")
    store.write_edgez(compressed, tmp_path / "v.edgez")
    data = bytearray((tmp_path / "v.edgez").read_bytes())
    data[5] = 9
    (tmp_path / "v.edgez").write_bytes(bytes(data))
    with pytest.raises(EdgeError, match="version 9; this edge reads version 1"):
        store.read_edgez(tmp_path / "v.edgez")
    whole = tmp_path / "m.edgez"
    store.write_edgez(compressed, whole)
    (tmp_path / "cut.edgez").write_bytes(whole.read_bytes()[:3000])  # an interrupted copy
    with pytest.raises(EdgeError, match=r"cut.edgez: damaged .edgez \(\w+: .+\)$"):
        store.read_edgez(tmp_path / "cut.edgez")
    (tmp_path / "head.edgez").write_bytes(whole.read_bytes()[:10] + b"not zlib")
    with pytest.raises(EdgeError, match=r"head.edgez: damaged .edgez \(error: "):
        store.read_edgez(tmp_path / "head.edgez")
