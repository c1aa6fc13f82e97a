"""benchmarks/kernels.py must refuse cleanly without a GPU and render its results table correctly."""

import subprocess
import sys

import pytest
import torch

from benchmarks.kernels import markdown


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
@pytest.mark.parametrize("how", [["-m", "benchmarks.kernels"], ["benchmarks/kernels.py"]])
def test_refuses_in_one_line_without_a_gpu(how, tmp_path):
    proc = subprocess.run([sys.executable, *how, "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "benchmarks.kernels: no CUDA GPU visible to torch (a CUDA build of torch and a GPU are needed)"]
    assert not list(tmp_path.iterdir())


def test_markdown_names_the_device_and_reports_ratios():
    meta = {"device": "NVIDIA H100", "capability": "9.0", "torch": "2.13.0", "cuda": "13.0", "date": "2026-11-22"}
    shift = [{"variant": "TSM (1/8)", "shape": [64, 64, 56, 56], "dtype": "float32", "kernel_gb_s": 2400.0,
              "copy_gb_s": 2800.0, "fraction_of_copy": 2400 / 2800, "speedup_vs_torch": 3.5}]
    spmm = [{"n": 4096, "sparsity": 0.9, "k": 16, "mean_row_nnz": 409.6, "thread_ms": 0.1, "warp_ms": 0.05,
             "chosen": "warp", "cusparse_ms": 0.08, "dense_ms": 0.2, "speedup_vs_cusparse": 1.6,
             "speedup_vs_dense": 4.0}]
    md = markdown(meta, shift, spmm)
    assert "**NVIDIA H100**" in md
    assert "| TSM (1/8) | (64, 64, 56, 56) | float32 | 2400 | 2800 | 86% | 3.50x |" in md
    assert "| 4096 | 90% | 16 | 410 | 100.0 | 50.0 | warp | 80.0 | 200.0 | 1.60x | 4.00x |" in md
