"""``edge data``, ``edge train``, ``edge eval``: registered into the ``edge`` command by entry point."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge.atomic import write_text
from edge.errors import EdgeError
from edge.plugins import add_commands


@click.group("data")
def data() -> None:
    """Datasets: generate the synthetic action set."""


@data.command("synth")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--classes", default=12, show_default=True)
@click.option("--videos-per-class", default=20, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--frames", default=32, show_default=True)
@click.option("--size", default=96, show_default=True, help="Frame side in pixels.")
def synth(out: Path, classes: int, videos_per_class: int, seed: int, frames: int, size: int) -> None:
    """Write mp4 videos whose labels depend on temporal order, with UCF101-style split files."""
    from train.data.synth import generate

    summary = generate(out, classes=classes, videos_per_class=videos_per_class, seed=seed, frames=frames,
                       size=size)
    click.echo(f"wrote {summary.n_train} train + {summary.n_test} test videos of {len(summary.classes)} "
               f"classes to {out}")


@click.command("train")
@click.option("--model", "model_name", default=None, help="Registry name, e.g. tsm_resnet18 (not with --fusion).")
@click.option("--data", "data_root", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory (best.pt, last.pt).")
@click.option("--epochs", default=15, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--segments", default=8, show_default=True, help="Frames sampled per clip (TSN segments).")
@click.option("--width", default=16.0, show_default=True,
              help="Backbone width: base channels (ResNet; 3D CNNs: conv1, 64 = paper) or width multiplier "
                   "(MobileNetV2).")
@click.option("--size", default=64, show_default=True, help="Input crop side.")
@click.option("--seed", default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
@click.option("--init", type=click.Path(path_type=Path), default=None,
              help="Start from this checkpoint's weights (same model, width, size; e.g. a distillation student "
                   "from the RGB stream).")
@click.option("--model-opt", "model_opts", multiple=True, metavar="KEY=VALUE",
              help="A model's own option, saved in its checkpoint config (repeatable), e.g. aggregation=attention "
                   "num_clips=3 for tc3d_res3d18. VALUE is read as JSON when it parses (3, 0.5, true), else as text.")
@click.option("--clip-step", type=click.IntRange(min=1), default=None,
              help="Frames between a clip's frames, for models fed clips (3D CNNs): default the paper's (C3D 1, "
                   "T-C3D 2); shrinks to fit parts of a video too short for it.")
@click.option("--input", "--motion", "motion", type=click.Choice(["auto", "none", "flow", "rgbf", "momp"]),
              default="auto", show_default=True,
              help="Input images: RGB (none), optical flow (a flow stream: TSN-scaled x/y fields, 2 channels) or a "
                   "motion image computed from the frames (RGBF, MOMP), cached next to the data; the runtime "
                   "computes the same. auto: the model's paper's (momp for momp_caffenet, RGB otherwise).")
@click.option("--flow-method", type=click.Choice(["tvl1", "farneback"]), default=None,
              help="Optical flow of --input flow [default: tvl1 where OpenCV has cv2.optflow, else farneback].")
@click.option("--distill", is_flag=True,
              help="Train an RGB Dual-action Stream student against --teacher (a flow stream), Eq. 4: "
                   "cross-entropy + alpha * distillation loss.")
@click.option("--teacher", type=click.Path(path_type=Path), default=None, help="The frozen flow stream (.pt).")
@click.option("--distill-loss", type=click.Choice(["mae+gram", "mae", "gram", "mars"]), default="mae+gram",
              show_default=True, help="mae+gram: the paper's; mae / gram: its ablation; mars: MSE of the penultimate "
                                      "features only (the MARS baseline).")
@click.option("--alpha", type=float, default=5.0, show_default=True,
              help="Eq. 4's weight of the distillation loss (the paper's 50 did worse here: docs/distillation.md).")
@click.option("--distill-levels", default=None, metavar="NAME,NAME,...",
              help="Modules whose outputs are matched [default: each residual stage, the pooled features].")
@click.option("--fusion", is_flag=True, help="Fuse two trained streams (--streams RGB.pt FLOW.pt), frozen: Sec. 3.4's "
                                             "attention module is trained, or their scores averaged.")
@click.option("--streams", nargs=2, type=click.Path(path_type=Path), default=None, metavar="RGB.pt FLOW.pt")
@click.option("--fusion-mode", type=click.Choice(["attention", "average"]), default="attention", show_default=True)
@click.option("--fusion-weights", default="1,1.5", show_default=True, metavar="RGB,FLOW",
              help="--fusion-mode average: the streams' weights (normalised to sum to one).")
def train_cmd(model_name: str | None, data_root: Path, out: Path, epochs: int, batch_size: int, lr: float,
              segments: int, width: float, size: int, seed: int, resume: bool, init: Path | None,
              model_opts: tuple[str, ...],
              clip_step: int | None, motion: str, flow_method: str | None, distill: bool, teacher: Path | None,
              distill_loss: str, alpha: float, distill_levels: str | None, fusion: bool,
              streams: tuple[Path, Path] | None, fusion_mode: str, fusion_weights: str) -> None:
    """Train a recognizer; validates every epoch and keeps best.pt / last.pt."""
    from train.distill.student import DistillConfig
    from train.run import train_run

    if fusion != (streams is not None):
        raise EdgeError("--fusion and --streams go together: --fusion --streams RGB.pt FLOW.pt")
    if fusion:
        if model_name is not None:
            raise EdgeError("--model: a fusion's model is its two --streams")
        from train.distill.fusion import fusion_run

        best = fusion_run(streams[0], streams[1], data_root, out, fusion=fusion_mode, epochs=epochs,
                          weights=parse_weights(fusion_weights), batch_size=batch_size, lr=lr, seed=seed)
        click.echo(f"fused val clip accuracy {best.train_state['best']:.3f} -> {out / 'best.pt'}")
        return
    if model_name is None:
        raise EdgeError("--model: required (a registry name, e.g. tsm_resnet18)")
    if distill != (teacher is not None):
        raise EdgeError("--distill and --teacher go together: --distill --teacher FLOW_STREAM.pt")
    levels = tuple(n.strip() for n in distill_levels.split(",") if n.strip()) if distill_levels else None
    best = train_run(model_name, data_root, out, epochs=epochs, batch_size=batch_size, lr=lr,
                     segments=segments, width=width, size=size, seed=seed, resume=resume,
                     options=parse_model_opts(model_opts), clip_step=clip_step, motion=motion,
                     flow_method=flow_method, teacher=teacher, init=init,
                     distill=DistillConfig(distill_loss, alpha, levels) if distill else None)
    click.echo(f"best val clip accuracy {best.train_state['best']:.3f} -> {out / 'best.pt'}")


def parse_weights(text: str) -> tuple[float, float]:
    """``--fusion-weights 1,1.5`` -> (1.0, 1.5)."""
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise EdgeError(f"--fusion-weights {text!r}: expected two numbers RGB,FLOW such as 1,1.5") from None
    return a, b


def parse_model_opts(items: tuple[str, ...]) -> dict[str, object]:
    """``KEY=VALUE`` pairs -> a dict; a VALUE that parses as JSON is that value, anything else is text."""
    options: dict[str, object] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise EdgeError(f"--model-opt {item!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options


@click.command("eval")
@click.option("--ckpt", required=True, type=click.Path(path_type=Path))
@click.option("--data", "data_root", required=True, type=click.Path(path_type=Path))
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None)
def eval_cmd(ckpt: Path, data_root: Path, json_out: Path | None) -> None:
    """Clip accuracy of a checkpoint on the test split, overall and per time-reversal pair."""
    from train.run import evaluate_checkpoint

    result = evaluate_checkpoint(ckpt, data_root)
    click.echo(f"test clip accuracy {result['accuracy']:.3f} on {result['clips']} clips")
    if "all_clips_accuracy" in result:
        click.echo(f"all clips per video {result['all_clips_accuracy']:.3f}")
    if json_out:
        write_text(json_out, json.dumps(result, indent=2) + "\n")


def register(group: click.Group) -> None:
    add_commands(group, [data, train_cmd, eval_cmd], needs="torch")
