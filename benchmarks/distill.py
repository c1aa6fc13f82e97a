"""Motion distillation on this CPU, in one run (issue 10, dual-action-stream-distillation.txt).

    python -m benchmarks.distill [--work runs/bench-distill] [--out docs/results] [--quick]

Data: the synthetic set's motion classes (``MOTION``: moves, rotations, zooms and their time reverses; the
appear/disappear and colour-change pairs are left out, since their flow is near zero and a flow stream has
nothing to teach there), 40 videos a class of 32 frames at 48 px, 9 of them for training and 31 for test: a
data-limited task (where a teacher's privileged view can help) measured on a large test split. Every model is
T-C3D's 3D ResNet-18 (``res3d18``) at width 16 on 8-frame clips (2 apart) of 32 px crops, trained 16 epochs
by ``train_run``:

- RGB: the plain RGB stream; Flow: the flow stream (``--input flow``) on Farneback flow, the teacher; and the
  same on TV-L1 flow (the paper's), which at these 36 px frames trains the weaker stream at ~40x the cost;
- MARS (Eq. 1) and the Dual-action Stream with MAE (Eq. 2), Gram (Eq. 3) and both (Eq. 4), all RGB students
  of the Farneback flow stream (``--distill --teacher``) at our default alpha, and Eq. 4 at the paper's 50;
- fusions of frozen streams (``fusion_run``): RGB + flow averaged 1:1, Dual-action + flow averaged at the
  two-stream works' 1:1.5, and Dual-action + flow with the attention module (Sec. 3.4), trained 8 epochs.

For each: test clip accuracy and order accuracy (within time-reversal pairs; ``edge eval``'s), and the cost of
one clip at run time on this CPU: ONNX Runtime fp32 at batch 1 of each network it runs, plus, for a model that
needs flow, the optical flow of the clip's 8 frames (8 frame pairs at the training resolution, the same
method). The fusion module itself (two small linear layers) is not timed. A second, smaller table repeats
RGB / flow / Dual-action on every class of the set, where the flow stream is the weaker one. Writes
distill.json and distill.md under --out.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make `import edge` find the package, not this directory
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

from benchmarks.common import clips_per_s, parse_args, write_results
from edge.machine import cpu_name

MOTION = ("move_left", "move_right", "move_up", "move_down", "rotate_cw", "rotate_ccw", "zoom_in", "zoom_out",
          "move_up_right", "move_down_left")
DATA = {"videos_per_class": 40, "frames": 32, "size": 48, "test_fraction": 0.775}  # 9 train, 31 test a class
QUICK_DATA = {"videos_per_class": 4, "frames": 16, "size": 48, "test_fraction": 0.5}
MODEL = "res3d18"
GEOMETRY = {"segments": 8, "width": 16.0, "size": 32, "batch_size": 16}
EPOCHS, FUSION_EPOCHS = 16, 8
STUDENTS = {"mars": "MARS (Eq. 1)", "mae": "Dual-action, MAE (Eq. 2)", "gram": "Dual-action, Gram (Eq. 3)",
            "mae+gram": "Dual-action, MAE + Gram (Eq. 4)", "mae+gram@50": "Dual-action, MAE + Gram, alpha 50 (the paper's)"}
FLOWS = {"flow": ("Flow only (Farneback, the teacher)", "farneback"), "flow_tvl1": ("Flow only (TV-L1)", "tvl1")}
# row key -> (label, fusion mode, weights, RGB-side stream)
FUSIONS = {"rgb+flow": ("RGB + flow, averaged 1:1", "average", (1.0, 1.0), "rgb"),
           "ds+flow avg": ("Dual-action + flow, averaged 1:1.5", "average", (1.0, 1.5), "mae+gram"),
           "ds+flow attention": ("Dual-action + flow, attention fusion", "attention", (1.0, 1.5), "mae+gram")}


def synthetic(root: Path, labels: tuple[str, ...] | None, spec: dict[str, int]) -> Path:
    from train.data.synth import CLASSES, generate

    if not root.exists():
        generate(root, seed=0, progress=True, labels=list(labels or CLASSES[:12]), **spec)
    return root


def evaluate(path: Path, data: Path) -> dict[str, float]:
    from train.run import evaluate_checkpoint

    r = evaluate_checkpoint(path, data)
    return {"accuracy": r["accuracy"], "order_accuracy": r["order_accuracy"], "clips": r["clips"]}


def train_streams(data: Path, work: Path, epochs: int, flows: tuple[str, ...], students: tuple[str, ...],
                  progress: bool) -> dict[str, Path]:
    """best.pt of the RGB stream, the flow streams and each student (kept: a re-run reuses them)."""
    from train.distill.student import PAPER_ALPHA, DistillConfig
    from train.run import train_run

    def student(key: str) -> DistillConfig:
        loss, _, alpha = key.partition("@")
        return DistillConfig(loss, PAPER_ALPHA) if alpha else DistillConfig(loss)

    runs = {"rgb": {"motion": "none"}, **{k: {"motion": "flow", "flow_method": FLOWS[k][1]} for k in flows},
            **{k: {"teacher": work / "flow" / "best.pt", "distill": student(k)} for k in students}}
    out = {}
    for key, extra in runs.items():
        run = work / key.replace("+", "_").replace("@", "_a")
        if not (run / "best.pt").exists():
            train_run(MODEL, data, run, epochs=epochs, progress=progress, **GEOMETRY, **extra)
        out[key] = run / "best.pt"
    return out


def fuse(data: Path, work: Path, streams: dict[str, Path], epochs: int, progress: bool) -> dict[str, Path]:
    from train.distill.fusion import fusion_run

    out = {}
    for key, (_, mode, weights, rgb) in FUSIONS.items():
        run = work / key.replace(" ", "_").replace("+", "_")
        if not (run / "best.pt").exists():
            fusion_run(streams[rgb], streams["flow"], data, run, fusion=mode, weights=weights, epochs=epochs,
                       batch_size=GEOMETRY["batch_size"], progress=progress)
        out[key] = run / "best.pt"
    return out


def network_ms(streams: dict[str, Path], work: Path, runs: int) -> dict[str, float]:
    """ONNX Runtime fp32 batch-1 ms per clip of the RGB and the flow network (students run the RGB one)."""
    import torch

    from edge.backends.ort import OrtBackend
    from export.onnx import export_onnx
    from train.engine import Checkpoint

    backends, clips = {}, {}
    for key in ("rgb", "flow"):
        ckpt = Checkpoint.load(streams[key])
        shape = (1, *ckpt.input["shape"])
        path = export_onnx(ckpt.build(), torch.zeros(shape), work / "onnx" / f"{key}.onnx")
        backends[key], clips[key] = OrtBackend(path), np.zeros(shape, np.float32)
    return {k: 1000.0 / clips_per_s({k: backends[k]}, clips[k], runs)[k] for k in backends}


def flow_ms(flow_ckpt: Path, data: Path, runs: int) -> dict[str, Any]:
    """A flow stream's optical flow for one clip (its 8 frames' pairs) on a test video at the training
    resolution: median ms per pair and per clip."""
    from edge.motion import optical_flow
    from train.data import dataset_from_dir
    from train.data.decode import read_video
    from train.engine import Checkpoint

    ckpt = Checkpoint.load(flow_ckpt)
    items, _ = dataset_from_dir(data, "test")
    frames = read_video(items[0].path, ckpt.preprocess.resize)
    pairs = ckpt.clip.num_segments
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        optical_flow(frames[: pairs + 1], ckpt.motion.flow)
        times.append((time.perf_counter() - t0) * 1000.0)
    clip = float(np.median(times))
    return {"method": ckpt.motion.flow.method, "pairs": pairs, "resolution": list(frames.shape[1:3]),
            "ms_per_pair": clip / pairs, "ms_per_clip": clip}


def rows(evals: dict[str, dict[str, float]], net: dict[str, float],
         flows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The table: each model with what it runs per clip (networks, flow) and the cost that adds up to."""
    both = net["rgb"] + net["flow"] + flows["flow"]["ms_per_clip"]
    runs = {"rgb": ("RGB only", net["rgb"], False),
            **{k: (label, net["flow"] + flows[k]["ms_per_clip"], True) for k, (label, _) in FLOWS.items()},
            **{k: (v, net["rgb"], False) for k, v in STUDENTS.items()},
            **{k: (v[0], both, True) for k, v in FUSIONS.items()}}
    return [{"key": k, "model": label, **evals[k], "needs_flow": needs, "ms_per_clip": ms}
            for k, (label, ms, needs) in runs.items() if k in evals]


