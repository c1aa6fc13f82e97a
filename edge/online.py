"""The online model (`edge run --mode online`): the per-frame ONNX model `edge export --online`
writes, with each stream's shift buffers carried from frame to frame.

A decision costs one frame's compute instead of a clip's. The model sees frames as far apart as the clip
model was trained to see its segments (the manifest's ``online.frame_step``: 4 for 8 segments over a
32-frame window), so ``wants`` says which camera frames it takes. ``reset`` starts from zero buffers, as a
clip starts with zero padding: a new stream, or a reconnect. Each stream has its own buffers (``stream``
ids), and frames of several streams run as one batch (``step_batch``).

``backend``: ONNX Runtime on the bundle's per-frame ONNX model, or TensorRT on the online engine `edge build`
wrote beside the clip engine (``model.online.<precision>.engine``; its batch is fixed: requests are split and
padded to it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge.backends.ort import OrtBackend
from edge.bundle import Bundle
from edge.errors import EdgeError


class OnlineModel:
    def __init__(self, bundle: Bundle, precision: str = "fp32", device: str = "cpu", backend: str = "ort") -> None:
        entry = bundle.extra.get("online")
        if entry is None or "online" not in bundle.files:
            raise EdgeError(f"--mode online: bundle {bundle.root} has no online model (export a *_online_* model "
                            "with `edge export --online`)")
        self.input, self.buffers = entry["input"], entry["buffers"]
        self.outputs = [entry["output"], *(b["output"] for b in self.buffers)]
        self.frame_step = int(entry.get("frame_step", 1))
        if backend in ("tensorrt", "trt"):
            self._run = self._tensorrt(bundle, precision)
            self.name = "tensorrt online"
        elif backend == "ort":
            role = "online" if precision == "fp32" else f"online-{precision}"
            if role not in bundle.files:
                raise EdgeError(f"--mode online: bundle {bundle.root} has no {precision} online model "
                                "(`edge export --online --int8` writes one)")
            session = OrtBackend(bundle.path(role), precision, device).session
            self._run = lambda feed: dict(zip(self.outputs, session.run(self.outputs, feed)))
            self.name = f"ort-{device} online"
        else:
            raise EdgeError(f"--mode online: runs on the ort or tensorrt backend, not {backend!r}")
        self.state: dict[int, dict[str, np.ndarray]] = {}
        self.seen: dict[int, int] = {}

    @staticmethod
    def _tensorrt(bundle: Bundle, precision: str) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
        meta = bundle.extra.get("engines", {}).get(precision)
        if meta is None or "online" not in meta:
            raise EdgeError(f"--mode online: bundle {bundle.root} has no TensorRT {precision} online engine; "
                            f"build one with `edge build --bundle {bundle.root} --precision {precision}`")
        from edge.backends.tensorrt import TensorRTBackend, in_fixed_batches

        engine = TensorRTBackend(bundle.path(f"engine-online-{precision}"), meta, precision)
        return lambda feed: in_fixed_batches(engine.run, feed, engine.batch)

    def reset(self, stream: int = 0) -> None:
        """Zero buffers for ``stream``: a new stream, or one that reconnected."""
        self.state[stream] = {b["name"]: np.zeros((1, *b["shape"]), np.float32) for b in self.buffers}
        self.seen[stream] = 0

    def wants(self, stream: int = 0) -> bool:
        """Whether ``stream``'s next camera frame is one the model takes (every ``frame_step``-th, from the
        first)."""
        take = self.seen[stream] % self.frame_step == 0
        self.seen[stream] += 1
        return take

    def step(self, frame: np.ndarray, stream: int = 0) -> np.ndarray:
        """Logits (classes,) for one preprocessed (3, S, S) frame; the buffers move on to the next one."""
        return self.step_batch([(stream, frame)])[0]

    def step_batch(self, frames: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
        """One call for a frame of each of several streams (each stream at most once): their frames and
        buffers are stacked on the batch axis, and each stream gets its own logits and buffers back."""
        streams = [s for s, _ in frames]
        feed = {self.input: np.stack([f for _, f in frames]).astype(np.float32, copy=False)}
        for b in self.buffers:
            feed[b["name"]] = np.concatenate([self.state[s][b["name"]] for s in streams])
        out = self._run(feed)
        logits, nxt = out[self.outputs[0]], [out[name] for name in self.outputs[1:]]
        for i, s in enumerate(streams):
            self.state[s] = {b["name"]: v[i : i + 1] for b, v in zip(self.buffers, nxt)}
        return list(logits)
