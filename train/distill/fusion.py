"""`edge train --fusion --streams RGB.pt FLOW.pt`: the attention fusion of two frozen streams (Sec. 3.4), trained
on paired RGB and flow clips; or their fixed-weight average (``average``), which has nothing to train.

The result is a ``two_stream`` checkpoint (train/models/two_stream.py) holding both streams' weights and the
fusion module. Its ``input`` is the RGB stream's, with the flow stream's under ``input["flow"]`` (preprocessing,
clip, shape and the flow's ``motion``), so the flow input can be computed from the same frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from edge.bundle import FLOW_INPUT, FlowInput
from edge.errors import EdgeError
from train.data import ClipDataset, PairedClips, clip_dataset, dataset_from_dir
from train.engine import Checkpoint, FitConfig, evaluate, fit
from train.models import build_model
from train.models.two_stream import FUSIONS


def load_streams(rgb_path: Path, flow_path: Path) -> tuple[Checkpoint, Checkpoint]:
    """The RGB stream and the flow stream, checked to classify the same labels from clips of the same length."""
    rgb, flow = Checkpoint.load(rgb_path), Checkpoint.load(flow_path)
    if rgb.motion is not None:
        raise EdgeError(f"--streams {rgb_path}: the first stream must take RGB frames; it takes {rgb.motion.kind}")
    if flow.motion is None or flow.motion.kind != "stacked_flow":
        raise EdgeError(f"--streams {flow_path}: the second stream must be a flow stream (edge train --input flow)")
    if rgb.labels != flow.labels:
        raise EdgeError(f"--streams: the two streams classify different labels ({rgb.labels[:3]}... and "
                        f"{flow.labels[:3]}...)")
    if rgb.clip.num_segments != flow.clip.num_segments:
        raise EdgeError(f"--streams: {rgb.clip.num_segments}-frame clips against {flow.clip.num_segments}-frame clips")
    return rgb, flow


def paired(rgb: Checkpoint, flow: Checkpoint, data_root: Path, subset: str,
           progress: bool) -> ClipDataset | PairedClips:
    """``subset``'s clips as each stream takes them, at the same frames (training clips jittered for RGB)."""
    items, labels = dataset_from_dir(data_root, subset)
    if labels != rgb.labels:
        raise EdgeError(f"--data {data_root}: its classes differ from the streams' labels")
    return clip_dataset(items, rgb.clip, rgb.preprocess, train=subset == "train", progress=progress, root=data_root,
                        flow=FlowInput(FLOW_INPUT, flow.preprocess, flow.motion))


def fusion_run(rgb_path: Path, flow_path: Path, data_root: Path, out: Path, *, fusion: str = "attention",
               weights: tuple[float, float] = (1.0, 1.5), hidden: int | None = None, epochs: int = 10,
               batch_size: int = 16, lr: float = 2e-3, seed: int = 0, progress: bool = True) -> Checkpoint:
    """Fuse two trained streams; writes ``best.pt`` (and ``last.pt`` when there is a module to train)."""
    if fusion not in FUSIONS:
        raise EdgeError(f"--fusion-mode {fusion!r}: expected one of {', '.join(FUSIONS)}")
    rgb, flow = load_streams(rgb_path, flow_path)
    config: dict[str, Any] = {"num_classes": len(rgb.labels), "fusion": fusion, "weights": list(weights),
                              "hidden": hidden, "streams": [{"model": rgb.model, "config": rgb.config},
                                                            {"model": flow.model, "config": flow.config}]}
    try:
        model = build_model("two_stream", **config)
    except ValueError as e:
        raise EdgeError(f"--fusion: {e}") from None
    model.streams[0].load_state_dict(rgb.state_dict)
    model.streams[1].load_state_dict(flow.state_dict)
    start = Checkpoint("two_stream", config, model.state_dict(), rgb.labels, {**rgb.input, "flow": flow.input},
                       {"data": str(Path(data_root).resolve()), "streams": [str(rgb_path), str(flow_path)]})
    val = paired(rgb, flow, data_root, "test", progress)
    if fusion == "average":  # fixed weights: nothing to train
        result = evaluate(model, DataLoader(val, batch_size=batch_size), len(rgb.labels), progress)
        out.mkdir(parents=True, exist_ok=True)
        done = Checkpoint(start.model, config, start.state_dict, start.labels, start.input,
                          {**start.train_state, "best": result["accuracy"], "val": result})
        done.save(out / "best.pt")
        return done
    train = paired(rgb, flow, data_root, "train", progress)
    return fit(start, train, val, out, FitConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed),
               progress=progress)
