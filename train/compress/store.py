"""``model.edgez``: a pruned, weight-shared checkpoint stored the Deep Compression way (T-C3D Sec. III-F).

Each Conv/Linear weight, seen as an (out, fan_in) matrix, is walked in column-major (CSC) order. Its
non-zero entries are stored as (gap, code) pairs: ``gap`` is the distance from the previous stored entry
minus 1, in ``index_bits`` bits; a longer gap is bridged by filler entries (gap 2^bits - 1, code 0 = the
value 0). ``code`` indexes the layer's codebook, whose entry 0 is 0.0. The gap and code streams of every
layer are Huffman coded with their own canonical code (``bitarray``). Every other tensor (BatchNorm,
biases) is stored raw. Decoding gives back the exact tensors (bit for bit). The byte layout is in
docs/compression.md ("The .edgez format").
"""

from __future__ import annotations

import json
import lzma
import math
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bitarray import bitarray
from bitarray.util import canonical_decode, canonical_huffman

from edge.atomic import atomic_path
from edge.errors import EdgeError
from train.compress.masks import targets
from train.engine import Checkpoint
from train.models import build_model

MAGIC = b"EDGEZ"
VERSION = 1
_HEAD = struct.Struct("<5sBI")  # magic, version, length of the zlib-compressed JSON header that follows


