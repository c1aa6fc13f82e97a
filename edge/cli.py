"""The ``edge`` command: ``run``, ``bench``, ``info`` here; ``data``/``train``/``eval``/``export`` come from
the training and export packages through the ``edge.commands`` entry point group, so this runtime module
imports neither (a Jetson image with only the runtime still gets a working ``edge run``)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edge.errors import EdgeError
from edge.plugins import plugins, unavailable

if TYPE_CHECKING:
    from edge.bundle import Bundle


class EdgeGroup(click.Group):
    """Turns EdgeError (bad user input) into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except EdgeError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=EdgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """edge: compact action recognition from training to a camera on an embedded GPU."""


def _load_plugins() -> None:
    for ep in plugins("edge.commands"):
        try:
            register = ep.load()
        except ImportError as e:  # e.g. torch absent on a runtime-only device image
            main.add_command(unavailable(ep.name, e.name or str(e)))
            continue
        register(main)


@main.command()
@click.option("--model", "bundle_dir", type=click.Path(path_type=Path), help="Bundle directory.")
@click.option("--source", "sources", multiple=True,
              help="file://x.mp4, test://, v4l2:///dev/video0, rtsp://..., csi://0 (repeatable: one stream each)")
@click.option("--sources", "sources_file", type=click.Path(path_type=Path), default=None,
              help="A file of source URIs, one per line (# comments), added to --source.")
@click.option("--output", "outputs", multiple=True,
              help="file://out.mp4, json://events.jsonl, display://, rtp://host:port (repeatable); with several "
                   "streams, {stream} in it becomes the stream's number")
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Frames of at most this many streams per inference call.")
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="How long a partial batch waits for the other streams.")
@click.option("--backend", default="ort", show_default=True, help="ort, torch or tensorrt (an `edge build` engine)")
@click.option("--precision", default="fp32", show_default=True, help="fp32 or int8")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or tensorrt (ORT provider)")
@click.option("--max-frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--max-reconnects", type=click.IntRange(min=0), default=0, show_default=True,
              help="Give up on a dropped live source after this many consecutive reconnects (0: never).")
@click.option("--mode", type=click.Choice(["auto", "clip", "online"]), default="auto", show_default=True,
              help="clip: a sliding window of frames per decision; online: the per-frame model with its shift "
                   "buffers (bundles from `edge export --online`); auto: online when the bundle has it.")
@click.option("--smooth", type=click.IntRange(min=1), default=None,
              help="Average the last N decisions' probabilities (default: 1 in clip mode, the clip's "
                   "segment count online).")
@click.option("--ema", type=float, default=None, help="Smooth with an exponential moving average of this weight "
              "(0 < A <= 1) instead of --smooth.")
@click.option("--threshold", type=float, default=None,
              help="Action events: a class starts when its smoothed probability reaches P, ends below P - "
                   "--hysteresis (json output: action_started / action_ended lines).")
@click.option("--hysteresis", type=float, default=0.1, show_default=True)
@click.option("--thresholds", "thresholds_file", type=click.Path(path_type=Path), default=None,
              help="Per-class thresholds, TOML: label = P or label = {on = P, off = Q} (wins over --threshold).")
@click.option("--stats", "stats_s", type=float, default=None, is_flag=False, flag_value=5.0,
              help="Log each stream's frames/s, drops and stage latencies (p50/p95/p99) every S seconds "
                   "(--stats alone: 5).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve the same metrics in Prometheus' text format on this port.")
@click.option("--print-pipeline", is_flag=True,
              help="Print every stream's GStreamer source and output pipelines (the elements picked here) and exit.")
@click.option("--preset", default=None,
              help="TOML file, or a name in jetson/presets/ (csi, usb), giving these options; the command line wins.")
