"""Compression on the synthetic set, every figure measured in one run on this machine's CPU.

    python -m benchmarks.compress [--quick] [--work runs/bench-compress] [--out docs/results] [--width 32]
                                  [--name compress] [--model tsm_resnet18 --segments 8 --model-opt K=V ...]
                                  [--parts deep,structured,stacked]

T-C3D's row (the paper's own model through deep compression): --model tc3d_res3d18 --segments 12
--model-opt clip_len=4 --parts deep --name compress_tc3d (3 clips of 4 frames at the synthetic set's scale).

1. data: the synthetic action set, its test split large enough that one clip is under 0.5 point, trained on
   only --train-per-class videos of each class (the full split teaches a TSM every test clip, and a
   saturated model cannot tell the criteria apart nor show what compression costs);
2. a TSM ResNet-18 trained on it (`edge train`'s loop);
3. deep compression (T-C3D): magnitude_prune (0.9 conv / 0.95 FC, +0.1 per epoch, then 4 epochs at the
   target) -> dsd -> kmeans (8/5 bits) -> store: the .edgez against the fp32 ONNX, and the accuracy lost;
4. structured pruning by each criterion (l1, covariance, correlation, geometric_median) at one ratio,
   fine-tuned 10 epochs at lr 1e-3: accuracy, GFLOPs and ORT fp32 clips/s;
5. stacked: the best criterion pruning the blocks' inner channels as in 4 *and* --stream-ratio of every
   residual stream (the channels tied by the additions, which the shift and every per-node cost of a 64 px
   clip scale with), then INT8, QAT (the int8 stage) and PTQ, both through `edge export --int8`, against
   the dense fp32 torch eager baseline measured in the same run; and the same pruned architecture at the
   paper's geometry (untrained weights: speed depends on shapes).

Writes compress.json and compress.md under --out; `--quick` runs everything tiny (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if not __package__:  # run as a script: make `import train` find the package, not this directory
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

CRITERIA = ("l1", "covariance", "correlation", "geometric_median")
PARTS = ("deep", "structured", "stacked")


def keep_first_per_class(split: Path, k: int) -> None:
    """Rewrite a UCF-style train list (``class/video label`` lines) to its first ``k`` videos of each class."""
    from edge.atomic import write_text

    kept: dict[str, list[str]] = {}
    for line in split.read_text().splitlines():
        kept.setdefault(line.split("/", 1)[0], []).append(line)
    write_text(split, "".join(f"{line}\n" for lines in kept.values() for line in lines[:k]))


def recipe(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("runs/bench-compress"))
    ap.add_argument("--out", type=Path, default=Path("docs/results"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ratio", type=float, default=0.5, help="filter_prune ratio of every block's inner channels")
    ap.add_argument("--stream-ratio", type=float, default=0.5,
                    help="the stacked model's filter_prune stream_ratio (of every residual stream's channels)")
    ap.add_argument("--width", type=int, default=32, help="ResNet-18 base width of the trained model")
    ap.add_argument("--name", default="compress", help="output file stem under --out (NAME.json, NAME.md)")
    ap.add_argument("--train-per-class", type=int, default=24,
                    help="training videos kept per class (of 54); the test split keeps all 18 per class")
    ap.add_argument("--model", default="tsm_resnet18", help="registry name of the model trained and compressed")
    ap.add_argument("--segments", type=int, default=8, help="frames per clip (edge train --segments)")
    ap.add_argument("--model-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="the model's own option (edge train --model-opt)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"which of {', '.join(PARTS)} to run")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        ap.error(f"--parts: expected a comma-separated subset of {', '.join(PARTS)}, got {args.parts!r}")

    from benchmarks.common import clips_per_s
    from edge.atomic import write_text
    from edge.backends.ort import OrtBackend
    from edge.backends.torch import TorchBackend
    from edge.machine import cpu_name
    from train.cli import parse_model_opts
    from train.data.synth import generate
    from train.engine import Checkpoint
    from train.run import train_run

    q = args.quick
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    ft = 1 if q else 4  # fine-tune epochs after each kmeans / int8 stage
    # after structured pruning: half of every block's channels to recover from (at 6 epochs the pruned models
    # were still improving: covariance peaked at epoch 5 and ended 1.4 points under the dense model)
    ft_pruned = 1 if q else 10
    data = generate(work / "data", classes=12, videos_per_class=4 if q else 72, seed=0, frames=16 if q else 32,
                    size=48 if q else 96, progress=not q).out
    if not q:
        keep_first_per_class(data / "splits" / "trainlist01.txt", args.train_per_class)
    tag = "" if args.model == "tsm_resnet18" else f"{args.model}-"  # each model's runs in their own directories
    base = work / f"{tag}train"
    resumed = (base / "best.pt").is_file()
    if not resumed:
        train_run(args.model, data, base, epochs=1 if q else 15, width=8 if q else args.width, size=32 if q else 64,
                  segments=4 if q and args.model == "tsm_resnet18" else args.segments, progress=not q,
                  options=parse_model_opts(tuple(args.model_opt)))
    dense_ckpt = base / "best.pt"
    runs = 5 if q else 20
    results: dict = {"cpu": cpu_name(), "quick": q, "resumed": resumed}
    ckpt = Checkpoint.load(dense_ckpt)
    shape = ckpt.input["shape"]
    clip = np.random.default_rng(0).standard_normal((1, *shape), dtype=np.float32)
    engines = {"torch fp32 eager, dense": TorchBackend(dense_ckpt)}
    if "deep" in parts:
        results.update(deep_compression(dense_ckpt, data, work, tag, ft, q))
        engines["ORT fp32, dense"] = OrtBackend(work / f"{tag}deep" / "stages" / "0-input" / "model.onnx")
    if parts & {"structured", "stacked"}:
        structured, best, stacked, stacked_rows, int8_acc = structured_and_stacked(
            dense_ckpt, data, work, tag, (args.ratio, args.stream_ratio), ft, ft_pruned, q)
        for crit in CRITERIA:
            engines[f"ORT fp32, {crit} pruned"] = OrtBackend(structured[crit]["onnx"])
        engines[f"ORT fp32, {best} pruned + streams"] = OrtBackend(stacked / "stages" / "1-filter_prune" / "model.onnx")
        for method in ("QAT", "PTQ"):
            bundle = work / f"{tag}stacked-{method.lower()}"
            engines[f"ORT INT8 {method}, {best} pruned + streams"] = OrtBackend(bundle / "model.int8.onnx", "int8")
        engines[f"ORT INT8 QAT graph (TensorRT's), {best} pruned + streams"] = OrtBackend(
            work / f"{tag}stacked-qat" / "model.int8.trt.onnx", "int8")
        results["structured"] = {c: structured[c]["rows"] for c in CRITERIA}
        results["stacked"] = {"criterion": best, "ratio": args.ratio, "stream_ratio": args.stream_ratio,
                              "rows": stacked_rows, "int8_accuracy": int8_acc}
        results["paper_geometry"] = paper_geometry_speed(dense_ckpt, stacked / "stages" / "1-filter_prune" /
                                                         "checkpoint.pt", work / f"{tag}paper-geometry", q)
    # throughput, batch 1, all in this run: dense torch eager fp32 is the baseline
    speed = clips_per_s(engines, clip, runs)
    results["model"] = {"name": ckpt.model, "width": ckpt.config["width"], "segments": ckpt.clip.num_segments,
                        "size": ckpt.preprocess.size,
                        "train_clips": len((data / "splits" / "trainlist01.txt").read_text().splitlines()),
                        "test_clips": len((data / "splits" / "testlist01.txt").read_text().splitlines())}
    results["clips_per_s"] = speed
    results["seconds"] = round(time.time() - t0)
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]  # 1/5/15 min: was the CPU shared?
    results["cores"] = os.cpu_count()
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / f"{args.name}.json", json.dumps(results, indent=2) + "\n")
    md = markdown(results)
    write_text(args.out / f"{args.name}.md", md)
    print(md)


def deep_compression(dense_ckpt: Path, data: Path, work: Path, tag: str, ft: int, q: bool) -> dict:
    """T-C3D's pipeline (magnitude_prune -> dsd -> kmeans 8/5 bits -> store), and the DSD model shared with 5-bit
    conv codes too: the rows, the .edgez against the fp32 ONNX, the accuracy lost."""
    from export.compress import compress

    deep = work / f"{tag}deep"
    rows = compress(dense_ckpt, recipe(work / "deep.toml", f"""
