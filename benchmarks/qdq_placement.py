"""Our TensorRT Q/DQ placement (export/trt_qdq.py) against nvidia-modelopt's ONNX quantizer, per bundle.

    python -m benchmarks.qdq_placement --bundle B [--bundle B2 ...] --data DATA --calib-dir DIR
    python -m benchmarks.qdq_placement --bundle B [--bundle B2 ...] --data DATA --calib-dir DIR --compare

modelopt cannot live in edge's environment (on x86 its ``[onnx]`` extra pins onnxruntime-gpu and onnx 1.21;
edge runs onnxruntime 1.32 for the CPU and onnx 1.23), so its models are made in a venv of its own. The
first call writes each bundle's calibration clips (the 64 train-split clips `edge export --int8` uses) to
``DIR/<bundle>.npz`` and prints the modelopt command for each; the second (``--compare``) reads
``DIR/<bundle>.modelopt.onnx`` and writes docs/results/qdq_placement.md:

- placement: for every node of the float graph, which inputs read a DequantizeLinear, ours vs modelopt's;
- activation scales of the tensors both quantize (ours / modelopt's);
- Q/DQ nodes TensorRT's parser refuses (INT8 with zero point 0 only), for the bundle's ONNX Runtime model too;
- test clip accuracy in ONNX Runtime (CPU) and top-1 agreement with the float model; file sizes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # run as a script: make `import export` find the package, not this directory
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from edge.atomic import write_text
from edge.bundle import Bundle
from edge.machine import cpu_name
from export.onnx import INPUT_NAME
from export.trt_qdq import quantize_for_tensorrt, tensorrt_qdq_problems
from train.run import calibration_clips, eval_clips

MODELOPT = ("{python} -m modelopt.onnx.quantization --onnx_path {onnx} --quantize_mode int8 "
            "--calibration_data_path {npz} --calibration_method max --calibration_eps cpu "
            "--high_precision_dtype fp32 --output_path {out}")


def dq_inputs(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Node name -> indices of its inputs that a DequantizeLinear produces (Q/DQ nodes themselves left out)."""
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    return {n.name: tuple(i for i, x in enumerate(n.input) if producer.get(x) == "DequantizeLinear")
            for n in model.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")}


def activation_scales(model: onnx.ModelProto) -> dict[str, float]:
    """Quantized activation tensor -> its scale (a QuantizeLinear of a non-constant)."""
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.input[0]: float(consts[n.input[1]]) for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.input[0] not in consts and n.input[1] in consts}


def outputs(path: Path, clips: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {INPUT_NAME: c[None]})[0] for c in clips])


def compare(bundle: Bundle, data: Path, ours: Path, reference: Path) -> list[str]:
    """Markdown lines for one bundle."""
    a, b = onnx.load(str(ours)), onnx.load(str(reference))
    pa, pb = dq_inputs(a), dq_inputs(b)
    both = sorted(set(pa) & set(pb))
    differ = [k for k in both if pa[k] != pb[k]]
    sa, sb = activation_scales(a), activation_scales(b)
    ratio = [sa[t] / sb[t] for t in set(sa) & set(sb) if sb[t]]
    test = list(eval_clips(data, bundle.preprocess, bundle.clip, bundle.labels, bundle.motion))
    clips, labels = np.stack([c for c, _ in test]), np.array([y for _, y in test])
    ref = outputs(bundle.path("fp32"), clips)
    lines = [f"### {bundle.name}", "",
             f"Placement: {len(both) - len(differ)} of {len(both)} nodes read the same inputs through "
             f"DequantizeLinear in both models" + (f"; differing: {', '.join(differ[:8])}" if differ else "") + ".",
             f"Activation scales: {len(set(sa) & set(sb))} tensors quantized by both (ours {len(sa)}, modelopt "
             f"{len(sb)}); ours / modelopt's scale from {min(ratio, default=float('nan')):.4f} to "
             f"{max(ratio, default=float('nan')):.4f}.", "",
             "| model | Q / DQ nodes | TensorRT refuses | size (MB) | test accuracy (ORT CPU) | top-1 = fp32 |",
             "|---|---:|---:|---:|---:|---:|"]
    rows = [("fp32", bundle.path("fp32")), ("the bundle's `model.int8.onnx` (ORT PTQ, or QAT)", bundle.path("int8")),
            ("ours for TensorRT (`model.int8.trt.onnx`)", ours), ("nvidia-modelopt", reference)]
    for name, path in rows:
        m = onnx.load(str(path))
        ops = [n.op_type for n in m.graph.node]
        out = outputs(path, clips)
        lines.append(f"| {name} | {ops.count('QuantizeLinear')} / {ops.count('DequantizeLinear')} | "
                     f"{len(tensorrt_qdq_problems(m))} | {path.stat().st_size / 1e6:.2f} | "
                     f"{(out.argmax(1) == labels).mean():.3f} | {(out.argmax(1) == ref.argmax(1)).mean():.3f} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True)
    ap.add_argument("--data", type=Path, required=True, help="the bundles' dataset (train split: calibration)")
    ap.add_argument("--calib-dir", type=Path, required=True)
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--python", default="/tmp/modelopt/bin/python", help="modelopt's venv (printed command)")
    ap.add_argument("--modelopt-version", default="0.47.0", help="the version that made the reference models")
    ap.add_argument("--out", type=Path, default=Path("docs/results"))
    args = ap.parse_args(argv)
    args.calib_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Q/DQ placement for TensorRT: ours vs nvidia-modelopt", "",
             "`python -m benchmarks.qdq_placement` (its docstring has the two-step run) on the bundles `make demo` "
             f"writes, with nvidia-modelopt {args.modelopt_version} (`--calibration_method max`, calibrated on the "
             "CPU, fp32 kept where it does not quantize). Accuracy and agreement are ONNX Runtime's on this CPU "
             f"({cpu_name()}), on the demo's test split: no TensorRT here.", ""]
    for root in args.bundle:
        bundle = Bundle.load(root)
        stem = args.calib_dir / bundle.root.name
        if not args.compare:
            clips = calibration_clips(args.data, bundle.preprocess, bundle.clip, bundle.labels, motion=bundle.motion)
            np.savez(f"{stem}.npz", **{INPUT_NAME: np.stack(clips)})
            quantize_for_tensorrt(bundle.path("fp32"), f"{stem}.ours.onnx", clips)
            print(MODELOPT.format(python=args.python, onnx=bundle.path("fp32"), npz=f"{stem}.npz",
                                  out=f"{stem}.modelopt.onnx"))
            continue
        lines += compare(bundle, args.data, Path(f"{stem}.ours.onnx"), Path(f"{stem}.modelopt.onnx"))
    if args.compare:
        write_text(args.out / "qdq_placement.md", "\n".join(lines))
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
