"""What the end-to-end tests share: the real `edge` command in a subprocess, and a bundle's checkpoint run
offline on a video's test clip (what the runtime's decision on that video must equal)."""

import subprocess
import sys


def edge(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "edge.cli", *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"edge {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def synth(out, videos_per_class: int, seed: int, frames: int):
    """A 4-class synthetic set of 48-px videos at ``out``, written by `edge data synth`."""
    edge("data", "synth", "--out", out, "--classes", 4, "--videos-per-class", videos_per_class, "--seed", seed,
         "--frames", frames, "--size", 48)
    return out


def offline_probabilities(bundle, video, rgb: bool = False, **sampling) -> dict[str, float]:
    """The checkpoint in the bundle, in torch, on the video's test clip as `edge eval` samples it (or with the
    ``sampling`` fields of its ClipSpec replaced), of the motion input it takes (RGB frames if ``rgb``)."""
    import dataclasses

    import torch

    from train.data import ClipDataset
    from train.data.datasets import VideoItem
    from train.engine import Checkpoint

    ckpt = Checkpoint.load(bundle / "checkpoint.pt")
    clip, _ = ClipDataset([VideoItem(video, 0)], dataclasses.replace(ckpt.clip, **sampling), ckpt.preprocess,
                          train=False, motion=None if rgb else ckpt.motion, root=video.parent)[0]
    with torch.no_grad():
        probs = torch.softmax(ckpt.build()(clip[None]), dim=1)[0].tolist()
    return dict(zip(ckpt.labels, probs, strict=True))
