"""The online model (`edge run --mode online`): the per-frame ONNX model `edge export --online`
writes, with each stream's shift buffers carried from frame to frame.

A decision costs one frame's compute instead of a clip's. The model sees frames as far apart as the clip
model was trained to see its segments (the manifest's ``online.frame_step``: 4 for 8 segments over a
32-frame window), so ``wants`` says which camera frames it takes. ``reset`` starts from zero buffers, as a
clip starts with zero padding: a new stream, or a reconnect. Each stream has its own buffers (``stream``
ids), and frames of several streams run as one batch (``step_batch``). A lone stream's frames go through
ONNX Runtime's IOBinding (``BoundStep``), where each call converts and allocates nothing.

``backend``: ONNX Runtime on the bundle's per-frame ONNX model, or TensorRT on the online engine `edge build`
wrote beside the clip engine (``model.online.<precision>.engine``; its batch is fixed: requests are split and
padded to it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
        self._bound = False
        if backend in ("tensorrt", "trt"):
            self._run = self._tensorrt(bundle, precision)
            self.name = "tensorrt online"
        elif backend == "ort":
            role = "online" if precision == "fp32" else f"online-{precision}"
            if role not in bundle.files:
                raise EdgeError(f"--mode online: bundle {bundle.root} has no {precision} online model "
                                "(`edge export --online --int8` writes one)")
            self.session = OrtBackend(bundle.path(role), precision, device).session
            self._run = lambda feed: dict(zip(self.outputs, self.session.run(self.outputs, feed)))
            self.name = f"ort-{device} online"
            self._bound = device == "cpu"  # IOBinding on CPU buffers; other devices keep the plain run
        else:
            raise EdgeError(f"--mode online: runs on the ort or tensorrt backend, not {backend!r}")
        self.state: dict[int, dict[str, np.ndarray]] = {}
        self.seen: dict[int, int] = {}
        self._bindings: dict[int, BoundStep] = {}

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
        if len(frames) == 1 and self._bound:  # one stream (a single camera): no stacking, no new arrays
            stream, frame = frames[0]
            if stream not in self._bindings:
                self._bindings[stream] = BoundStep(self.session, self.input, self.outputs[0], self.buffers)
            logits, self.state[stream] = self._bindings[stream].step(frame, self.state[stream])
            return [logits]
        streams = [s for s, _ in frames]
        feed = {self.input: np.stack([f for _, f in frames]).astype(np.float32, copy=False)}
        for b in self.buffers:
            feed[b["name"]] = np.concatenate([self.state[s][b["name"]] for s in streams])
        out = self._run(feed)
        logits, nxt = out[self.outputs[0]], [out[name] for name in self.outputs[1:]]
        for i, s in enumerate(streams):
            self.state[s] = {b["name"]: v[i : i + 1] for b, v in zip(self.buffers, nxt)}
        return list(logits)


class BoundStep:
    """One stream's per-frame calls through ONNX Runtime's IOBinding: two sets of buffer arrays bound once,
    read from one set while the next buffers are written into the other, then swapped. The frame is copied
    into a bound input and the logits land in a bound output, so a call converts and allocates nothing:
    about 10% of a frame at the demo's size, where the per-call cost is much of it (docs/runtime.md)."""

    def __init__(self, session: Any, frame: str, logits: str, buffers: list[dict[str, Any]]) -> None:
        shapes = {v.name: v.shape[1:] for v in (*session.get_inputs(), *session.get_outputs())}  # batch axis off
        self.session, self.names = session, [b["name"] for b in buffers]
        self.frame = np.zeros((1, *shapes[frame]), np.float32)
        self.logits = np.zeros((1, *shapes[logits]), np.float32)
        self.sets = [[np.zeros((1, *b["shape"]), np.float32) for b in buffers] for _ in range(2)]
        self.bindings = []
        for src, dst in ((self.sets[0], self.sets[1]), (self.sets[1], self.sets[0])):
            io = session.io_binding()
            io.bind_cpu_input(frame, self.frame)
            _output(io, logits, self.logits)
            for b, a_in, a_out in zip(buffers, src, dst):
                io.bind_cpu_input(b["name"], a_in)
                _output(io, b["output"], a_out)
            self.bindings.append(io)
        self.k = 0

    def step(self, frame: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Logits (classes,) and the next state of one (C, S, S) frame from ``state``: copied in first
        unless it already is this stream's bound set (a reset, or a batch of several streams, made new ones)."""
        for name, a in zip(self.names, self.sets[self.k]):
            if state[name] is not a:
                np.copyto(a, state[name])
        np.copyto(self.frame[0], frame)
        self.session.run_with_iobinding(self.bindings[self.k])
        self.k ^= 1
        return self.logits[0].copy(), dict(zip(self.names, self.sets[self.k]))


def _output(io: Any, name: str, array: np.ndarray) -> None:
    io.bind_output(name, "cpu", 0, np.float32, list(array.shape), array.ctypes.data)
