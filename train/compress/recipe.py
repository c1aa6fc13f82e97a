"""Compression recipes: TOML with one ``[[stage]]`` table per stage, checked whole before any work starts.

Every problem is one ``EdgeError`` line naming the file, the stage (1-based number and kind) and the key,
so ``edge compress`` can print it and exit 2 before creating its output directory. Parsing fills every
default (issue 6's table), so the stages' runners never look a key up twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, ClassVar

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (JetPack 6's): the same parser, from PyPI
    import tomli as tomllib

from edge.errors import EdgeError
from train.compress.criteria import CRITERIA


@dataclass(frozen=True, kw_only=True)
class Stage:
    """Keys every stage takes. ``lr=None`` leaves the fine-tuning rate to the stage runner."""

    kind: ClassVar[str]
    finetune_epochs: int = 0
    lr: float | None = None


@dataclass(frozen=True, kw_only=True)
class FilterPrune(Stage):
    """Structured pruning. ``ratio`` sets both ratios; given only one of conv_ratio/fc_ratio, the other is
    0 (those layers are left whole). ``layers=None``: every prunable layer."""

    kind: ClassVar[str] = "filter_prune"
    criterion: str
    conv_ratio: float
    fc_ratio: float | tuple[float, ...]  # a tuple: one per hidden FC layer, in order
    layers: tuple[str, ...] | None = None
    average_inputs: bool = False
    stream_ratio: float = 0.0  # of each residual stream's channels (tied by the additions); 0: streams kept


@dataclass(frozen=True, kw_only=True)
class MagnitudePrune(Stage):
    """Progressive unstructured pruning; ``sparsity`` sets both targets (T-C3D Sec. III-F: 0.9 / 0.95)."""

    kind: ClassVar[str] = "magnitude_prune"
    conv_sparsity: float = 0.9
    fc_sparsity: float = 0.95
    step: float = 0.1


@dataclass(frozen=True, kw_only=True)
class Dsd(Stage):
    kind: ClassVar[str] = "dsd"
    epochs: int


@dataclass(frozen=True, kw_only=True)
class SemiStructured(Stage):
    kind: ClassVar[str] = "semi_structured"
    layers: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class KMeans(Stage):
    kind: ClassVar[str] = "kmeans"
    conv_bits: int = 8
    fc_bits: int = 5


@dataclass(frozen=True, kw_only=True)
class Store(Stage):
    kind: ClassVar[str] = "store"
    conv_index_bits: int = 8
    fc_index_bits: int = 5


@dataclass(frozen=True, kw_only=True)
class Int8(Stage):
    kind: ClassVar[str] = "int8"


@dataclass(frozen=True)
class Recipe:
    source: str
    stages: tuple[Stage, ...]


KINDS: dict[str, type[Stage]] = {c.kind: c for c in (FilterPrune, MagnitudePrune, Dsd, SemiStructured, KMeans,
                                                     Store, Int8)}
# what `store` can encode: a model some earlier stage made sparse or quantized
_SHRINKING = {"filter_prune", "magnitude_prune", "dsd", "semi_structured", "kmeans", "int8"}


class _Bad(Exception):
    """A value's problem, before the stage context is added."""


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Bad(f"{v!r} is not a number")
    return float(v)


def _fraction(v: Any) -> float:
    x = _number(v)
    if not 0.0 <= x < 1.0:
        raise _Bad(f"{v!r} is outside [0, 1)")
    return x


def _fractions(v: Any) -> float | tuple[float, ...]:
    """One fraction, or a non-empty list of them (one per hidden FC layer, MOMP Table II's FC1 / FC2)."""
    if isinstance(v, list):
        if not v:
            raise _Bad("[] is empty (give one ratio, or one per hidden FC layer)")
        return tuple(_fraction(x) for x in v)
    return _fraction(v)


def _step(v: Any) -> float:
    x = _number(v)
    if not 0.0 < x <= 1.0:
        raise _Bad(f"{v!r} is outside (0, 1]")
    return x


def _positive(v: Any) -> float:
    x = _number(v)
    if not (x > 0 and math.isfinite(x)):
        raise _Bad(f"{v!r} is not a positive finite number")
    return x


def _integer(lo: int, hi: int | None = None) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(f"{v!r} is not an integer")
        if v < lo or (hi is not None and v > hi):
            raise _Bad(f"{v} is outside {lo}..{hi}" if hi is not None else f"{v} is below {lo}")
        return v
    return check


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"{v!r} is not true or false")
    return v


def _criterion(v: Any) -> str:
    if not isinstance(v, str) or v not in CRITERIA:
        raise _Bad(f"{v!r} is not one of {', '.join(CRITERIA)}")
    return v


def _globs(v: Any) -> tuple[str, ...]:
    """One glob over module names, or a list of them (each must match something: ``check_layers``)."""
    globs = [v] if isinstance(v, str) else v
    if not isinstance(globs, list) or not globs or not all(isinstance(g, str) and g for g in globs):
        raise _Bad(f"{v!r} is not a glob or a non-empty list of globs")
    return tuple(globs)


