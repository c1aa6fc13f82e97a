"""The runtime measured on this CPU, in one run (issue 9; sections land with the features they measure).

    python -m benchmarks.runtime [--work runs/bench-runtime] [--out docs/results] [--quick]

1. Pipeline vs backend: the demo's TSM bundle, with a decision at every frame (window stride 1), over a
   stream of held-out test videos (``edge.demo.held_out_stream``, 96 px): the full pipeline (decode,
   preprocess, inference, overlay, H.264 encode to mp4) in decisions/s against the same backend alone in
   clips/s (batch 1), with ONNX Runtime's default threads, with 1 thread, and with a stand-in that sleeps
   as long as the 1-thread clip (``IdleBackend``: inference off the CPU, as on a GPU), each timed REPEATS
   times alternately (medians). The issue's goal: the pipeline keeps at least 90% of the backend's throughput.
2. Streams: 1, 2, 4 and 8 copies of that stream in one `run_streams` (json output), batched (up to one
   clip per stream per call) and unbatched (``max_batch`` 1): aggregate frames/s and each stream's
   end-to-end latency p50/p95 (capture to decision).
3. Online vs clip mode: the demo's data set (12 classes, 48 videos a class), the demo's TSM (`tsm_resnet18`,
width 16, 8 segments over 32 frames, 64 px) and its causal twin (`tsm_online_resnet18`) trained the same
way (`edge train`, 16 epochs), exported with `--int8 --online`. For each: test clip accuracy and order
accuracy (`edge eval`), then ONNX Runtime latency at batch 1, fp32 and INT8, in interleaved rounds: one
clip through the clip model against one frame through the per-frame model, called as the runtime calls it
for one stream (``edge.online.BoundStep``: IOBinding, shift buffers carried). The issue's goal:
a frame at most 1/T of a clip, plus 20%. The same comparison at the paper's geometry (8 x 224 x 224,
width 64, untrained: speed does not depend on the weights) shows how much of the gap is fixed per-call
overhead. Writes runtime.json and runtime.md under --out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make `import edge` find the package, not this directory
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

from benchmarks.common import clips_per_s, parse_args, write_results
from edge.machine import cpu_name

MODELS = ("tsm_resnet18", "tsm_online_resnet18")
REPEATS = 5  # backend-alone and pipeline runs, alternated, per row (3 left the medians at the mercy of one slow spell)
BACKEND_ROWS = {"default": "ONNX Runtime, default threads", "1": "ONNX Runtime, 1 thread",
                "stand-in": "CPU-free stand-in (sleeps the 1-thread clip time)"}


def edge(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "edge.cli", *args], check=True)


class FrameStep:
    """The per-frame model as a ``Backend`` for ``clips_per_s``, called the way ``edge run --mode online``
    calls it for one stream (``edge.online.BoundStep``: IOBinding, buffers carried from call to call). Each
    call takes the next frame of the clip it is given, so it can be timed in the same rounds as the clip
    model."""

    def __init__(self, path: Path, buffers: list[dict[str, Any]]) -> None:
        from edge.backends.ort import OrtBackend
        from edge.online import BoundStep
        from export.online import zero_feed

        self.step = BoundStep(OrtBackend(path).session, "frame", "logits", buffers)
        self.state = zero_feed(buffers)
        self.calls = 0

    def infer(self, clip: np.ndarray) -> np.ndarray:
        logits, self.state = self.step.step(clip[0, self.calls % clip.shape[1]], self.state)
        self.calls += 1
        return logits[None]


def latency(clip_model: Path, online_model: Path, buffers: list[dict[str, Any]], shape: tuple[int, ...],
            runs: int, rounds: int) -> dict[str, float]:
    """Median batch-1 ms of a clip through ``clip_model`` and of a frame through ``online_model``."""
    from edge.backends.ort import OrtBackend

    clip = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    rates = clips_per_s({"clip": OrtBackend(clip_model), "frame": FrameStep(online_model, buffers)}, clip, runs,
                        rounds)  # interleaved rounds: a slow spell of the machine hits both
    clip_rate, frame_rate = rates["clip"], rates["frame"]
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


def stride_one(bundle: Path, out: Path) -> Path:
    """A copy of ``bundle`` that decides at every frame (window stride 1): the pipeline is then as busy
    with inference as it can be, so it is compared with the backend on equal work."""
    shutil.copytree(bundle, out, dirs_exist_ok=True)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["clip"]["stride_frames"] = 1
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


class IdleBackend:
    """Stands in for a GPU in the last row of the pipeline table: each call sleeps (no CPU used, the GIL
    released, as a call waiting on a GPU does) for ``seconds``, the ORT clip's time alone at 1 thread in
    this run, and returns zero logits. The pipeline against it measures what GStreamer and Python cost when
    inference is not on these cores, as on a Jetson. Not a backend `edge run` offers."""

    name, precision = "idle-stand-in", "fp32"

    def __init__(self, seconds: float, classes: int) -> None:
        self.seconds, self.classes = seconds, classes

    def infer(self, clip: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds)
        return np.zeros((clip.shape[0], self.classes), np.float32)


def pipeline_vs_backend(bundle_dir: Path, video: Path, work: Path, runs: int) -> list[dict[str, Any]]:
    """One row per backend: ONNX Runtime with its default intra-op threads (one per core) and with 1, which
    leaves the other core to decode, Python and encode, then ``IdleBackend`` taking as long as the 1-thread
    clip (on a Jetson decode, encode and inference are not on the CPU's cores)."""
    from edge.backends.ort import OrtBackend
    from edge.bundle import Bundle
    from edge.pipeline import run_streams

    bundle = Bundle.load(stride_one(bundle_dir, work / "stride1"))
    clip = np.random.default_rng(0).random(bundle.input_shape(), dtype=np.float32)
    source, output = f"file://{video.resolve()}", f"file://{(work / 'out.mp4').resolve()}"
    # once per process, not per run: GStreamer's init and plugin registry scan (about 0.6 s here), as the
    # backend's session creation is not in its clips/s either; every timed run still opens and flushes its
    # decoder and encoder
    run_streams(bundle, OrtBackend(bundle.path("fp32")), [source], [[output]], max_frames=64)
    rows: list[dict[str, Any]] = []
    for row in BACKEND_ROWS:  # ORT at its default threads and at 1, then the stand-in timed like the latter
        if row == "stand-in":
            backend: Any = IdleBackend(1 / rows[-1]["backend_clips_per_s"], len(bundle.labels))
        else:
            backend = OrtBackend(bundle.path("fp32"), threads=0 if row == "default" else int(row))
        backend_rates, pipeline_rates = [], []
        for _ in range(REPEATS):  # alternated: this shared machine's speed drifts within seconds
            backend_rates.append(clips_per_s({"b": backend}, clip, runs, 5)["b"])
            summary = run_streams(bundle, backend, [source], [[output]])[0]
            pipeline_rates.append(summary.decisions / summary.wall_s)
        backend_rate, pipeline_rate = float(np.median(backend_rates)), float(np.median(pipeline_rates))
        rows.append({"threads": row, "backend_clips_per_s": backend_rate,
                     "pipeline_decisions_per_s": pipeline_rate, "frames": summary.frames,
                     "ratio": pipeline_rate / backend_rate, "backend_runs": backend_rates,
                     "pipeline_runs": pipeline_rates})
    return rows


def streams(bundle_dir: Path, video: Path, work: Path, counts: tuple[int, ...]) -> list[dict[str, Any]]:
    import re

    from edge.backends.ort import OrtBackend
    from edge.bundle import Bundle
    from edge.pipeline import Batching, run_streams

    bundle = Bundle.load(bundle_dir)
    rows = []
    for n in counts:
        for batched in (True, False):
            outs = [[f"json://{(work / f'ev_{n}_{i}.jsonl').resolve()}"] for i in range(n)]
            t0 = time.perf_counter()
            summaries = run_streams(bundle, OrtBackend(bundle.path("fp32")), [f"file://{video.resolve()}"] * n, outs,
                                    batching=Batching(max_batch=n if batched else 1, max_wait_ms=20))
            wall = time.perf_counter() - t0
            e2e = [tuple(map(float, re.search(r"end_to_end ([\d.]+)/([\d.]+)", x.latency).groups())) for x in summaries]
            sizes = summaries[0].batches
            rows.append({"streams": n, "batched": batched, "frames_per_s": sum(x.frames for x in summaries) / wall,
                         "e2e_p50_ms": float(np.median([a for a, _ in e2e])),
                         "e2e_p95_ms": float(np.median([b for _, b in e2e])),
                         "mean_batch": sum(sizes) / max(1, len(sizes))})
    return rows


def markdown(result: dict[str, Any]) -> str:
    rows = result["models"]
    lines = ["# Runtime", "",
             f"`python -m benchmarks.runtime` on {result['cpu']} ({result['seconds']:.0f} s). Load average at "
             f"the end (1/5/15 min): {result['load']}.", "",
             "## The pipeline against its backend (one stream)", "",
             f"The demo's TSM deciding at every frame over {result['pipeline'][0]['frames']} frames of held-out "
             "test videos: decode, preprocess, inference (ONNX Runtime fp32, batch 1), overlay and H.264 encode "
             "to mp4, against the same backend alone, with ONNX Runtime's intra-op threads at its default (one "
             "per core) and at 1 (the other core left to decode, Python and encode). Each timed run opens and "
             "flushes its own decoder and encoder; GStreamer's one-time init is done before (a short run), as "
             "the backend's session is made before its timing. Backend and pipeline are timed "
             f"{REPEATS} times each, alternated; the table has the medians. Goal: at least 90%.", "",
             "| backend | backend alone (clips/s) | full pipeline (decisions/s) | pipeline / backend |",
             "|---|---:|---:|---:|"]
    lines += [f"| {BACKEND_ROWS.get(str(r['threads']), r['threads'])} | {r['backend_clips_per_s']:.1f} | "
              f"{r['pipeline_decisions_per_s']:.1f} | {r['ratio']:.0%} |" for r in result["pipeline"]]
    lines += ["", "The stand-in (`IdleBackend` in benchmarks/runtime.py) sleeps as long as the 1-thread clip takes "
              "alone and uses no CPU, as a call waiting on a GPU: its row is what GStreamer and Python cost "
              "when inference is not on these 2 cores (a Jetson's case), the ONNX Runtime rows what they cost "
              "when it is."]
    lines += ["",
             "## Streams in one process", "",
             "Copies of that stream (file sources: every frame processed, none dropped), json output, the demo's "
             "window (a decision every 8 frames). Batched: up to one clip per stream per call, 20 ms wait; "
             "unbatched: one clip per call. Latency: capture to decision, the median over streams of each "
             "stream's p50 / p95.", "",
             "| streams | batched | frames/s (all streams) | mean clips per call | latency p50 (ms) | p95 (ms) |",
             "|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {r['streams']} | {'yes' if r['batched'] else 'no'} | {r['frames_per_s']:.0f} | {r['mean_batch']:.2f} | "
              f"{r['e2e_p50_ms']:.1f} | {r['e2e_p95_ms']:.1f} |" for r in result["streams"]]
    lines += ["", "## Online mode vs clip mode", "",
             f"The demo's data set and training ({result['setup']}). The online model is the same network with "
             "the causal shift (docs/runtime.md).", "",
             "| model | test clip acc | order acc (within pair) |", "|---|---:|---:|"]
    lines += [f"| {m} | {r['accuracy']:.3f} | {r['order_accuracy']:.3f} |" for m, r in rows.items()]
    lines += ["", "Latency at batch 1, ONNX Runtime on this CPU, in the same interleaved rounds: a clip through "
              "the clip model, a frame through the per-frame model as `edge run --mode online` runs one "
              "stream (IOBinding, its shift buffers carried). The goal is a frame at most 1/T of a clip + 20% "
              "(ratio <= 1.20).", "",
              "| geometry | precision | clip (ms) | frame (ms) | T | frame / (clip / T) |", "|---|---|---:|---:|---:|---:|"]
    for name, r in result["latency"].items():
        geometry, precision = name.split(":")
        lines.append(f"| {geometry} | {precision} | {r['clip_ms']:.3f} | {r['frame_ms']:.3f} | "
                     f"{r['frames_per_clip']} | {r['frame_vs_clip_over_t']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args(__doc__, "runs/bench-runtime")

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
                                                              manifest["online"]["buffers"], shape, runs, 15)
           for p, s in (("fp32", ""), ("int8", ".int8"))}
    lat["paper 8x224x224 (untrained):fp32"] = paper_geometry(work, 3 if args.quick else 20)
    from edge.demo import held_out_stream

    video = held_out_stream(data, work / "stream.mp4", per_class=1 if args.quick else 3, width=96)
    dense = work / "bundles" / "tsm_resnet18"
    pipeline = pipeline_vs_backend(dense, video, work, runs)
    stream_rows = streams(dense, video, work, (1, 2) if args.quick else (1, 2, 4, 8))
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    setup = f"{classes} classes, {videos} videos a class, {epochs} epochs"
    result = {"cpu": cpu_name(), "seconds": time.time() - t0, "load": load, "setup": setup, "models": models,
              "latency": lat, "pipeline": pipeline, "streams": stream_rows}
    write_results(args.out, "runtime", result, markdown)


if __name__ == "__main__":
    main()
