"""Every registered model on this machine's CPU, measured in one run: size, speed, accuracy.

    python -m benchmarks.zoo [--quick] [--models a,b,...] [--skip-train] [--work runs/bench-zoo]
                             [--out docs/results]

For each model of the registry (train.models.list_models):

1. at its paper's geometry (``paper_geometry``: ``build_model(name, num_classes=101)`` with the factory's
   defaults, input (1, T, 3, S, S) read off the model), untrained: parameters and GFLOPs (multiply-adds, as
   ``edge info`` counts them) of the exported ONNX graph, and ONNX Runtime CPU clips/s at batch 1 in fp32 and
   INT8 (Q/DQ, calibrated on random clips: speed does not depend on the values);
2. test clip accuracy and order accuracy (within the synthetic set's time-reversal pairs) on the synthetic set
   ``make demo`` trains on (12 classes, 48 videos a class, 32 frames of 96 px), trained by ``train_run`` for 16
   epochs at the scaled-down geometry TRAIN gives it: the 2D models at the demo's (width 16, 64 px, 8
   segments), the 3D CNNs at width 16, 32 px and their paper's clip length. A model whose training fails
   keeps its row, with the error in place of its accuracy.

Writes zoo.json, zoo.md and zoo.png (accuracy against ORT fp32 latency) under --out. Each model's ONNX files
live under --work only while it is measured. ``--quick`` is a smoke test: three models, a tiny data set, one
epoch, a few timed calls.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make `import train` find the package, not this directory
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

from benchmarks.common import clips_per_s
from edge.machine import cpu_name


@dataclass(frozen=True)
class Train:
    """``train_run``'s arguments for one model (batch ``BATCH``); ``options``: the model's own keywords."""

    width: float = 16
    size: int = 64
    segments: int = 8
    epochs: int = 16
    options: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        opts = "".join(f" {k}={v}" for k, v in self.options.items())
        return f"w{self.width:g} {self.size}px {self.segments}f {self.epochs}ep{opts}"


BATCH = 16  # train_run's (and `edge train`'s) default
# The demo's data set (edge/demo.py, `make demo`): 36 training and 12 test videos a class.
DATA = {"classes": 12, "videos_per_class": 48, "frames": 32, "size": 96}
QUICK_DATA = {"classes": 12, "videos_per_class": 4, "frames": 16, "size": 48}
QUICK_MODELS = ("tsn_resnet18", "tsm_resnet18", "c3d_b5")
# ORT timing per model and precision (clips_per_s): interleaved rounds of up to `runs` calls or `budget_s`
# seconds, so the slowest models (c3d_b8, T-C3D: a few clips/s) cost seconds, not minutes
SPEED: dict[str, Any] = {"runs": 20, "rounds": 3, "budget_s": 2.5}
QUICK_SPEED: dict[str, Any] = {"runs": 3, "rounds": 2, "budget_s": 0.5}

# The scaled-down geometries, 16 epochs each; every model trains in under 3 minutes on 2 cores (the clips are
# decoded once; an epoch is 27 batches of forward + backward).
# 2D models: `make demo`'s `edge train` (width 16, 64 px crops, 8 segments; TSM ~1 min on 2 cores).
DEMO = Train()
# Clip-fed 3D CNNs: width 16, 32 px, each paper's clip length (C3D 16 frames, Res3D 8). c3d_b5 with 8 frames
# reached only 0.500 in 12 epochs (order 0.828); with 16 it passed 0.84 by epoch 9.
C3D = Train(size=32, segments=16)
RES3D = Train(size=32, segments=8)

# One setting per registered model (a test checks the registry has no model without one).
SEGMENT_KINDS = ("tsn", "tsm", "mstsm", "tsm_online", "mstsm_online")  # online: the causal shift (docs/runtime.md)
TRAIN: dict[str, Train] = {
    **{f"{k}_{bb}": DEMO for k in SEGMENT_KINDS for bb in ("resnet18", "resnet50")},
    **{f"mstsm_tfdem_{bb}": DEMO for bb in ("resnet18", "resnet50")},
    # MobileNetV2's width is a channel multiplier (the ResNets' is stem channels)
    **{f"{k}_mobilenetv2": replace(DEMO, width=0.5) for k in SEGMENT_KINDS},
    **{name: C3D for name in ("c3d_b5", "c3d_b8", "asym3d")},
    **{f"b{b}_asyconv{k}": C3D for b in (5, 8) for k in ("3", "4", "5", "34", "35", "45", "345")},
    **{f"b5_m{k}": C3D for k in (1, 2, 3, 4)},
    "res3d18": RES3D,
    # T-C3D at the synthetic set's scale (docs/models.md): S = 3 clips of 4 frames, 2 apart
    "tc3d_res3d18": replace(RES3D, segments=12, options={"clip_len": 4}),
    # one MOMP image per clip (train_run feeds the model's paper's input); CaffeNet needs 55 px at least.
    # BatchNorm instead of LRN: from scratch (the paper fine-tunes ImageNet CaffeNet) it reached 0.396 in a
    # trial against LRN's 0.243, of an order-blind ceiling of 0.5
    "momp_caffenet": replace(DEMO, segments=1, options={"norm": "bn"}),
}

# display order; a model's family is its longest matching name prefix
FAMILIES = {"tsn_": "TSN", "tsm_": "TSM", "mstsm_": "MSTSM", "mstsm_tfdem_": "MSTSM + TFDEM", "tsm_online_": "TSM online",
            "mstsm_online_": "MSTSM online", "c3d_": "C3D",
            "b5_asyconv": "C3D-b5 + asymmetric conv", "b5_m": "C3D-b5 + MicroNet",
            "b8_asyconv": "C3D-b8 + asymmetric conv", "asym3d": "asymmetric 3D-CNN", "res3d": "Res3D",
            "tc3d_": "T-C3D", "momp_": "MOMP CaffeNet"}


def family(name: str) -> str:
    prefixes = [p for p in FAMILIES if name.startswith(p)]
    return FAMILIES[max(prefixes, key=len)] if prefixes else "other"


def paper_geometry(name: str) -> tuple[dict[str, Any], tuple[int, int, int, int, int]]:
    """``build_model`` config and batch-1 input shape of ``name`` at its paper's geometry. T is the model's
    own ``num_segments``; S its ``size`` where its layers depend on it (the C3D family's 112, CaffeNet's
    227), else 112 for the clip-fed 3D ResNets (T-C3D's 8x112x112 clips) and 224 for the 2D models."""
    import torch

    from train.models import build_model, clip_sampling

    config = {"num_classes": 101}
    with torch.device("meta"):  # shapes only: no weights allocated
        model = build_model(name, **config)
    side = getattr(model, "size", None) or (112 if clip_sampling(name, config)["sampling"] == "clips" else 224)
    return config, (1, int(model.num_segments), 3, int(side), int(side))


def spread_constants(model: Any, seed: int = 0) -> None:
    """Give every all-equal float tensor (zero biases, BatchNorm's ones and zeros, a residual block's zero-init
    last BN) a +-0.01 random spread. onnxsim stores identical initializers once, so an untrained ResNet's
    folded all-zero convs would be counted once in the graph's parameters; a trained model has no such tensors."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point() and bool((t == t.flatten()[0]).all()):
                t.add_(torch.rand(t.shape, generator=gen) * 0.02 - 0.01)


def untrained(name: str, config: Mapping[str, Any]) -> Any:
    """``build_model(name, **config)`` in eval mode, seeded, with ``spread_constants``: what speed is timed on."""
    import torch

    from train.models import build_model

    torch.manual_seed(0)
    model = build_model(name, **config).eval()
    spread_constants(model)
    return model


def measure(name: str, config: Mapping[str, Any], shape: tuple[int, ...], work: Path, *, runs: int, rounds: int,
            budget_s: float, calib: int = 2) -> dict[str, Any]:
    """Parameters, GFLOPs and ORT fp32 / INT8 batch-1 clips/s of ``build_model(name, **config)``, untrained, at
    input ``shape``. ``work`` holds its ONNX files while it is measured and is removed after (c3d_b8's fp32
    graph alone is 314 MB)."""
    import torch

    from edge.backends.ort import OrtBackend
    from edge.inspect import inspect_onnx
    from export.int8 import quantize_int8
    from export.onnx import export_onnx

    model = untrained(name, config)
    torch_params = sum(p.numel() for p in model.parameters())
    work.mkdir(parents=True, exist_ok=True)
    try:
        fp32 = export_onnx(model, torch.zeros(shape), work / "model.onnx")
        del model  # the big ones: keep one copy of the weights (ORT's) while timing
        info = inspect_onnx(fp32)
        rng = np.random.default_rng(0)
        int8 = quantize_int8(fp32, work / "model.int8.onnx",
                             [rng.standard_normal(shape[1:], dtype=np.float32) for _ in range(calib)])
        clip = rng.standard_normal(shape, dtype=np.float32)
        speed = clips_per_s({"fp32": OrtBackend(fp32), "int8": OrtBackend(int8, "int8")}, clip, runs, rounds,
                            budget_s)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"params": info.params, "torch_params": torch_params, "gmacs": info.gmacs,
            "fp32_clips_per_s": speed["fp32"], "int8_clips_per_s": speed["int8"]}


def train_and_eval(name: str, setting: Train, data: Path, out: Path, progress: bool) -> dict[str, Any]:
    """Train ``name`` with ``train_run`` (which picks the model's frame sampling and input: RGB, MOMP
    images) and evaluate its best checkpoint on the test split."""
    from train.run import evaluate_checkpoint, train_run

    t0 = time.time()
    train_run(name, data, out, epochs=setting.epochs, batch_size=BATCH, segments=setting.segments,
              width=setting.width, size=setting.size, options=dict(setting.options), progress=progress)
    minutes = (time.time() - t0) / 60
    ev = evaluate_checkpoint(out / "best.pt", data)
    return {"accuracy": ev["accuracy"], "order_accuracy": ev["order_accuracy"],
            "all_clips_accuracy": ev.get("all_clips_accuracy"), "train_minutes": minutes}


def _error(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e).strip().partition(chr(10))[0]}"


def zoo_row(name: str, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """One model's row; a stage that fails leaves its cells empty and says why, the row stays."""
    from train.models import clip_sampling

    q = args.quick
    config, shape = paper_geometry(name)
    row: dict[str, Any] = {"model": name, "family": family(name), "paper_input": list(shape),
                           "sampling": clip_sampling(name, config)["sampling"]}
    print(f"== {name}: paper geometry {list(shape)}", file=sys.stderr, flush=True)
    try:
        row.update(measure(name, config, shape, args.work / "onnx" / name, **(QUICK_SPEED if q else SPEED)))
    except Exception as e:  # one model's failure must not cost the other 34 rows
        row["speed_error"] = _error(e)
    setting = TRAIN.get(name)
    if args.skip_train:
        row["reason"] = "not trained in this run (--skip-train)"
    elif setting is None:
        row["reason"] = "not trained: no entry in benchmarks/zoo.py TRAIN"
    else:
        setting = replace(setting, epochs=1) if q else setting
        row["trained_at"] = {**asdict(setting), "options": dict(setting.options)}
        try:
            row.update(train_and_eval(name, setting, data, args.work / "train" / name, progress=not q))
        except Exception as e:
            row["reason"] = f"training failed: {_error(e)}"
    return row


def synthetic_set(work: Path, spec: Mapping[str, int], progress: bool) -> Path:
    """The synthetic set ``spec`` describes, generated once per work directory (the generator is seeded)."""
    from train.data.synth import generate

    out = work / "data-{classes}c-{videos_per_class}v-{frames}f-{size}px".format(**spec)
    if not (out / "splits" / "testlist01.txt").is_file():  # generate() writes the directory atomically
        generate(out, seed=0, progress=progress, **spec)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("runs/bench-zoo"))
    ap.add_argument("--out", type=Path, default=Path("docs/results"))
    ap.add_argument("--quick", action="store_true", help=f"smoke test: {', '.join(QUICK_MODELS)} unless --models")
    ap.add_argument("--models", help="comma-separated registry names (default: every registered model)")
    ap.add_argument("--skip-train", action="store_true", help="size and speed columns only")
    args = ap.parse_args()

    from edge.atomic import write_text
    from train.models import list_models

    known = list_models()
    models = args.models.split(",") if args.models else list(QUICK_MODELS if args.quick else known)
    unknown = [m for m in models if m not in known]
    if unknown:
        ap.error(f"--models: unknown {', '.join(unknown)}; available: {', '.join(known)}")
    t0 = time.time()
    spec = QUICK_DATA if args.quick else DATA
    data = synthetic_set(args.work, spec, progress=not args.quick)
    n_train = len((data / "splits" / "trainlist01.txt").read_text().splitlines())
    n_test = len((data / "splits" / "testlist01.txt").read_text().splitlines())
    rows = [zoo_row(name, args, data) for name in models]
    order = list(FAMILIES.values())
    rows.sort(key=lambda r: (order.index(r["family"]) if r["family"] in order else len(order), r["model"]))
    results = {"cpu": cpu_name(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "quick": args.quick,
               "seconds": round(time.time() - t0), "load_average": [round(x, 2) for x in os.getloadavg()],
               "data": {**spec, "train_videos": n_train, "test_videos": n_test},
               "speed": QUICK_SPEED if args.quick else SPEED, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "zoo.json", json.dumps(results, indent=2) + "\n")
    plot(rows, args.out / "zoo.png")
    md = markdown(results)
    write_text(args.out / "zoo.md", md)
    print(md)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _last_cell(r: Mapping[str, Any]) -> str:
    """Training minutes, or why the row has no accuracy; and why it has no speed, if so."""
    cell = r["reason"] if r.get("reason") else _f(r.get("train_minutes"), ".1f")
    return cell + (f"; speed not measured: {r['speed_error']}" if r.get("speed_error") else "")


def table_row(r: Mapping[str, Any]) -> str:
    _, t, _, s, _ = r["paper_input"]
    fp32, int8 = r.get("fp32_clips_per_s"), r.get("int8_clips_per_s")
    ratio = f"{int8 / fp32:.2f}x" if fp32 and int8 else "-"
    params = r["params"] / 1e6 if "params" in r else None
    trained = Train(**r["trained_at"]).describe() if r.get("trained_at") else "-"
    cells = [f"`{r['model']}`", r["family"], f"{t}x{s}x{s}", _f(params, ".2f"), _f(r.get("gmacs"), ".2f"),
             _f(fp32, ".1f"), _f(int8, ".1f"), ratio, trained, _f(r.get("accuracy"), ".3f"),
             _f(r.get("order_accuracy"), ".3f"), _last_cell(r)]
    return "| " + " | ".join(cells) + " |"


def _order_summary(rows: list[Mapping[str, Any]]) -> str:
    """TSN's order accuracy against the clip-fed 3D CNNs' (the synthetic set's temporal-order classes are
    what separate them)."""
    tsn = {r["model"]: r["order_accuracy"] for r in rows if r["family"] == "TSN" and r.get("order_accuracy") is not None}
    clip3d = [r for r in rows if r["sampling"] == "clips" and r.get("order_accuracy") is not None]
    if not tsn or not clip3d:
        return ""
    best = max(tsn.values())
    above = sum(r["order_accuracy"] > best for r in clip3d)
    low = min(clip3d, key=lambda r: r["order_accuracy"])
    return (f"Order accuracy: TSN {', '.join(f'{v:.3f} (`{k}`)' for k, v in tsn.items())}; the clip-fed 3D CNNs "
            f"{low['order_accuracy']:.3f} (`{low['model']}`) to {max(r['order_accuracy'] for r in clip3d):.3f}, "
            f"{above} of {len(clip3d)} above the best TSN.")


def markdown(r: Mapping[str, Any]) -> str:
    """The results page: how it was measured, then one row per model, then the plot."""
    d, sp, rows = r["data"], r["speed"], r["rows"]
    trained = [x for x in rows if x.get("trained_at")]
    settings = sorted({Train(**x["trained_at"]).describe() for x in trained})
    lines = [
        "# Model zoo",
        "",
        f"`python -m benchmarks.zoo` on {r['cpu']} ({r['cores']} cores){' (--quick)' if r['quick'] else ''}, "
        f"{r['date']}: {_duration(r['seconds'])} in one run (load average at the end, 1/5/15 min: "
        f"{'/'.join(map(str, r['load_average']))}).",
        "",
        "**Size and speed** at each paper's geometry (`build_model(name, num_classes=101)`, input 1 x T x 3 x S x "
        "S, the *paper input* column), untrained weights: parameters and GFLOPs (multiply-adds, as `edge info` "
        "counts them) of the exported ONNX graph (BatchNorm folded into the convolutions); ONNX Runtime CPU "
        "clips/s at batch 1, fp32 and INT8 (Q/DQ, per-channel, calibrated on random clips), "
        f"{sp['rounds']} interleaved rounds of up to {sp['runs']} calls or {sp['budget_s']:g} s per precision, "
        "the median of the rounds' medians.",
        "",
        f"**Accuracy** on the synthetic set ({d['classes']} classes, {d['train_videos']} training and "
        f"{d['test_videos']} test videos of {d['frames']} frames at {d['size']} px; chance {1 / d['classes']:.3f}, "
        "and 0.5 within a time-reversal pair), each model trained by `train_run` with its own frame sampling "
        "and input at the scaled-down geometry of the *trained at* column (backbone width, crop side, frames "
        "per clip, epochs, model options; `TRAIN` in `benchmarks/zoo.py`): the test clip accuracy of the best "
        "epoch, and the order accuracy within time-reversal pairs."
        + (f" Geometries used: {'; '.join(settings)}." if settings else ""),
        "",
    ]
    summary = _order_summary(rows)
    if summary:
        lines += [summary, ""]
    lines += [
        "| model | family | paper input | params (M) | GFLOPs | ORT fp32 clips/s | ORT INT8 clips/s | INT8/fp32 | "
        "trained at | accuracy | order acc | train min / why not trained |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
        *[table_row(x) for x in rows],
        "",
        "![accuracy against ORT fp32 latency](zoo.png)",
        "",
    ]
    return "\n".join(lines)


def plot(rows: list[Mapping[str, Any]], path: Path) -> list[str]:
    """Accuracy and order accuracy against ORT fp32 latency at the paper's geometry, one labelled point per
    model that has both; returns those models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from edge.atomic import atomic_path

    shown = [r for r in rows if r.get("accuracy") is not None and r.get("fp32_clips_per_s")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharex=True)
    fig.suptitle("accuracy after scaled-down training on the synthetic set, latency at the paper's geometry")
    colors = {f: plt.get_cmap("tab20")(i) for i, f in enumerate(FAMILIES.values())}
    for ax, key, label in ((axes[0], "accuracy", "test clip accuracy"),
                           (axes[1], "order_accuracy", "order accuracy (within time-reversal pairs)")):
        for fam in dict.fromkeys(r["family"] for r in shown):
            pts = [r for r in shown if r["family"] == fam and r.get(key) is not None]
            ax.scatter([1000 / r["fp32_clips_per_s"] for r in pts], [r[key] for r in pts], label=fam,
                       color=colors.get(fam), marker="s" if pts and pts[0]["sampling"] == "clips" else "o")
            for r in pts:
                ax.annotate(r["model"], (1000 / r["fp32_clips_per_s"], r[key]), textcoords="offset points",
                            xytext=(3, 3), fontsize=6)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("ORT fp32 latency per clip at the paper's geometry (ms, batch 1)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if shown:
        axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return [r["model"] for r in shown]


if __name__ == "__main__":
    main()