_BITS = _integer(1, 16)
_COMMON: dict[str, Callable[[Any], Any]] = {"finetune_epochs": _integer(0), "lr": _positive}
_KEYS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "filter_prune": {"criterion": _criterion, "ratio": _fraction, "conv_ratio": _fraction,
                     "fc_ratio": _fractions, "layers": _globs, "average_inputs": _boolean,
                     "stream_ratio": _fraction},
    "magnitude_prune": {"sparsity": _fraction, "conv_sparsity": _fraction, "fc_sparsity": _fraction,
                        "step": _step},
    "dsd": {"epochs": _integer(1)},
    "semi_structured": {"layers": _globs},
    "kmeans": {"conv_bits": _BITS, "fc_bits": _BITS},
    "store": {"conv_index_bits": _BITS, "fc_index_bits": _BITS},
    "int8": {},
}


def _split(values: dict[str, Any], both: str, conv: str, fc: str) -> dict[str, Any]:
    """``both`` stands for ``conv`` and ``fc`` together; it may not be mixed with them."""
    if both not in values:
        return values
    if conv in values or fc in values:
        raise _Bad(f"{both}: cannot be combined with {conv}/{fc}")
    rest = {k: v for k, v in values.items() if k != both}
    return {**rest, conv: values[both], fc: values[both]}


def _stage(table: dict[str, Any], where: str) -> Stage:
    kind = table.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        problem = "missing" if kind is None else f"unknown {kind!r}"
        raise EdgeError(f"{where}: kind: {problem} (one of {', '.join(KINDS)})")
    where = f"{where} ({kind})"
    checks = {**_COMMON, **_KEYS[kind]}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key == "kind":
            continue
        if key not in checks:
            raise EdgeError(f"{where}: {key!r}: unknown key (allowed: {', '.join(sorted(checks))})")
        try:
            values[key] = checks[key](raw)
        except _Bad as e:
            raise EdgeError(f"{where}: {key}: {e}") from None
    try:
        if kind == "filter_prune":
            values = _split(values, "ratio", "conv_ratio", "fc_ratio")
            if not {"conv_ratio", "fc_ratio", "stream_ratio"} & set(values):
                raise _Bad("ratio: missing (give ratio, or conv_ratio and/or fc_ratio, and/or stream_ratio)")
            values = {"conv_ratio": 0.0, "fc_ratio": 0.0, **values}
            if "criterion" not in values:
                raise _Bad(f"criterion: missing (one of {', '.join(CRITERIA)})")
        if kind == "magnitude_prune":
            values = _split(values, "sparsity", "conv_sparsity", "fc_sparsity")
        if kind == "dsd" and "epochs" not in values:
            raise _Bad("epochs: missing (dense retraining epochs, >= 1)")
    except _Bad as e:
        raise EdgeError(f"{where}: {e}") from None
    return KINDS[kind](**values)


def parse_recipe(text: str, source: str = "<recipe>") -> Recipe:
    """Parse and validate a recipe's TOML text; ``source`` names it in every error."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EdgeError(f"{source}: not valid TOML: {str(e).splitlines()[0]}") from None
    extra = sorted(set(doc) - {"stage"})
    if extra:
        raise EdgeError(f"{source}: unknown top-level key {extra[0]!r} (a recipe is [[stage]] tables only)")
    tables = doc.get("stage", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise EdgeError(f"{source}: 'stage' must be [[stage]] tables")
    if not tables:
        raise EdgeError(f"{source}: empty recipe (no [[stage]] tables)")
    stages = tuple(_stage(t, f"{source}: stage {i}") for i, t in enumerate(tables, 1))
    for i, stage in enumerate(stages, 1):
        earlier = {s.kind for s in stages[: i - 1]}
        if stage.kind == "store" and not earlier & _SHRINKING:
            raise EdgeError(f"{source}: stage {i} (store): kind: 'store' comes before any pruning or "
                            "quantization stage (nothing to store sparsely)")
        if stage.kind == "dsd" and "magnitude_prune" not in earlier:
            raise EdgeError(f"{source}: stage {i} (dsd): kind: 'dsd' needs an earlier magnitude_prune "
                            "(it prunes back to that sparsity)")
    return Recipe(source, stages)


def load_recipe(path: str | Path) -> Recipe:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise EdgeError(f"{path}: cannot read the recipe ({reason})") from None
    return parse_recipe(text, str(path))


def check_layers(recipe: Recipe, module_names: Iterable[str]) -> None:
    """Reject a ``layers`` glob that matches none of ``module_names`` (case-sensitive fnmatch), a typo that
    would otherwise silently prune nothing."""
    names = list(module_names)
    for i, stage in enumerate(recipe.stages, 1):
        for glob in getattr(stage, "layers", None) or ():
            if not any(fnmatchcase(n, glob) for n in names):
                raise EdgeError(f"{recipe.source}: stage {i} ({stage.kind}): layers: {glob!r} matches no module")


def check_fc_ratios(recipe: Recipe, hidden_fcs: int) -> None:
    """A list ``fc_ratio`` needs one value per hidden FC layer of the model (the classifier is never pruned)."""
    for i, stage in enumerate(recipe.stages, 1):
        ratios = getattr(stage, "fc_ratio", None)
        if isinstance(ratios, tuple) and len(ratios) != hidden_fcs:
            raise EdgeError(f"{recipe.source}: stage {i} ({stage.kind}): fc_ratio: {len(ratios)} values, the model "
                            f"has {hidden_fcs} hidden FC layers")