def markdown(result: dict[str, Any]) -> str:
    flows = " and ".join(f"{f['method']} {f['ms_per_pair']:.1f} ms per frame pair ({f['ms_per_clip']:.1f} ms for a "
                         f"clip's {f['pairs']} pairs)" for f in result["flows"].values())
    res = next(iter(result["flows"].values()))["resolution"]
    out = [
        "# Motion distillation (Dual-action Stream)",
        "",
        f"`python -m benchmarks.distill` on {result['cpu']} ({os.cpu_count()} cores), {result['date']}: "
        f"{result['seconds'] / 60:.0f} min in one run{' (--quick: a smoke test, not results)' if result['quick'] else ''}.",
        "",
        f"**Setup.** {result['setup']}. Optical flow (OpenCV {result['opencv']}) at {res[0]}x{res[1]} px: {flows}. "
        f"Network cost: ONNX Runtime fp32, batch 1: RGB {result['network_ms']['rgb']:.2f} ms, flow "
        f"{result['network_ms']['flow']:.2f} ms per clip.",
        "",
        "| model | test accuracy | order accuracy | needs flow | cost per clip (ms) | cost vs RGB |",
        "|---|---:|---:|:---:|---:|---:|",
    ]
    base = next(r for r in result["rows"] if r["key"] == "rgb")
    for r in result["rows"]:
        out.append(f"| {r['model']} | {r['accuracy']:.3f} | {r['order_accuracy']:.3f} | "
                   f"{'yes' if r['needs_flow'] else 'no'} | {r['ms_per_clip']:.2f} | "
                   f"{r['ms_per_clip'] / base['ms_per_clip']:.1f}x |")
    best = max((r for r in result["rows"] if r["key"] in STUDENTS), key=lambda r: r["accuracy"])
    ds = next(r for r in result["rows"] if r["key"] == "mae+gram")
    out += ["", f"{result['clips']} test clips: one clip is {100 / result['clips']:.1f} points.",
            f"The paper's student (MAE + Gram) against plain RGB at the same cost: {ds['accuracy']:.3f} vs "
            f"{base['accuracy']:.3f} ({'better' if ds['accuracy'] > base['accuracy'] else 'not better'}); "
            f"the best student here: {best['model']} ({best['accuracy']:.3f})."]
    if result.get("all_classes"):
        out += ["", "**Every class of the set** (12 classes, the same geometry; the appear/disappear and colour "
                    "pairs have almost no flow):", "", "| model | test accuracy | order accuracy |", "|---|---:|---:|"]
        out += [f"| {r['model']} | {r['accuracy']:.3f} | {r['order_accuracy']:.3f} |" for r in result["all_classes"]]
    return "\n".join(out) + "\n"


