"""``edge export``: checkpoint -> bundle. Registered into the ``edge`` command by entry point."""

from __future__ import annotations

from pathlib import Path

import click

from edge.plugins import add_commands


@click.command("export")
@click.option("--ckpt", required=True, type=click.Path(path_type=Path), help="Checkpoint (RUN/best.pt).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Bundle directory to write.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset for the parity clip and test accuracy (default: the one trained on).")
@click.option("--int8", is_flag=True, help="Also write a calibrated INT8 Q/DQ model.")
@click.option("--calib", type=click.Path(path_type=Path), default=None,
              help="Calibration dataset root (its train split; default: --data).")
@click.option("--calib-clips", default=64, show_default=True)
@click.option("--name", default=None, help="Bundle name shown by run/bench (default: the model's registry name).")
@click.option("--online", is_flag=True,
              help="Also the per-frame model (*_online_* models): one frame + shift buffers per call.")
def export_cmd(ckpt: Path, out: Path, data: Path | None, int8: bool, calib: Path | None, calib_clips: int,
               name: str | None, online: bool) -> None:
    """Write a deployable bundle: ONNX (+INT8), manifest with labels, preprocessing, hashes, accuracy.

    CKPT may be a .pt checkpoint or an .edgez from `edge compress`; a checkpoint trained for INT8 there
    exports its own Q/DQ model with --int8 instead of calibrating one."""
    from export.bundle import export_bundle

    report = export_bundle(ckpt, out, data=data, int8=int8, calib=calib, calib_clips=calib_clips, name=name,
                           online=online)
    click.echo(f"wrote bundle {report.bundle} (parity {report.parity_max_abs_diff:.2e}, accuracy "
               + ", ".join(f"{k} {v:.3f}" for k, v in report.accuracy.items()) + ")")


@click.command("compress")
@click.option("--ckpt", required=True, type=click.Path(path_type=Path), help="Trained checkpoint (RUN/best.pt).")
@click.option("--recipe", required=True, type=click.Path(path_type=Path), help="TOML recipe (docs/compression.md).")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Dataset to fine-tune and evaluate on.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Directory for stages and report.")
@click.option("--resume", is_flag=True, help="Continue OUT from its last finished stage.")
def compress_cmd(ckpt: Path, recipe: Path, data: Path, out: Path, resume: bool) -> None:
    """Prune, sparsify, weight-share, store: a recipe's stages, each fine-tuned and measured."""
    from export.compress import compress, markdown

    rows = compress(ckpt, recipe, data, out, resume=resume)
    click.echo(markdown(rows), nl=False)
    click.echo(f"final checkpoint {out / 'checkpoint.pt'}; report {out / 'report.md'}")


@click.command("build")
@click.option("--bundle", "bundle_dir", required=True, type=click.Path(path_type=Path),
              help="Bundle written by `edge export` (with --int8 for int8/best).")
@click.option("--precision", type=click.Choice(["int8", "fp16", "fp32", "best"]), default="int8", show_default=True,
              help="best: INT8 with FP16 for the layers INT8 cannot serve.")
@click.option("--sparse", is_flag=True, help="Let TensorRT use 2:4 sparse kernels; prints which layers meet 2:4.")
@click.option("--workspace", "workspace_mb", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Builder workspace (MB).")
@click.option("--max-batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Largest batch the engine accepts (multi-stream).")
@click.option("--timing-cache", type=click.Path(path_type=Path), default=None,
              help="Read and update this timing cache (later builds reuse the measured tactics).")
@click.option("--dla", type=int, default=None, help="DLA core (Jetson AGX/Orin), with GPU fallback.")
@click.option("--calib", type=click.Path(path_type=Path), default=None,
              help="int8/best on a bundle without a Q/DQ model: calibrate one first on this dataset's train split.")
@click.option("--calib-clips", type=click.IntRange(min=1), default=64, show_default=True)
def build_cmd(bundle_dir: Path, precision: str, sparse: bool, workspace_mb: int, max_batch: int,
              timing_cache: Path | None, dla: int | None, calib: Path | None, calib_clips: int) -> None:
    """Build a TensorRT engine into the bundle (model.<precision>.engine) and record it in the manifest."""
    from export.tensorrt import BuildOptions, build_engine

    path = build_engine(bundle_dir, BuildOptions(precision, sparse, workspace_mb, max_batch, timing_cache, dla,
                                                 calib, calib_clips))
    click.echo(f"wrote {path}")


def register(group: click.Group) -> None:
    add_commands(group, [export_cmd, compress_cmd], needs="torch")
    group.add_command(build_cmd)  # torch-free: it runs on the device (JetPack 5's Python 3.8 included)