[[stage]]
kind = "magnitude_prune"
step = 0.1
finetune_epochs = {1 if q else 14}
lr = 0.001

[[stage]]
kind = "dsd"
epochs = {1 if q else 2}
finetune_epochs = {ft}
lr = 0.001

[[stage]]
kind = "kmeans"
finetune_epochs = {ft}

[[stage]]
kind = "store"
"""), data, deep, resume=(deep / "stages").is_dir(), progress=not q)
    store = json.loads((deep / "stages" / "4-store" / "store.json").read_text())
    onnx_bytes = (deep / "stages" / "0-input" / "model.onnx").stat().st_size
    results = {"deep": {"rows": rows, "store": {k: v for k, v in store.items() if k != "layers"},
                        "fp32_onnx_bytes": onnx_bytes, "ratio": onnx_bytes / store["file_bytes"],
                        "accuracy_lost": rows[0]["accuracy"] - rows[-1]["accuracy"]}}
    # the same pruned model shared with 5-bit conv codes too (the paper's FC width): size against accuracy
    deep5 = work / f"{tag}deep-5bit"
    rows5 = compress(deep / "stages" / "2-dsd" / "checkpoint.pt", recipe(work / "deep5.toml", f"""
[[stage]]
kind = "kmeans"
conv_bits = 5
fc_bits = 5
finetune_epochs = {ft}