def main() -> None:
    args = parse_args(__doc__, "runs/bench-distill")
    import cv2

    from edge.motion import tvl1_available
    from train.data import dataset_from_dir
    from train.distill.student import ALPHA

    t0 = time.time()
    spec = QUICK_DATA if args.quick else DATA
    epochs, fusion_epochs, runs = (1, 1, 3) if args.quick else (EPOCHS, FUSION_EPOCHS, 30)
    progress = not args.quick
    data = synthetic(args.work / "motion" / "data", MOTION, spec)
    flows = ("flow", "flow_tvl1") if tvl1_available() else ("flow",)  # without opencv-contrib: no TV-L1 row
    streams = train_streams(data, args.work / "motion", epochs, flows, tuple(STUDENTS), progress)
    fused = fuse(data, args.work / "motion", streams, fusion_epochs, progress)
    evals = {k: evaluate(p, data) for k, p in {**streams, **fused}.items()}
    net = network_ms(streams, args.work, runs)
    flow = {k: flow_ms(streams[k], data, runs) for k in flows}
    table = rows(evals, net, flow)
    everything = synthetic(args.work / "all" / "data", None, spec)
    all_streams = train_streams(everything, args.work / "all", epochs, ("flow",), ("mae+gram",), progress)
    names = {"rgb": "RGB only", "flow": FLOWS["flow"][0], "mae+gram": STUDENTS["mae+gram"]}
    all_rows = [{"key": k, "model": names[k], **evaluate(p, everything)} for k, p in all_streams.items()]
    n_train = len(dataset_from_dir(data, "train")[0])
    setup = (f"{len(MOTION)} motion classes, {spec['videos_per_class']} videos a class ({n_train} train, "
             f"{evals['rgb']['clips']} test) of {spec['frames']} frames at {spec['size']} px; `{MODEL}` at width "
             f"{GEOMETRY['width']:g}, {GEOMETRY['segments']}-frame clips of {GEOMETRY['size']} px, {epochs} epochs; "
             f"students at alpha = {ALPHA:g} unless named; attention fusion trained {fusion_epochs} epochs")
    result = {"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d"), "seconds": time.time() - t0,
              "quick": args.quick, "setup": setup, "clips": evals["rgb"]["clips"], "network_ms": net, "flows": flow,
              "opencv": cv2.__version__,
              "rows": table, "all_classes": all_rows}
    write_results(args.out, "distill", result, markdown)


if __name__ == "__main__":
    main()
