"""``edge data``, ``edge train``, ``edge eval``: registered into the ``edge`` command by entry point."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge.atomic import write_text
from edge.errors import EdgeError


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
@click.option("--model", "model_name", required=True, help="Registry name, e.g. tsm_resnet18.")
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
@click.option("--model-opt", "model_opts", multiple=True, metavar="KEY=VALUE",
              help="A model's own option, saved in its checkpoint config (repeatable), e.g. aggregation=attention "
                   "num_clips=3 for tc3d_res3d18. VALUE is read as JSON when it parses (3, 0.5, true), else as text.")
@click.option("--clip-step", type=click.IntRange(min=1), default=None,
              help="Frames between a clip's frames, for models fed clips (3D CNNs): default the paper's (C3D 1, "
                   "T-C3D 2); shrinks to fit parts of a video too short for it.")
@click.option("--motion", type=click.Choice(["auto", "none", "rgbf", "momp"]), default="auto", show_default=True,
              help="Input images: RGB (none) or a motion input computed from the frames (RGBF, MOMP images), "
                   "cached next to the data; the runtime computes the same. auto: the model's paper's (momp for "
                   "momp_caffenet, RGB otherwise).")
def train_cmd(model_name: str, data_root: Path, out: Path, epochs: int, batch_size: int, lr: float,
              segments: int, width: float, size: int, seed: int, resume: bool, model_opts: tuple[str, ...],
              clip_step: int | None, motion: str) -> None:
    """Train a recognizer; validates every epoch and keeps best.pt / last.pt."""
    from train.run import train_run

    best = train_run(model_name, data_root, out, epochs=epochs, batch_size=batch_size, lr=lr,
                     segments=segments, width=width, size=size, seed=seed, resume=resume,
                     options=parse_model_opts(model_opts), clip_step=clip_step, motion=motion)
    click.echo(f"best val clip accuracy {best.train_state['best']:.3f} -> {out / 'best.pt'}")


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
    group.add_command(data)
    group.add_command(train_cmd)
    group.add_command(eval_cmd)
