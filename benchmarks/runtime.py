"""The runtime measured on this CPU, in one run (issue 9; sections land with the features they measure).

    python -m benchmarks.runtime [--work runs/bench-runtime] [--out docs/results] [--quick]

Online vs clip mode: the demo's data set (12 classes, 48 videos a class), the demo's TSM (`tsm_resnet18`,
width 16, 8 segments over 32 frames, 64 px) and its causal twin (`tsm_online_resnet18`) trained the same
way (`edge train`, 16 epochs), exported with `--int8 --online`. For each: test clip accuracy and order
accuracy (`edge eval`), then ONNX Runtime latency at batch 1, fp32 and INT8: one clip through the clip
model against one frame through the per-frame model (its shift buffers fed as inputs). The issue's goal:
a frame at most 1/T of a clip, plus 20%. The same comparison at the paper's geometry (8 x 224 x 224,
width 64, untrained: speed does not depend on the weights) shows how much of the gap is fixed per-call
overhead. Writes runtime.json and runtime.md under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make `import edge` find the package, not this directory
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

from benchmarks.common import clips_per_s, cpu_name

MODELS = ("tsm_resnet18", "tsm_online_resnet18")


def edge(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "edge.cli", *args], check=True)


class FrameStep:
    """The per-frame model as a ``Backend`` for ``clips_per_s``: one frame with zero buffers per call (its
    time does not depend on the buffers' values)."""

    def __init__(self, path: Path, buffers: list[dict[str, Any]]) -> None:
        from edge.backends.ort import OrtBackend
        from export.online import zero_feed

        self.session = OrtBackend(path).session
        self.state = zero_feed(buffers)
        self.outputs = ["logits", *(b["output"] for b in buffers)]

    def infer(self, frame: np.ndarray) -> np.ndarray:
        return self.session.run(self.outputs, {"frame": frame, **self.state})[0]


def latency(clip_model: Path, online_model: Path, buffers: list[dict[str, Any]], shape: tuple[int, ...],
            runs: int, rounds: int) -> dict[str, float]:
    """Median batch-1 ms of a clip through ``clip_model`` and of a frame through ``online_model``."""
    from edge.backends.ort import OrtBackend

    clip = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    clip_rate = clips_per_s({"clip": OrtBackend(clip_model)}, clip, runs, rounds)["clip"]
    frame_rate = clips_per_s({"frame": FrameStep(online_model, buffers)}, clip[:, 0], runs * 4, rounds)["frame"]
    t = shape[0]
    clip_ms, frame_ms = 1e3 / clip_rate, 1e3 / frame_rate
    return {"clip_ms": clip_ms, "frame_ms": frame_ms, "frames_per_clip": t,
            "frame_vs_clip_over_t": frame_ms / (clip_ms / t)}


def paper_geometry(work: Path, runs: int) -> dict[str, float]:
    import torch

    from export.online import export_online
    from export.onnx import export_onnx
    from train.models import build_model

    torch.manual_seed(0)
    model = build_model("tsm_online_resnet18", num_classes=101, num_segments=8).eval()
    export_onnx(model, torch.zeros(1, 8, 3, 224, 224), work / "paper.onnx")
    buffers = export_online(model, (3, 224, 224), work / "paper.online.onnx")
    return latency(work / "paper.onnx", work / "paper.online.onnx", buffers, (8, 3, 224, 224), runs, 3)


def markdown(result: dict[str, Any]) -> str:
    rows = result["models"]
    lines = ["# Runtime", "",
             f"`python -m benchmarks.runtime` on {result['cpu']} ({result['seconds']:.0f} s). Load average at "
             f"the end (1/5/15 min): {result['load']}.", "",
             "## Online mode vs clip mode", "",
             f"The demo's data set and training ({result['setup']}). The online model is the same network with "
             "the causal shift (docs/runtime.md).", "",
             "| model | test clip acc | order acc (within pair) |", "|---|---:|---:|"]
    lines += [f"| {m} | {r['accuracy']:.3f} | {r['order_accuracy']:.3f} |" for m, r in rows.items()]
    lines += ["", "Latency at batch 1, ONNX Runtime on this CPU: a clip through the clip model, a frame through "
              "the per-frame model with its shift buffers. The goal is a frame at most 1/T of a clip + 20% "
              "(ratio <= 1.20).", "",
              "| geometry | precision | clip (ms) | frame (ms) | T | frame / (clip / T) |", "|---|---|---:|---:|---:|---:|"]
    for name, r in result["latency"].items():
        geometry, precision = name.split(":")
        lines.append(f"| {geometry} | {precision} | {r['clip_ms']:.3f} | {r['frame_ms']:.3f} | "
                     f"{r['frames_per_clip']} | {r['frame_vs_clip_over_t']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("runs/bench-runtime"))
    ap.add_argument("--out", type=Path, default=Path("docs/results"))
    ap.add_argument("--quick", action="store_true", help="a smoke test: tiny data, one epoch, few timed calls")
    args = ap.parse_args()
    from edge.atomic import write_text

    t0 = time.time()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    classes, videos, epochs = (2, 4, 1) if args.quick else (12, 48, 16)
    if not data.exists():  # a re-run reuses the data set and the trained models
        edge("data", "synth", "--out", str(data), "--classes", str(classes), "--videos-per-class", str(videos),
             "--seed", "0")
    models: dict[str, Any] = {}
    for m in MODELS:
        run = work / "train" / m
        if not (run / "best.pt").exists():
            edge("train", "--model", m, "--data", str(data), "--out", str(run), "--epochs", str(epochs))
        edge("eval", "--ckpt", str(run / "best.pt"), "--data", str(data), "--json", str(work / f"eval_{m}.json"))
        edge("export", "--ckpt", str(run / "best.pt"), "--out", str(work / "bundles" / m), "--int8",
             *(["--online"] if "online" in m else []))
        models[m] = {k: json.loads((work / f"eval_{m}.json").read_text())[k] for k in ("accuracy", "order_accuracy")}
    bundle = work / "bundles" / "tsm_online_resnet18"
    manifest = json.loads((bundle / "manifest.json").read_text())
    shape = tuple(manifest["input"]["shape"][1:])
    runs = 5 if args.quick else 50
    lat = {f"demo {shape[0]}x{shape[2]}x{shape[3]}:{p}": latency(bundle / f"model{s}.onnx", bundle / f"model.online{s}.onnx",
                                                              manifest["online"]["buffers"], shape, runs, 5)
           for p, s in (("fp32", ""), ("int8", ".int8"))}
    lat["paper 8x224x224 (untrained):fp32"] = paper_geometry(work, 3 if args.quick else 20)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    setup = f"{classes} classes, {videos} videos a class, {epochs} epochs"
    result = {"cpu": cpu_name(), "seconds": time.time() - t0, "load": load, "setup": setup, "models": models,
              "latency": lat}
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "runtime.json", json.dumps(result, indent=2) + "\n")
    write_text(args.out / "runtime.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
