"""From decisions to actions: EMA score smoothing (the moving average is ``edge.window.ScoreSmoother``),
per-class thresholds with hysteresis, and the
``action_started`` / ``action_ended`` events a user acts on without post-processing the decision stream.

A class turns on when its smoothed probability reaches its ``on`` threshold and off when it falls below its
``off`` threshold (``off <= on``): the gap keeps a score that hovers at the threshold from flickering the
action on and off. Thresholds come from ``--threshold P`` (every class, off = P - ``--hysteresis``) and/or
``--thresholds FILE.toml`` (per class: ``label = 0.7`` or ``label = {on = 0.7, off = 0.5}``; the file wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (JetPack 6's): the same parser, from PyPI
    import tomli as tomllib

from edge.errors import EdgeError


class Ema:
    """Exponential moving average: ``s = alpha * p + (1 - alpha) * s``, starting from the first vector."""

    def __init__(self, alpha: float) -> None:
        if not 0.0 < alpha <= 1.0:
            raise EdgeError(f"--ema {alpha}: expected a weight in (0, 1]")
        self.alpha, self.state = alpha, None

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        self.state = probs if self.state is None else self.alpha * probs + (1 - self.alpha) * self.state
        return self.state


@dataclass(frozen=True)
class Thresholds:
    """(on, off) per class index; classes without an entry never start an action."""

    on: dict[int, float] = field(default_factory=dict)
    off: dict[int, float] = field(default_factory=dict)

    @classmethod
    def build(cls, labels: list[str], threshold: float | None = None, hysteresis: float = 0.1,
              path: Path | None = None) -> Thresholds | None:
        """From ``--threshold`` / ``--hysteresis`` / ``--thresholds FILE`` (None when neither is given)."""
        if threshold is None and path is None:
            return None
        on: dict[int, float] = {}
        off: dict[int, float] = {}
        if threshold is not None:
            _check_pair(f"--threshold {threshold} / --hysteresis {hysteresis}", threshold, threshold - hysteresis)
            on = dict.fromkeys(range(len(labels)), threshold)
            off = dict.fromkeys(range(len(labels)), threshold - hysteresis)
        for label, (hi, lo) in (_read(path, labels, hysteresis) if path is not None else {}).items():
            on[labels.index(label)], off[labels.index(label)] = hi, lo
        return cls(on, off)


def _read(path: Path, labels: list[str], hysteresis: float) -> dict[str, tuple[float, float]]:
    try:
        doc = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EdgeError(f"--thresholds {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise EdgeError(f"--thresholds {path}: not valid TOML ({e})") from None
    out = {}
    for label, value in doc.items():
        if label not in labels:
            raise EdgeError(f"--thresholds {path}: {label!r} is not one of the model's labels")
        if isinstance(value, dict) and set(value) <= {"on", "off"} and "on" in value:
            hi, lo = value["on"], value.get("off", value["on"] - hysteresis)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            hi, lo = value, value - hysteresis
        else:
            raise EdgeError(f"--thresholds {path}: {label} = {value!r}; expected a number or {{on = P, off = Q}}")
        _check_pair(f"--thresholds {path}: {label}", float(hi), float(lo))
        out[label] = (float(hi), float(lo))
    return out


def _check_pair(where: str, on: float, off: float) -> None:
    if not (0.0 < on <= 1.0 and 0.0 <= off <= on):
        raise EdgeError(f"{where}: expected 0 < on <= 1 and 0 <= off <= on (got on {on:g}, off {off:g})")


class ActionTracker:
    """Turns smoothed probabilities into action events; ``active`` maps a class to its start (t, frame)."""

    def __init__(self, labels: list[str], thresholds: Thresholds) -> None:
        self.labels, self.thresholds = labels, thresholds
        self.active: dict[int, tuple[float, int]] = {}

    def update(self, probs: np.ndarray, t: float, frame: int) -> list[dict[str, Any]]:
        events = []
        for c, on in self.thresholds.on.items():
            p = float(probs[c])
            if c not in self.active and p >= on:
                self.active[c] = (t, frame)
                events.append({"event": "action_started", "t": t, "frame": frame, "label": self.labels[c],
                               "score": p})
            elif c in self.active and p < self.thresholds.off[c]:
                events.append(self._ended(c, t, frame, p, "below threshold"))
        return events

    def finish(self, t: float, frame: int) -> list[dict[str, Any]]:
        """Close every action still on when the stream ends (or the run is stopped)."""
        return [self._ended(c, t, frame, None, "end of stream") for c in sorted(self.active)]

    def _ended(self, c: int, t: float, frame: int, p: float | None, reason: str) -> dict[str, Any]:
        t0, f0 = self.active.pop(c)
        return {"event": "action_ended", "t": t, "frame": frame, "label": self.labels[c], "score": p,
                "started_t": t0, "started_frame": f0, "duration_s": t - t0, "reason": reason}
