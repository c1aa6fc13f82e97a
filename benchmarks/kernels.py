"""GPU benchmark of our kernels against their baselines, all measured in one run on one device.

    python -m benchmarks.kernels [--quick] [--out docs/results]

- temporal shift: achieved bandwidth (bytes read + written per second) vs a device-to-device copy of the
  same bytes (the ceiling; goal >= 80%), and speed vs the PyTorch slicing + concat implementation;
- CSR SpMV (k=1) and SpMM (k=16): thread-per-row and warp-per-row variants and the automatic choice vs
  cuSPARSE (torch sparse CSR) and dense GEMV/GEMM, at 50/80/90/95% sparsity on 1024..8192 square matrices.

Writes kernels.json and kernels.md (device name included) under --out. Needs a CUDA GPU and a CUDA build
of torch; refuses with one line otherwise (the CPU references are tested in `make test`, not timed here).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if not __package__:  # run as a script: make `import kernels` find the package, not this file
    sys.path[0] = str(Path(__file__).resolve().parents[1])

SHIFT_SHAPES = [(8 * 8, 64, 56, 56), (8 * 8, 128, 28, 28), (8 * 8, 256, 14, 14), (8 * 8, 512, 7, 7)]
SIZES = (1024, 2048, 4096, 8192)
SPARSITIES = (0.5, 0.8, 0.9, 0.95)


def time_ms(fn: Callable[[], object], reps: int, rounds: int = 7) -> float:
    """Median over ``rounds`` of the mean time per call of ``reps`` back-to-back calls (CUDA events)."""
    import torch

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    per_call = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        per_call.append(start.elapsed_time(end) / reps)
    return statistics.median(per_call)


def bench_shift(quick: bool) -> list[dict]:
    import torch

    from kernels import temporal_shift
    from kernels.reference import temporal_shift_torch

    rows = []
    for shape in SHIFT_SHAPES[:2] if quick else SHIFT_SHAPES:
        for dtype in (torch.float32, torch.float16):
            for two in (None, 16):
                x = torch.randn(shape, device="cuda", dtype=dtype)
                y = temporal_shift(x, 8, two_unit_div=two)
                nbytes = (x.numel() + y.numel()) * x.element_size()
                src = torch.empty(nbytes // 2, dtype=torch.uint8, device="cuda")  # read + write = nbytes
                dst = torch.empty_like(src)
                reps = 20 if quick else 100
                t_kernel = time_ms(lambda: temporal_shift(x, 8, two_unit_div=two), reps)  # noqa: B023
                t_copy = time_ms(lambda: dst.copy_(src), reps)  # noqa: B023
                t_torch = time_ms(lambda: temporal_shift_torch(x, 8, 8, two), reps)  # noqa: B023
                rows.append({
                    "shape": list(shape), "dtype": str(dtype).removeprefix("torch."),
                    "variant": "MSTSM (1/8 + 1/16)" if two else "TSM (1/8)",
                    "kernel_ms": t_kernel, "copy_ms": t_copy, "torch_slicing_ms": t_torch,
                    "kernel_gb_s": nbytes / t_kernel / 1e6, "copy_gb_s": nbytes / t_copy / 1e6,
                    "fraction_of_copy": t_copy / t_kernel, "speedup_vs_torch": t_torch / t_kernel,
                })
                print(f"shift {rows[-1]['variant']:18} {shape} {rows[-1]['dtype']}: "
                      f"{rows[-1]['kernel_gb_s']:.0f} GB/s = {rows[-1]['fraction_of_copy']:.0%} of copy, "
                      f"{rows[-1]['speedup_vs_torch']:.2f}x torch slicing", flush=True)
    return rows


def bench_spmm(quick: bool) -> list[dict]:
    import numpy as np
    import torch

    from kernels import CSRMatrix, csr_spmv, ops

    rows = []
    rng = np.random.default_rng(0)
    auto = ops.WARP_PER_ROW_MIN_NNZ
    for n in SIZES[:2] if quick else SIZES:
        for sparsity in SPARSITIES:
            dense = rng.standard_normal((n, n), dtype=np.float32)
            dense[rng.random((n, n)) < sparsity] = 0
            a = CSRMatrix.from_dense(dense)
            w = torch.from_numpy(dense).cuda()
            a_t = w.to_sparse_csr()
            for k in (1, 16):
                x = torch.randn((n,) if k == 1 else (n, k), device="cuda")
                reps = 20 if quick else 200
                ours = {}
                for variant, threshold in (("thread", 10**9), ("warp", 0), ("auto", auto)):
                    ops.WARP_PER_ROW_MIN_NNZ = threshold
                    ours[variant] = time_ms(lambda: csr_spmv(a, x), reps)  # noqa: B023
                t_cusparse = time_ms(lambda: a_t @ x, reps)  # noqa: B023
                t_dense = time_ms(lambda: w @ x, reps)  # noqa: B023
                rows.append({
                    "n": n, "sparsity": sparsity, "k": k, "mean_row_nnz": a.mean_row_length,
                    "chosen": "warp" if a.mean_row_length >= auto else "thread",
                    "thread_ms": ours["thread"], "warp_ms": ours["warp"], "auto_ms": ours["auto"],
                    "cusparse_ms": t_cusparse, "dense_ms": t_dense,
                    "speedup_vs_cusparse": t_cusparse / ours["auto"], "speedup_vs_dense": t_dense / ours["auto"],
                })
                r = rows[-1]
                print(f"spmm n={n} sparsity={sparsity:.0%} k={k}: ours {r['auto_ms'] * 1e3:.1f} us ({r['chosen']}), "
                      f"{r['speedup_vs_cusparse']:.2f}x cuSPARSE, {r['speedup_vs_dense']:.2f}x dense", flush=True)
    return rows


def markdown(meta: dict, shift: list[dict], spmm: list[dict]) -> str:
    lines = [
        "# Kernel benchmark results",
        "",
        f"Device: **{meta['device']}** (compute capability {meta['capability']}), torch {meta['torch']}, "
        f"CUDA {meta['cuda']}, {meta['date']}. Written by `python -m benchmarks.kernels`; every ratio is "
        "against a baseline measured in the same run.",
        "",
        "## Temporal shift",
        "",
        "| variant | shape (N*T, C, H, W) | dtype | kernel GB/s | copy GB/s | of copy | vs torch slicing |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in shift:
        lines.append(f"| {r['variant']} | {tuple(r['shape'])} | {r['dtype']} | {r['kernel_gb_s']:.0f} | "
                     f"{r['copy_gb_s']:.0f} | {r['fraction_of_copy']:.0%} | {r['speedup_vs_torch']:.2f}x |")
    lines += [
        "",
        "## CSR SpMV (k=1) and SpMM (k=16), fp32, square n x n",
        "",
        "| n | sparsity | k | nnz/row | thread-per-row us | warp-per-row us | chosen | cuSPARSE us | dense us "
        "| vs cuSPARSE | vs dense |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in spmm:
        lines.append(f"| {r['n']} | {r['sparsity']:.0%} | {r['k']} | {r['mean_row_nnz']:.0f} | "
                     f"{r['thread_ms'] * 1e3:.1f} | {r['warp_ms'] * 1e3:.1f} | {r['chosen']} | "
                     f"{r['cusparse_ms'] * 1e3:.1f} | {r['dense_ms'] * 1e3:.1f} | "
                     f"{r['speedup_vs_cusparse']:.2f}x | {r['speedup_vs_dense']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/results"), help="folder for kernels.json/.md")
    parser.add_argument("--quick", action="store_true", help="fewer shapes and repetitions")
    args = parser.parse_args()

    import torch

    from edge.atomic import write_text
    from kernels.cuda import library

    if not torch.cuda.is_available():
        sys.exit("benchmarks.kernels: no CUDA GPU visible to torch (a CUDA build of torch and a GPU are needed)")
    if library("temporal_shift") is None or library("csr_spmv") is None:
        sys.exit("benchmarks.kernels: the CUDA kernels are not built; run `make kernels` (needs nvcc)")
    props = torch.cuda.get_device_properties(0)
    meta = {"device": props.name, "capability": f"{props.major}.{props.minor}", "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"), "quick": args.quick}
    shift, spmm = bench_shift(args.quick), bench_spmm(args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "kernels.json", json.dumps({"meta": meta, "shift": shift, "spmm": spmm}, indent=2))
    write_text(args.out / "kernels.md", markdown(meta, shift, spmm))
    print(f"wrote {args.out / 'kernels.md'} and kernels.json")


if __name__ == "__main__":
    main()
