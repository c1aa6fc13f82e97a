"""jetson/setup.sh refuses, in one line and before touching anything, a machine it cannot set up: not a
Jetson, an L4T release that is neither JetPack 5 nor 6, a Python older than 3.8, an unknown option. Its
--dry-run plan on JetPack 5 (Python 3.8, CUDA 11.4) and 6 (Python 3.10+, CUDA 12.6), with the system's
Python and nvcc stood in for on PATH. (The install steps need a Jetson; `make lint` runs shellcheck.)"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SETUP = ROOT / "jetson" / "setup.sh"
R35 = "# R35 (release), REVISION: 4.1, GCID: 1, BOARD: t186ref, EABI: aarch64\n"
R36 = "# R36 (release), REVISION: 4.0, GCID: 1, BOARD: generic, EABI: aarch64\n"


def setup(*args, release=None, path=None):
    env = {**os.environ, "EDGE_TEGRA_RELEASE": str(release) if release else "/nonexistent/nv_tegra_release"}
    if path is not None:
        env["PATH"] = f"{path}:{env['PATH']}"
    return subprocess.run(["bash", str(SETUP), *args], capture_output=True, text=True, env=env)


def jetson(tmp_path, release: str, python: str, cuda: str) -> tuple[Path, Path]:
    """(nv_tegra_release, a PATH dir whose python3 is ``python`` and whose nvcc reports CUDA ``cuda``)."""
    (tmp_path / "nv_tegra_release").write_text(release)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(python)
    (bin_dir / "nvcc").write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {cuda}, V{cuda}.0'\n")
    (bin_dir / "nvcc").chmod(0o755)
    return tmp_path / "nv_tegra_release", bin_dir


def python38() -> str:
    for p in (ROOT / ".venv38" / "bin" / "python", shutil.which("python3.8")):
        if p and Path(p).exists() and subprocess.run([str(p), "-V"], capture_output=True).returncode == 0:
            return str(p)
    pytest.skip("no working python3.8 here (make test builds .venv38 where one is found)")


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
    assert all(opt in usage for opt in ("--performance", "--venv", "--cpu-onnxruntime", "--ort-wheel", "--dry-run"))


def test_jetpack_5_plans_the_runtime_on_python_38_with_the_cpu_onnxruntime_unless_given_a_wheel(tmp_path):
    release, path = jetson(tmp_path, R35, python38(), "11.4")
    r = setup("--dry-run", "--venv", tmp_path / "venv", release=release, path=path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "L4T R35: JetPack 5" in out and "CUDA 11.4" in out and "Python 3.8: the runtime only" in out
    assert f"+ python3 -m venv --system-site-packages {tmp_path / 'venv'}" in out
    assert f"install -q -e {ROOT}" in out and "install -q pycuda" in out and "kernels.build" in out
    assert "jetson-ai-lab" not in out and "JetPack 5: keeping the CPU onnxruntime" in out
    assert not (tmp_path / "venv").exists()  # a dry run changes nothing
    wheel = "https://example.org/onnxruntime_gpu-1.17.0-cp38-cp38-linux_aarch64.whl"
    out = setup("--dry-run", "--venv", tmp_path / "venv", "--ort-wheel", wheel, release=release, path=path).stdout
    assert f"install -q {wheel}" in out and "uninstall -q -y onnxruntime" in out


def test_jetpack_6_plans_the_jetson_ai_lab_onnxruntime_for_its_cuda(tmp_path):
    release, path = jetson(tmp_path, R36, sys.executable, "12.6")
    r = setup("--dry-run", "--venv", tmp_path / "venv", "--performance", release=release, path=path)
    assert r.returncode == 0, r.stderr
    assert "L4T R36: JetPack 6" in r.stdout and "runtime only" not in r.stdout
    assert "--extra-index-url https://pypi.jetson-ai-lab.io/jp6/cu126" in r.stdout
    assert "nvpmodel -m 0" in r.stdout and "jetson_clocks" in r.stdout


def test_a_python_older_than_38_is_refused(tmp_path):
    found = [shutil.which("python3.7"), *map(str, Path.home().glob(".pyenv/versions/3.7*/bin/python3.7"))]
    old = next((p for p in found if p and subprocess.run([p, "-V"], capture_output=True).returncode == 0), None)
    if old is None:
        pytest.skip("no working Python 3.7 here")
    release, path = jetson(tmp_path, R35, old, "11.4")
    r = setup("--dry-run", release=release, path=path)
    assert r.returncode == 2 and "edge's runtime needs 3.8 or newer" in r.stderr
