"""`edge run --preset`: the shipped camera presets load, a preset's keys are checked, and a real run takes
its source and outputs from the preset while the command line wins where it gives an option."""

import json
import subprocess
import sys

import pytest

from edge.errors import EdgeError
from edge.presets import PRESET_DIR, load_preset, merge


@pytest.mark.parametrize("name, source", [("csi", "csi://0"), ("usb", "v4l2:///dev/video0")])
def test_the_shipped_presets_load(name, source):
    p = load_preset(name)
    assert p["sources"] == source and p["backend"] == "tensorrt" and p["precision"] == "int8"
    assert isinstance(p["outputs"], tuple) and any(o.startswith("json://") for o in p["outputs"])
    assert (PRESET_DIR / f"{name}.toml").is_file()


def test_the_command_line_wins_over_the_preset():
    given = {"source": "file://a.mp4", "backend": "ort", "precision": "fp32", "outputs": ()}
    preset = {"source": "csi://0", "backend": "tensorrt", "outputs": ("display://",)}
    assert merge(preset, given, {"source"}) == {"source": "file://a.mp4", "backend": "tensorrt", "precision": "fp32",
                                                "outputs": ("display://",)}


@pytest.mark.parametrize("text, message", [
    ('source = "csi://0"\ncamera = 1\n', "unknown key 'camera'"),
    ("max_reconnects = \"3\"\n", "max_reconnects = '3' has the wrong type"),
    ("output = [1]\n", "output = \\[1\\] has the wrong type"),
    ("source = \n", "not valid TOML"),
])
def test_a_bad_preset_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(EdgeError, match=message) as e:
        load_preset(str(path))
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_an_unknown_preset_name_lists_the_shipped_ones():
    with pytest.raises(EdgeError, match="not a shipped preset .shipped: csi, usb."):
        load_preset("thermal")


def test_a_run_takes_source_and_outputs_from_the_preset(color_bundle, tmp_path):
    events = tmp_path / "events.jsonl"
    preset = tmp_path / "bench.toml"
    preset.write_text(f'source = "test://?num-buffers=200"\noutput = ["json://{events}"]\nbackend = "torch"\n')
    r = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--preset", str(preset), "--model",
                        str(color_bundle.root), "--backend", "ort", "--max-frames", "12"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr  # backend torch from the preset would fail: this bundle has no checkpoint
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    assert lines and lines[-1]["frame"] < 12
    missing = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--preset", str(preset)],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "--model is required (on the command line or in --preset)" in missing.stderr
    preset.write_text('source = "test://?num-buffers=20"\nmode = "sometimes"\n')
    bad = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--preset", str(preset), "--model",
                          str(color_bundle.root)], capture_output=True, text=True)
    assert bad.returncode == 2 and "mode 'sometimes'" in bad.stderr and len(bad.stderr.splitlines()) == 1