[[stage]]
kind = "store"
"""), data, deep5, resume=(deep5 / "stages").is_dir(), progress=not q)
    store5 = json.loads((deep5 / "stages" / "2-store" / "store.json").read_text())
    results["deep_5bit"] = {"rows": rows5, "file_bytes": store5["file_bytes"],
                            "ratio": onnx_bytes / store5["file_bytes"],
                            "accuracy_lost": rows[0]["accuracy"] - rows5[-1]["accuracy"]}
    return results


def structured_and_stacked(dense_ckpt: Path, data: Path, work: Path, tag: str, ratios: tuple[float, float],
                           ft: int, ft_pruned: int, q: bool) -> tuple[dict, str, Path, list[dict], dict]:
    """Structured pruning by each criterion (inner channels at ``ratios[0]``), then the best one with the
    residual streams pruned too (``ratios[1]``) + INT8: QAT (the int8 stage) and PTQ, each exported by
    ``edge export --int8``, whose manifests give the accuracy of every INT8 file timed."""
    from export.bundle import export_bundle
    from export.compress import compress

    ratio, stream_ratio = ratios
    structured = {}
    for crit in CRITERIA:
        out = work / f"{tag}structured-{crit}"
        rows = compress(dense_ckpt, recipe(work / f"{crit}.toml", f"""
[[stage]]
kind = "filter_prune"
criterion = "{crit}"
ratio = {ratio}
finetune_epochs = {ft_pruned}
lr = 0.001
"""), data, out, resume=(out / "stages").is_dir(), progress=not q)
        structured[crit] = {"rows": rows, "onnx": str(out / "stages" / "1-filter_prune" / "model.onnx")}
    best = max(CRITERIA, key=lambda c: structured[c]["rows"][-1]["accuracy"])

    stacked = work / f"{tag}stacked"
    stacked_rows = compress(dense_ckpt, recipe(work / "stacked.toml", f"""
