"""Camera presets for `edge run --preset`: TOML files that give `edge run`'s options (jetson/presets/ ships
csi.toml and usb.toml). An option given on the command line wins over the preset; a preset names the
options a service runs with, so a systemd unit or a container needs one short command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (JetPack 6's): the same parser, from PyPI
    import tomli as tomllib

from edge.errors import EdgeError

PRESET_DIR = Path(__file__).resolve().parents[1] / "jetson" / "presets"
# preset key -> (`edge run` parameter, accepted types)
KEYS: dict[str, tuple[str, tuple[type, ...]]] = {
    "model": ("bundle_dir", (str,)), "source": ("sources", (str,)), "output": ("outputs", (str, list)),
    "backend": ("backend", (str,)), "precision": ("precision", (str,)), "device": ("device", (str,)),
    "max_reconnects": ("max_reconnects", (int,)), "mode": ("mode", (str,)), "smooth": ("smooth", (int,)),
}


def find_preset(name: str) -> Path:
    """A path to a TOML file, or the name of one shipped in jetson/presets/."""
    path = Path(name)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise EdgeError(f"--preset {name}: no such file")
        return path
    shipped = PRESET_DIR / f"{name}.toml"
    if not shipped.is_file():
        have = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.toml"))) or "none"
        raise EdgeError(f"--preset {name}: not a file and not a shipped preset (shipped: {have})")
    return shipped


def load_preset(name: str) -> dict[str, Any]:
    """The preset's values keyed by `edge run`'s parameter names, checked: unknown keys and wrong types are
    one-line errors naming the file."""
    path = find_preset(name)
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise EdgeError(f"preset {path}: not valid TOML ({e})") from None
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key not in KEYS:
            raise EdgeError(f"preset {path}: unknown key {key!r} (known: {', '.join(KEYS)})")
        param, types = KEYS[key]
        if not isinstance(value, types) or isinstance(value, bool) or (
                isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            raise EdgeError(f"preset {path}: {key} = {value!r} has the wrong type")
        out[param] = tuple([value] if isinstance(value, str) else value) if key == "output" else value
    return out


def merge(preset: dict[str, Any], given: dict[str, Any], from_command_line: set[str]) -> dict[str, Any]:
    """`edge run`'s options: the command line's where given there, else the preset's, else the defaults."""
    return {k: given[k] if k in from_command_line or k not in preset else preset[k] for k in given}