@click.pass_context
def run(ctx: click.Context, bundle_dir: Path | None, sources: tuple[str, ...], sources_file: Path | None,
        outputs: tuple[str, ...], max_batch: int, max_wait_ms: float, backend: str, precision: str, device: str,
        max_frames: int | None, max_reconnects: int, mode: str, smooth: int | None, ema: float | None,
        threshold: float | None, hysteresis: float, thresholds_file: Path | None, stats_s: float | None,
        metrics_port: int | None, print_pipeline: bool, preset: str | None) -> None:
    """Classify a video stream with a bundle and write the annotated video / events."""
    from edge.backends import open_backend
    from edge.bundle import Bundle
    from edge.events import Thresholds
    from edge.pipeline import (
        Batching,
        Decisions,
        Monitoring,
        RunSummary,
        read_sources,
        run_streams,
        stream_outputs,
    )


    opts = {"bundle_dir": bundle_dir, "sources": sources or None, "outputs": outputs, "backend": backend,
            "precision": precision, "device": device, "max_reconnects": max_reconnects, "mode": mode,
            "smooth": smooth}
    if preset is not None:
        from edge.presets import load_preset, merge

        typed = {k for k in opts if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
        opts = merge(load_preset(preset), opts, typed)
    source_list = ([opts["sources"]] if isinstance(opts["sources"], str) else list(opts["sources"] or [])) + (
        read_sources(sources_file) if sources_file is not None else [])
    if opts["bundle_dir"] is None:
        raise EdgeError("edge run: --model is required (on the command line or in --preset)")
    if not source_list:
        raise EdgeError("edge run: --source is required (on the command line, in --sources or in --preset)")
    if opts["mode"] not in ("auto", "clip", "online") or (opts["smooth"] is not None and opts["smooth"] < 1):
        raise EdgeError(f"edge run: mode {opts['mode']!r} / smooth {opts['smooth']!r}: expected auto, clip or "
                        "online, and a smooth of at least 1")
    if print_pipeline:
        from edge.pipeline import describe_pipelines

        click.echo(describe_pipelines(source_list, stream_outputs(list(opts["outputs"]), len(source_list))))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # reconnects, one line each on stderr
    bundle = Bundle.load(Path(opts["bundle_dir"]))
    online = opts["mode"] == "online" or (opts["mode"] == "auto" and "online" in bundle.files)
    if online:
        from edge.online import OnlineModel

        engine = OnlineModel(bundle, opts["precision"], opts["device"], opts["backend"])
    else:
        engine = open_backend(bundle, opts["backend"], opts["precision"], opts["device"])
    if ema is not None and opts["smooth"] is not None:
        raise EdgeError("edge run: --ema and --smooth both smooth the scores; give one")
    decisions = Decisions(opts["smooth"] or (bundle.clip.num_segments if online else 1), ema,
                          Thresholds.build(bundle.labels, threshold, hysteresis, thresholds_file))
    summaries = run_streams(bundle, engine, source_list, stream_outputs(list(opts["outputs"]), len(source_list)),
                            max_frames=max_frames, max_reconnects=opts["max_reconnects"], decisions=decisions,
                            batching=Batching(max_batch, max_wait_ms), monitoring=Monitoring(stats_s, metrics_port))
    for uri, summary in zip(source_list, summaries):
        click.echo(summary.describe() if len(source_list) == 1 else f"{uri}: {summary.describe()}")
        click.echo(f"  {summary.latency}")
    if len(source_list) > 1:
        sizes, wall = summaries[0].batches, max(x.wall_s for x in summaries)
        total = RunSummary(frames=sum(x.frames for x in summaries), decisions=sum(x.decisions for x in summaries),
                           reconnects=sum(x.reconnects for x in summaries), dropped=sum(x.dropped for x in summaries))
        click.echo(f"all {len(summaries)} streams: {total.counts(wall)}; {len(sizes)} inference calls, "
                   f"{sum(sizes) / max(1, len(sizes)):.2f} streams per call on average")


@main.command()
@click.option("--model", "bundles", required=True, multiple=True, type=click.Path(path_type=Path),
              help="Bundle directory (repeatable: several models in one run).")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset root with a test split, for accuracy.")
@click.option("--rows", default="torch:fp32,ort:fp32,ort:int8", show_default=True,
              help="backend:precision pairs to measure.")
@click.option("--iters", default=50, show_default=True, help="Timed batch-1 inferences per row.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write results here.")
def bench(bundles: tuple[Path, ...], data: Path | None, rows: str, iters: int, device: str,
          json_out: Path | None) -> None:
    """Accuracy, clips/s, latency p50/p95 and model size for each backend/precision, in one run."""
    from edge.bench import bench_bundles, print_table, write_json

    pairs = [tuple(r.split(":", 1)) for r in rows.split(",") if r]
    if any(len(p) != 2 for p in pairs):
        raise EdgeError(f"--rows: expected backend:precision pairs, got {rows!r}")
    results = bench_bundles(list(bundles), pairs, data=data, iters=iters, device=device)
    print_table(results)
    if json_out:
        write_json(results, json_out)
        click.echo(f"wrote {json_out}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="The report as JSON, for scripts.")
def doctor(as_json: bool) -> None:
    """What this machine can do: packages, GStreamer elements, ONNX Runtime providers, GPU, CUDA, our kernels,
    cameras; one line each with OK / missing and the fix. Exit code 0 when `edge run` can work here."""
    from edge.doctor import as_json as report_json
    from edge.doctor import diagnose, render, runnable

    checks = diagnose()
    click.echo(json.dumps(report_json(checks), indent=2) if as_json else render(checks))
    sys.exit(0 if runnable(checks) else 1)


@main.command()
@click.argument("bundle_dir", required=False, type=click.Path(path_type=Path))
@click.option("--ckpt", type=click.Path(path_type=Path), default=None,
              help="A checkpoint (.pt or .edgez) instead of a bundle; exported to a temporary ONNX file.")
@click.option("--json/--summary", "as_json", default=None,
              help="The manifest as JSON (the default for a bundle), or the summary: parameters, GMACs per "
                   "clip, input spec and per-layer table (the default for --ckpt).")
def info(bundle_dir: Path | None, ckpt: Path | None, as_json: bool | None) -> None:
    """Describe a bundle or a checkpoint: its manifest, or what the model costs, counted on its ONNX graph."""
    if (bundle_dir is None) == (ckpt is None):
        raise EdgeError("edge info: give either a bundle directory or --ckpt CHECKPOINT (exactly one)")
    if ckpt is not None:
        _info_checkpoint(ckpt, as_json is True)
        return
    from edge.bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    if as_json is False:
        click.echo(_summary(bundle, f"bundle {bundle_dir}", {r: bundle.path(r) for r in bundle.files}))
    else:
        click.echo(json.dumps(bundle.manifest(), indent=2))


def _summary(bundle: Bundle, source: str, files: dict[str, Path]) -> str:
    from edge.inspect import bundle_shapes, inspect_onnx, summary

    manifest = bundle.manifest()
    shapes = bundle_shapes(manifest)
    infos = {p: inspect_onnx(bundle.path(p), shapes) for p in bundle.precisions
             if bundle.path(p).suffix == ".onnx"}
    if not infos:
        raise EdgeError(f"{source}: no ONNX model to count (it has: {', '.join(bundle.files)})")
    return summary(manifest, infos, source, files)


def _info_checkpoint(ckpt: Path, as_json: bool) -> None:
    """The checkpoint is exported by the export package (found by entry point: the runtime may not import
    it) into a temporary directory, then described like a bundle."""
    import tempfile

    if not ckpt.is_file():
        raise EdgeError(f"checkpoint {ckpt}: no such file")
    eps = plugins("edge.checkpoints", "to_onnx")
    if not eps:
        raise EdgeError("--ckpt needs the export package's checkpoint exporter (pip install -e .)")
    try:
        to_onnx = next(iter(eps)).load()
    except ImportError as e:  # torch absent on a runtime-only device image
        raise EdgeError(f"--ckpt needs {e.name or e}, which is not installed here (pip install -e .)") from None
    with tempfile.TemporaryDirectory(prefix="edge-info-") as tmp:
        bundle = to_onnx(ckpt, Path(tmp))
        if as_json:  # the files were temporary: the manifest without them
            click.echo(json.dumps({k: v for k, v in bundle.manifest().items() if k != "files"}, indent=2))
        else:
            click.echo(_summary(bundle, f"checkpoint {ckpt} (exported to ONNX for counting)", {"checkpoint": ckpt}))


_load_plugins()

if __name__ == "__main__":
    main()
