"""``edge compress``: runs a recipe (train.compress.pipeline) and writes the stage-by-stage report.

It lives in ``export`` rather than ``train/cli.py`` (where ARCHITECTURE.md first put it) because every
report row measures an exported model: the fp32 ONNX size and ONNX Runtime latency (docs/design.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.atomic import atomic_path, write_text
from edge.backends.ort import OrtBackend
from edge.bench import latency_ms
from edge.bundle import sha256_file
from edge.errors import EdgeError
from edge.inspect import inspect_onnx
from export.bundle import TRT_INT8
from export.onnx import INPUT_NAME, export_onnx
from export.qat_ort import qat_for_ort
from export.qdq import export_qdq
from train.compress.pipeline import Runner, load_data, prepare
from train.compress.qat import deployed
from train.compress.recipe import Int8, Recipe, Stage, Store, load_recipe, parse_recipe
from train.engine import Checkpoint
from train.run import calibration_clips

LATENCY_RUNS = 30
CALIBRATION_CLIPS = 16  # an int8 stage's ORT layout: only its additions' and concatenations' ranges
COLUMNS = ("stage", "kind", "accuracy", "params", "params_nonzero", "gflops", "size_mb", "latency_ms_p50")


def measure(example: np.ndarray, calib: list[np.ndarray]):  # noqa: ANN201 - returns a pipeline.Measure
    """GMACs per clip, size and batch-1 ORT CPU latency (one thread) of a stage, on its fp32 ONNX (kept as
    ``model.onnx`` in the stage directory) or, once quantized, its Q/DQ ONNX in ONNX Runtime's layout
    (``model.int8.onnx``, made from the QAT graph ``model.int8.trt.onnx`` with ``calib``'s clips: what
    ``edge export --int8`` writes); the size is the smaller Q/DQ file's (ORT's keeps an int32 bias and a
    scale per tensor it quantizes), the ``.edgez`` file's for ``store``: the smallest honest file of that
    stage. GMACs are counted on that graph by edge.inspect (onnx-tool), the counter ``edge
    info`` uses."""

    def run(ckpt: Checkpoint, sdir: Path, stage: Stage | None) -> dict[str, float]:
        x = torch.from_numpy(example)
        if "qat" in ckpt.train_state:
            files = [export_qdq(deployed(ckpt), x, sdir / TRT_INT8)]
            onnx_path = qat_for_ort(files[0], sdir / "model.int8.onnx", calib)
            backend = OrtBackend(onnx_path, "int8", threads=1)
        else:
            onnx_path = export_onnx(ckpt.build(), x, sdir / "model.onnx")
            backend, files = OrtBackend(onnx_path, threads=1), []
        macs = inspect_onnx(onnx_path, {INPUT_NAME: example.shape}).macs
        lat = float(np.median(latency_ms(backend, example, LATENCY_RUNS)))
        size = (sdir / "store.json") if isinstance(stage, Store) else None
        nbytes = json.loads(size.read_text())["file_bytes"] if size else min(f.stat().st_size for f in [onnx_path, *files])
        return {"gflops": round(macs / 1e9, 4), "size_mb": round(nbytes / 2**20, 4), "latency_ms_p50": round(lat, 3)}

    return run


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 2 + "---:|" * (len(COLUMNS) - 2)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy against size and against latency, one labelled point per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, label in ((axes[0], "size_mb", "size (MB)"), (axes[1], "latency_ms_p50", "ORT CPU latency p50 (ms)")):
        ax.plot([r[key] for r in rows], [r["accuracy"] for r in rows], "o-")
        for r in rows:
            ax.annotate(r["stage"], (r[key], r["accuracy"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test clip accuracy")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _check_same_run(out: Path, recipe: Recipe, run: dict[str, str]) -> None:
    """``--resume`` continues the run ``out`` holds: the same recipe (as parsed) and the same checkpoint."""
    if not (out / "run.json").is_file():
        raise EdgeError(f"--resume: {out} has no compress run to resume (no run.json)")
    before = json.loads((out / "run.json").read_text())
    if parse_recipe(before["recipe"]).stages != recipe.stages:
        raise EdgeError(f"--resume: {out} was made with a different recipe; use a new --out for this one")
    if before["checkpoint_sha256"] != run["checkpoint_sha256"]:
        raise EdgeError(f"--resume: {out} was made from a different checkpoint; use a new --out for this one")


def compress(ckpt_path: Path, recipe_path: Path, data: Path, out: Path, resume: bool = False,
             progress: bool = True) -> list[dict[str, Any]]:
    """Validate everything, then run; ``out`` is created only once the inputs are known good."""
    recipe = load_recipe(recipe_path)
    ckpt = Checkpoint.load(ckpt_path)
    prepare(recipe, ckpt)
    if out.exists() and not resume:
        raise EdgeError(f"--out {out}: already exists (pass --resume to continue it, or choose a new directory)")
    run = {"recipe": Path(recipe_path).read_text(encoding="utf-8"), "checkpoint_sha256": sha256_file(ckpt_path)}
    if resume:
        _check_same_run(out, recipe, run)
    loaded = load_data(ckpt, data)
    if len(loaded.test) == 0:
        raise EdgeError(f"--data {data}: its test split has no readable videos")
    example = loaded.test[0][0][None].numpy()
    calib = calibration_clips(data, ckpt.preprocess, ckpt.clip, ckpt.labels, limit=CALIBRATION_CLIPS,
                              motion=ckpt.motion) if any(isinstance(s, Int8) for s in recipe.stages) else []
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "run.json", json.dumps(run, indent=2) + "\n")
    rows = Runner(recipe, ckpt, loaded, out, measure(example, calib), progress).run(resume)
    write_text(out / "report.json", json.dumps({"stages": rows}, indent=2) + "\n")
    write_text(out / "report.md", markdown(rows))
    plot(rows, out / "report.png")
    return rows