[[stage]]
kind = "filter_prune"
criterion = "{best}"
ratio = {ratio}
stream_ratio = {stream_ratio}
finetune_epochs = {ft_pruned}
lr = 0.001

[[stage]]
kind = "int8"
finetune_epochs = {ft}
"""), data, stacked, resume=(stacked / "stages").is_dir(), progress=not q)
    int8_acc = {}
    for method, ckpt in (("qat", stacked / "checkpoint.pt"), ("ptq", stacked / "stages" / "1-filter_prune" /
                                                                      "checkpoint.pt")):
        bundle = work / f"{tag}stacked-{method}"
        if not bundle.exists():
            export_bundle(ckpt, bundle, data=data, int8=True)
        measured = json.loads((bundle / "manifest.json").read_text())["accuracy"]
        int8_acc[method] = {k: measured[k] for k in ("int8", "int8-trt")}
    return structured, best, stacked, stacked_rows, int8_acc


def paper_geometry_speed(dense_ckpt: Path, pruned_ckpt: Path, work: Path, q: bool) -> dict:
    """Batch-1 clips/s of the stacked model's architecture at its paper's geometry (``build_model``'s defaults,
    101 classes, the input ``benchmarks.zoo.paper_geometry`` gives), every pruned group keeping the fraction
    of its channels the pruned checkpoint keeps: torch fp32 eager dense (the baseline), ORT fp32 dense and
    pruned, ORT INT8 pruned: PTQ, and QAT as the int8 stage exports it (fake quantization with scales
    calibrated the way the stage does; its Q/DQ graph and ONNX Runtime's layout of it), on random clips. Untrained weights (small
    constant spreads so onnxsim stores every tensor): speed depends on the shapes alone."""
    import torch

    from benchmarks.common import clips_per_s
    from benchmarks.zoo import paper_geometry, untrained
    from edge.backends.ort import OrtBackend
    from edge.backends.torch import TorchBackend
    from export.int8 import quantize_int8
    from export.onnx import export_onnx
    from export.qat_ort import qat_for_ort
    from export.qdq import export_qdq
    from train.compress.qat import calibrate, quantized
    from train.compress.surgery import groups
    from train.engine import Checkpoint

    def kept(paper: list[int], pruned: list[int], full: list[int]) -> list[int]:
        return [max(1, round(p * k / f)) for p, k, f in zip(paper, pruned, full, strict=True)]

    trained, pruned = Checkpoint.load(dense_ckpt), Checkpoint.load(pruned_ckpt)
    config, shape = paper_geometry(trained.model)
    if q:  # the smoke test: a small input, not the paper's
        shape = (*shape[:3], 64, 64)
    big = trained.build()
    dense = untrained(trained.model, config)
    keep = {"inner_widths": kept([g.width for g in groups(dense)], pruned.config["inner_widths"],
                                 [g.width for g in groups(big)])}
    if "stream_widths" in pruned.config:
        keep["stream_widths"] = kept(dense.backbone.stream_widths, pruned.config["stream_widths"],
                                     big.backbone.stream_widths)
    slim = untrained(trained.model, {**config, **keep})
    work.mkdir(parents=True, exist_ok=True)
    clip = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    for name, model in (("dense", dense), ("pruned", slim)):
        export_onnx(model, torch.from_numpy(clip), work / f"{name}.onnx")
    Checkpoint(trained.model, dict(config), dense.state_dict(), [str(i) for i in range(config["num_classes"])],
               {}).save(work / "dense.pt")
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal(shape[1:], dtype=np.float32) for _ in range(2 if q else 8)]
    quantize_int8(work / "pruned.onnx", work / "pruned.int8.onnx", calib)
    scales = calibrate(slim, (torch.from_numpy(c[None]) for c in calib))
    export_qdq(quantized(slim, scales), torch.from_numpy(clip), work / "pruned.qat.onnx")
    qat_for_ort(work / "pruned.qat.onnx", work / "pruned.qat.ort.onnx", calib)
    engines = {"torch fp32 eager, dense": TorchBackend(work / "dense.pt"),
               "ORT fp32, dense": OrtBackend(work / "dense.onnx"),
               "ORT fp32, pruned": OrtBackend(work / "pruned.onnx"),
               "ORT INT8 QAT, pruned": OrtBackend(work / "pruned.qat.ort.onnx", "int8"),
               "ORT INT8 QAT graph (TensorRT's), pruned": OrtBackend(work / "pruned.qat.onnx", "int8"),
               "ORT INT8 PTQ, pruned": OrtBackend(work / "pruned.int8.onnx", "int8")}
    speed = clips_per_s(engines, clip, 3 if q else 20, rounds=2 if q else 3, budget_s=0.5 if q else 3.0)
    return {"input": list(shape), **keep, "clips_per_s": speed}


def markdown(r: dict) -> str:
    """The results page: the sections of the parts that ran, then the speed table."""
    m = r["model"]
    first = r["deep"]["rows"][0] if "deep" in r else r["structured"]["l1"][0]  # the input model's row
    lines = [
        "# Compression results",
        "",
        f"`python -m benchmarks.compress` on {r['cpu']}{' (--quick)' if r['quick'] else ''}: {r['seconds']} s"
        + (" in its last invocation, which reused the stages an earlier one finished (all figures are from this "
           "work directory; timings from the last invocation)." if r.get("resumed") else " in one run.")
        + (f" Load average at the end (1/5/15 min): {'/'.join(map(str, r['load_average']))} on "
           f"{r['cores']} cores." if "load_average" in r else ""),
        f"{m['name']} (width {m['width']:g}, {m['segments']} segments, {m['size']} px) on the synthetic set, "
        + (f"trained on {m['train_clips']} videos, " if "train_clips" in m else "")
        + f"{m['test_clips']} test clips (one clip = {100 / m['test_clips']:.2f} points); test clip accuracy of "
        f"the dense model {first['accuracy']:.3f}.",
        "",
    ]
    if "deep" in r:
        lines += _deep_section(r["deep"], r["deep_5bit"])
    if "structured" in r:
        lines += _structured_section(r["structured"], r["clips_per_s"])
    if "stacked" in r:
        st = r["stacked"]
        pruned = st["rows"][1]  # after filter_prune and its fine-tuning
        lines += [f"## Stacked: {st['criterion']} pruning of the inner channels and the residual streams + INT8", "",
                  f"filter_prune with ratio = {st['ratio']:g} and stream_ratio = {st['stream_ratio']:g} (every "
                  f"residual stream, the channels tied by the additions): accuracy {pruned['accuracy']:.3f} "
                  f"({pruned['accuracy'] - first['accuracy']:+.3f}), {pruned['gflops']:.4f} GFLOPs "
                  f"({1 - pruned['gflops'] / first['gflops']:.0%} removed), {pruned['params']} params. Then INT8, "
                  f"test clip accuracy of each file timed below (ONNX Runtime): {_int8_accuracies(st)}.", ""]
    lines += [
        "Batch 1, ONNX Runtime with its default threads; 5 interleaved rounds of 20 calls per engine, the "
        "median of the rounds' medians.",
        "",
        *_speed_table(r["clips_per_s"]),
    ]
    if "paper_geometry" in r:
        lines += _paper_geometry_section(r["paper_geometry"], m["name"])
    return "\n".join(lines)


def _int8_accuracies(st: dict) -> str:
    """QAT (the int8 stage's torch model, its ORT layout, its TensorRT graph) and PTQ (ORT's, TensorRT's)."""
    qat, ptq = st["int8_accuracy"]["qat"], st["int8_accuracy"]["ptq"]
    return (f"QAT {qat['int8']:.3f} in ONNX Runtime's layout and {qat['int8-trt']:.3f} as its own Q/DQ graph "
            f"(TensorRT's; the fake-quantized torch model {st['rows'][-1]['accuracy']:.3f}), PTQ {ptq['int8']:.3f} "
            f"(calibrated for TensorRT instead: {ptq['int8-trt']:.3f})")


def _paper_geometry_section(pg: dict, name: str) -> list[str]:
    _, t, c, h, w = pg["input"]
    return [
        f"### The same pruned architecture at the paper's geometry ({t} x {c} x {h} x {w})",
        "",
        f"`build_model({name!r}, num_classes=101)` and its pruned twin (each pruned group and residual stream "
        "keeps the fraction of its channels the stacked checkpoint keeps), untrained weights (speed depends on "
        "shapes); INT8 calibrated on random clips, as PTQ and as the int8 stage's QAT model (fake quantization "
        "exported as Q/DQ: that graph, TensorRT's, and ONNX Runtime's layout of it with the same scales). 3 interleaved rounds of up to 20 calls or 3 s.",
        "",
        *_speed_table(pg["clips_per_s"]),
    ]


def _speed_table(speed: dict) -> list[str]:
    """clips/s per engine and the ratio to the first row, torch fp32 eager dense (the baseline)."""
    base = speed["torch fp32 eager, dense"]
    return ["| engine | clips/s (batch 1) | vs torch fp32 eager dense |", "|---|---:|---:|",
            *[f"| {k} | {v:.1f} | {v / base:.2f}x |" for k, v in speed.items()], ""]


def _deep_section(deep: dict, deep5: dict) -> list[str]:
    return [
        "## Deep compression (magnitude_prune -> dsd -> kmeans -> store)",
        "",
        "| stage | accuracy | nonzero params | size (MB) |",
        "|---|---:|---:|---:|",
        *[f"| {x['stage']} | {x['accuracy']:.3f} | {x['params_nonzero']} | {x['size_mb']:.4f} |" for x in deep["rows"]],
        "",
        f"fp32 ONNX {deep['fp32_onnx_bytes'] / 2**20:.3f} MB -> .edgez {deep['store']['file_bytes'] / 2**20:.4f} MB: "
        f"**{deep['ratio']:.1f}x smaller**, accuracy {-deep['accuracy_lost']:+.3f}. Huffman payload "
        f"{deep['store']['payload_bits']} bits vs entropy bound {deep['store']['entropy_bits']:.0f} bits "
        f"({deep['store']['payload_bits'] / max(deep['store']['entropy_bits'], 1):.3f}x); the same sparse "
        f"quantized weights: ours {deep['store']['weights_bytes']} B, zlib -9 {deep['store']['zlib_bytes']} B, "
        f"lzma -9 {deep['store']['lzma_bytes']} B.",
        "",
        f"With 5-bit conv codes as well (k-means on the DSD model, then store): "
        f"{deep5['file_bytes'] / 2**20:.4f} MB, **{deep5['ratio']:.1f}x**, accuracy "
        f"{-deep5['accuracy_lost']:+.3f}.",
        "",
    ]


def _structured_section(structured: dict, speed: dict) -> list[str]:
    lines = [
        "## Structured pruning (filter_prune, then fine-tuning)",
        "",
        "| criterion | accuracy | GFLOPs | FLOPs removed | params | ORT fp32 clips/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c, rows in structured.items():
        a, b = rows[0], rows[-1]
        lines.append(f"| {c} | {b['accuracy']:.3f} ({b['accuracy'] - a['accuracy']:+.3f}) | {b['gflops']:.4f} | "
                     f"{1 - b['gflops'] / a['gflops']:.0%} | {b['params']} | "
                     f"{speed[f'ORT fp32, {c} pruned']:.1f} |")
    return [*lines, ""]


if __name__ == "__main__":
    main()
