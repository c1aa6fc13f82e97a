"""jetson/setup.sh refuses, in one line and before touching anything, a machine it cannot set up: not a
Jetson, an L4T release that is neither JetPack 5 nor 6, an unknown option. (The install steps need a Jetson;
`make lint` runs shellcheck on the script.)"""

import os
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).parents[1] / "jetson" / "setup.sh"


def setup(*args, release=None):
    env = {**os.environ, "EDGE_TEGRA_RELEASE": str(release) if release else "/nonexistent/nv_tegra_release"}
    return subprocess.run(["bash", str(SETUP), *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("content, message", [
    (None, "not found: this is not a Jetson"),
    ("# R32 (release), REVISION: 7.4, GCID: 1, BOARD: t210ref, EABI: aarch64\n", "L4T R32 is neither JetPack 5"),
])
def test_a_machine_it_cannot_set_up_is_one_line_and_exit_2(tmp_path, content, message):
    release = None
    if content is not None:
        release = tmp_path / "nv_tegra_release"
        release.write_text(content)
    r = setup(release=release)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""  # nothing was installed or created


def test_an_unknown_option_is_refused_and_help_lists_the_options():
    r = setup("--bogus")
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr
    usage = setup("--help").stdout
    assert all(opt in usage for opt in ("--performance", "--venv", "--cpu-onnxruntime"))