def relative(codes: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(gaps, values) of the non-zero ``codes`` (flat, in storage order), filler entries included."""
    span = 2**bits
    pos = np.flatnonzero(codes)
    d = np.diff(pos, prepend=-1)
    fillers = (d - 1) // span
    owner = np.repeat(np.arange(pos.size), fillers + 1)
    last = np.r_[owner[1:] != owner[:-1], True] if owner.size else np.zeros(0, dtype=bool)
    gaps = np.where(last, (d - fillers * span - 1)[owner], span - 1)
    values = np.where(last, codes[pos][owner], 0)
    return gaps.astype(np.int64), values.astype(np.int64)


def absolute(gaps: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Inverse of ``relative``: the flat code array of ``size`` entries."""
    codes = np.zeros(size, dtype=np.int64)
    codes[np.cumsum(gaps + 1) - 1] = values
    return codes


def entropy_bits(symbols: np.ndarray) -> float:
    """n * H(p) of a stream: the fewest bits any symbol-by-symbol code could spend on it."""
    if symbols.size == 0:
        return 0.0
    p = np.unique(symbols, return_counts=True)[1] / symbols.size
    return float(-symbols.size * (p * np.log2(p)).sum())


def canonical_code(lengths: np.ndarray) -> tuple[dict[int, bitarray], list[int], list[int]]:
    """The canonical Huffman code of per-symbol code lengths (0 = unused symbol): shorter codes first,
    symbols in increasing order within a length, each code the previous one plus 1 (shifted left when the
    length grows). Returns (code, count per length, symbols in order), the last two as
    ``bitarray.util.canonical_decode`` takes them. So the lengths alone describe the whole code."""
    used = np.flatnonzero(lengths)
    order = sorted(used.tolist(), key=lambda sym: (int(lengths[sym]), sym))
    count = [0] * (int(lengths.max(initial=0)) + 1)
    code, previous, table = 0, 0, {}
    for sym in order:
        n = int(lengths[sym])
        code <<= n - previous
        table[sym] = bitarray(format(code, f"0{n}b"), endian="big")
        count[n] += 1
        code, previous = code + 1, n
    return table, count, order


@dataclass
class Stream:
    """One Huffman-coded stream: each symbol's code length (what is stored) and the coded bits."""

    lengths: np.ndarray  # uint8, indexed by symbol
    bits: bitarray

    @classmethod
    def encode(cls, symbols: np.ndarray) -> Stream:
        lengths = np.zeros(int(symbols.max(initial=0)) + 1, dtype=np.uint8)
        if symbols.size:
            for sym, code in canonical_huffman(Counter(symbols.tolist()))[0].items():
                lengths[sym] = len(code)
        table = canonical_code(lengths)[0]
        bits = bitarray(endian="big")
        bits.encode(table, symbols.tolist())
        return cls(lengths, bits)

    def decode(self, n: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        _, count, symbol = canonical_code(self.lengths)
        return np.fromiter(canonical_decode(self.bits, count, symbol), dtype=np.int64, count=n)


def codebook_of(weight: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(codebook float32 with 0.0 first, codes) such that codebook[codes] == weight exactly."""
    w = weight.detach().cpu().numpy().astype(np.float32)
    values = np.unique(w[w != 0])
    codebook = np.concatenate([np.zeros(1, np.float32), values])
    codes = np.searchsorted(values, w) + 1
    codes[w == 0] = 0
    return codebook, codes


def csc_order(codes: np.ndarray) -> np.ndarray:
    """Flat codes of an (out, ...) weight walked column by column of its (out, fan_in) matrix."""
    return codes.reshape(codes.shape[0], -1).T.reshape(-1)


def from_csc(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return flat.reshape(-1, shape[0]).T.reshape(shape)


@dataclass
class LayerStats:
    name: str
    weights: int
    nonzero: int
    fillers: int
    codebook: int
    payload_bits: int  # Huffman-coded gaps + codes
    entropy_bits: float  # what the same gap and code streams cost at their entropy


@dataclass
class StoreReport:
    """Sizes of one store. ``weights_bytes`` (Huffman payload + codebooks + code lengths) is what the zlib
    and lzma figures compress too: the sparse quantized weights, as dense code arrays plus codebooks. The
    file adds the raw BatchNorm/bias tensors and the header."""

    layers: list[LayerStats]
    file_bytes: int
    tables_bytes: int  # codebooks + Huffman code lengths
    zlib_bytes: int  # zlib level 9 of the code arrays (uint8, or uint32 past 256 values) + codebooks
    lzma_bytes: int  # ... and lzma preset 9

    @property
    def weights_bytes(self) -> int:
        return math.ceil(self.payload_bits / 8) + self.tables_bytes

    @property
    def payload_bits(self) -> int:
        return sum(x.payload_bits for x in self.layers)

    @property
    def entropy_bits(self) -> float:
        return sum(x.entropy_bits for x in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"file_bytes": self.file_bytes, "weights_bytes": self.weights_bytes, "payload_bits": self.payload_bits,
                "entropy_bits": round(self.entropy_bits, 1), "zlib_bytes": self.zlib_bytes,
                "lzma_bytes": self.lzma_bytes, "layers": [vars(x) for x in self.layers]}


class _Blob:
    """Arrays appended to one byte string; each is referenced from the header by (offset, dtype, shape)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def put(self, array: np.ndarray) -> dict[str, Any]:
        a = np.ascontiguousarray(array)  # (which makes a 0-d array 1-d: the shape comes from ``array``)
        ref = {"offset": self.size, "dtype": a.dtype.str, "shape": list(np.shape(array))}
        self.parts.append(a.tobytes())
        self.size += a.nbytes
        return ref


def _get(blob: memoryview, ref: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(ref["dtype"])
    n = math.prod(ref["shape"])
    return np.frombuffer(blob, dtype, n, ref["offset"]).reshape(ref["shape"]).copy()


def _put_stream(blob: _Blob, s: Stream) -> dict[str, Any]:
    return {"lengths": blob.put(s.lengths), "bits": len(s.bits),
            "data": blob.put(np.frombuffer(s.bits.tobytes(), np.uint8))}


def _get_stream(blob: memoryview, ref: dict[str, Any]) -> Stream:
    bits = bitarray(endian="big")
    bits.frombytes(_get(blob, ref["data"]).tobytes())
    return Stream(_get(blob, ref["lengths"]), bits[: ref["bits"]])


def write_edgez(ckpt: Checkpoint, path: str | Path, conv_index_bits: int = 8, fc_index_bits: int = 5) -> StoreReport:
    """Store ``ckpt`` as ``path`` (written to a temp file, then renamed) and report its sizes."""
    model = ckpt.build()
    layers, stats, blob, raw = [], [], _Blob(), []
    coded, tables = set(), 0
    for name, (m, kind) in targets(model).items():
        codebook, codes = codebook_of(m.weight)
        bits = conv_index_bits if kind == "conv" else fc_index_bits
        gaps, values = relative(csc_order(codes), bits)
        g, v = Stream.encode(gaps), Stream.encode(values)
        layers.append({"name": f"{name}.weight", "shape": list(codes.shape), "index_bits": bits,
                       "entries": int(gaps.size), "codebook": blob.put(codebook),
                       "gaps": _put_stream(blob, g), "values": _put_stream(blob, v)})
        stats.append(LayerStats(name, codes.size, int(np.count_nonzero(codes)), int(gaps.size - np.count_nonzero(codes)),
                                int(codebook.size), len(g.bits) + len(v.bits), entropy_bits(gaps) + entropy_bits(values)))
        tables += codebook.nbytes + g.lengths.nbytes + v.lengths.nbytes
        raw.append(codes.astype(np.uint8 if codebook.size <= 256 else np.uint32).tobytes() + codebook.tobytes())
        coded.add(f"{name}.weight")
    dense = [{"name": k, **blob.put(v.detach().cpu().numpy())} for k, v in ckpt.state_dict.items() if k not in coded]
    header = {"format": "edgez", "version": VERSION, "model": ckpt.model, "config": ckpt.config,
              "labels": ckpt.labels, "input": ckpt.input, "layers": layers, "dense": dense,
              "qat": ckpt.train_state.get("qat")}  # INT8 scales of a QAT model, or null
    head = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)  # names and offsets: text
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(_HEAD.pack(MAGIC, VERSION, len(head)))
        f.write(head)
        for part in blob.parts:
            f.write(part)
    sparse = b"".join(raw)
    return StoreReport(stats, Path(path).stat().st_size, tables, len(zlib.compress(sparse, 9)),
                       len(lzma.compress(sparse, preset=9)))


def read_edgez(path: str | Path) -> Checkpoint:
    """Decode ``path`` into the checkpoint it stores; every tensor is bit-identical to what was written."""
    data = Path(path).read_bytes()
    if len(data) < _HEAD.size or data[:5] != MAGIC:
        raise EdgeError(f"{path}: not an .edgez file (it does not start with {MAGIC!r})")
    _, version, n = _HEAD.unpack_from(data)
    if version != VERSION:
        raise EdgeError(f"{path}: .edgez version {version}; this edge reads version {VERSION}")
    try:
        return _decode(data[_HEAD.size:_HEAD.size + n], memoryview(data)[_HEAD.size + n:])
    except Exception as e:  # a truncated or damaged file fails in zlib, json, numpy or bitarray, each its own way
        first = str(e).partition("\n")[0]
        raise EdgeError(f"{path}: damaged .edgez ({type(e).__name__}: {first})") from None


def _decode(head: bytes, blob: memoryview) -> Checkpoint:
    header = json.loads(zlib.decompress(head))
    state: dict[str, torch.Tensor] = {d["name"]: torch.from_numpy(_get(blob, d)) for d in header["dense"]}
    for layer in header["layers"]:
        shape, size = tuple(layer["shape"]), math.prod(layer["shape"])
        gaps = _get_stream(blob, layer["gaps"]).decode(layer["entries"])
        values = _get_stream(blob, layer["values"]).decode(layer["entries"])
        codes = from_csc(absolute(gaps, values, size), shape)
        state[layer["name"]] = torch.from_numpy(_get(blob, layer["codebook"])[codes])
    template = build_model(header["model"], **header["config"]).state_dict()
    return Checkpoint(header["model"], header["config"], {k: state[k] for k in template}, header["labels"],
                      header["input"], {"qat": header["qat"]} if header.get("qat") else {})
