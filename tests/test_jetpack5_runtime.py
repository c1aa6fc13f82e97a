"""The runtime on JetPack 5's Python, 3.8: `make test` builds .venv38, a runtime-only install (no torch), and
these tests drive its `edge` on a real bundle this Python (the host side) exported. `edge run` decides as the
host's runtime does, in clip and online mode, fp32 and INT8; `edge bench`, `edge info` and `edge doctor`
work; `edge build`'s builder runs against the FAKE `tensorrt` module (tests/export/fake_tensorrt.py: there
is no TensorRT here); the host-side commands are one line each, and exit code 2."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from e2e_helpers import edge, synth

from edge.preprocess import Preprocess
from train.data import dataset_from_dir
from train.engine import Checkpoint
from train.models import build_model

ROOT = Path(__file__).resolve().parents[1]
PY38 = ROOT / ".venv38" / "bin" / "python"
pytestmark = pytest.mark.skipif(not PY38.exists(), reason="no .venv38: python3.8 was not found, so `make test` "
                                "built no Python 3.8 runtime to test")


def edge38(*args, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([str(PY38), "-m", "edge.cli", *map(str, args)], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"3.8: edge {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """(bundle, video): an untrained causal TSM exported here with --int8 --online, and a test video."""
    root = tmp_path_factory.mktemp("jp5")
    data = synth(root / "data", videos_per_class=3, seed=4, frames=24)
    torch.manual_seed(0)
    config = {"num_classes": 4, "num_segments": 4, "width": 8}
    name = "tsm_online_resnet18"
    Checkpoint(name, config, build_model(name, **config).state_dict(), dataset_from_dir(data, "train")[1],
               {"preprocess": Preprocess(32, 36).to_dict(),
                "clip": {"num_segments": 4, "window_frames": 8, "stride_frames": 4}}).save(root / "in.pt")
    edge("export", "--ckpt", root / "in.pt", "--out", root / "bundle", "--data", data, "--int8", "--online")
    video = data / (data / "splits" / "testlist01.txt").read_text().split()[0]
    return root / "bundle", video


def test_the_38_install_is_python_38_without_torch():
    r = subprocess.run([str(PY38), "-c", "import sys, importlib.util as u; print(sys.version_info[:2], "
                        "u.find_spec('torch') is None)"], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["(3,", "8)", "True"]


@pytest.mark.parametrize("mode, precision", [("clip", "fp32"), ("clip", "int8"), ("online", "fp32"),
                                             ("online", "int8")])
def test_run_decides_on_38_as_on_the_host(host, tmp_path, mode, precision):
    bundle, video = host
    runs = {}
    for who, run in (("host", edge), ("3.8", edge38)):
        out = tmp_path / f"{who}.jsonl"
        run("run", "--model", bundle, "--source", f"file://{video}", "--mode", mode, "--precision", precision,
            "--output", f"json://{out}")
        runs[who] = [json.loads(line) for line in out.read_text().splitlines()]
    host_lines, py38_lines = runs["host"], runs["3.8"]
    assert len(host_lines) >= (10 if mode == "online" else 4)  # a decision every 2nd frame / 4-frame stride
    assert [(d["frame"], d["label"]) for d in py38_lines] == [(d["frame"], d["label"]) for d in host_lines]
    for a, b in zip(py38_lines, host_lines, strict=True):
        assert dict(a["top5"]) == pytest.approx(dict(b["top5"]), abs=1e-4)


def test_bench_info_and_doctor_run_on_38(host, tmp_path):
    bundle, _ = host
    edge38("bench", "--model", bundle, "--rows", "ort:fp32,ort:int8", "--iters", 3, "--json", tmp_path / "b.json")
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(r["backend"], r["precision"]) for r in rows] == [("ort-cpu", "fp32"), ("ort-cpu", "int8")]
    assert all(r["clips_per_s"] > 0 for r in rows)
    assert json.loads(edge38("info", bundle).stdout) == json.loads(edge("info", bundle).stdout)
    doctor = {c["item"]: c for c in json.loads(edge38("doctor", "--json").stdout)["checks"]}
    assert doctor["python"]["ok"] and doctor["python"]["detail"].startswith("3.8")
    assert doctor["onnxruntime"]["ok"] and doctor["gstreamer"]["ok"] and not doctor["torch"]["ok"]


BUILD = """
import json, sys
sys.path.insert(0, {tests!r})
from fake_tensorrt import fake
sys.modules["tensorrt"] = trt = fake(version="8.5.2 (fake)")  # JetPack 5's TensorRT
from pathlib import Path
from export.tensorrt import BuildOptions, build_engine
path = build_engine(Path({bundle!r}), BuildOptions(precision="int8", max_batch=2),
                    gpu={{"gpu": "Xavier NX (fake)", "compute_capability": "7.2"}})
print(json.dumps({{"engine": path.name, "flags": [c.flags for _, c in trt.built], "torch": "torch" in sys.modules}}))
"""


def test_the_builder_runs_on_38_against_the_fake_tensorrt(host, tmp_path):
    bundle = shutil.copytree(host[0], tmp_path / "bundle")
    r = subprocess.run([str(PY38), "-c", BUILD.format(tests=str(ROOT / "tests" / "export"), bundle=str(bundle))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    # the clip engine and the online (per-frame) engine, both INT8, built without torch
    assert json.loads(r.stdout) == {"engine": "model.int8.engine", "flags": [["INT8"], ["INT8"]], "torch": False}
    assert json.loads((bundle / "manifest.json").read_text())["engines"]["int8"]["gpu"] == "Xavier NX (fake)"


@pytest.mark.parametrize("args, needle", [
    (["build", "--bundle", "{bundle}"], "TensorRT is not installed"),
    (["info", "{bundle}", "--summary"], "counting parameters and MACs needs onnx-tool, which is not installed here (it needs Python 3.10+; this is 3.8)"),
    (["train", "--data", "x"], "`edge train` needs torch and Python 3.10+ (this is Python 3.8"),
    (["export", "--ckpt", "x.pt", "--out", "b"], "`edge export` needs torch and Python 3.10+"),
    (["compress", "--ckpt", "x.pt"], "`edge compress` needs torch and Python 3.10+"),
    (["data", "synth", "--out", "d"], "`edge data` needs torch and Python 3.10+"),
])
def test_what_38_cannot_do_is_one_line_and_exit_2(host, args, needle):
    r = edge38(*(a.format(bundle=host[0]) for a in args), check=False)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_the_kernels_build_on_38_as_jetson_setup_builds_them():
    """jetson/setup.sh runs `python -m kernels.build` in the device's venv: on JetPack 5 that is Python 3.8."""
    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc here: the kernel build is skipped")
    r = subprocess.run([str(PY38), "-m", "kernels.build"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "libtemporal_shift.so" in r.stdout and "libcsr_spmv.so" in r.stdout


CALIB = """
import sys
sys.path.insert(0, {tests!r})
from fake_tensorrt import fake
sys.modules["tensorrt"] = fake(version="8.5.2 (fake)")
from pathlib import Path
from edge.errors import EdgeError
from export.tensorrt import BuildOptions, build_engine
try:
    build_engine(Path({bundle!r}), BuildOptions(precision="int8", calib=Path("data")), gpu={{"gpu": "g",
                 "compute_capability": "7.2"}})
except EdgeError as e:
    print(e)
"""


def test_build_calib_on_38_is_one_line_pointing_to_the_host(host, tmp_path):
    """A bundle without an INT8 model: `edge build --calib` would calibrate with the training package."""
    bundle = shutil.copytree(host[0], tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.startswith(("int8", "online-int8"))}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    r = subprocess.run([str(PY38), "-c", CALIB.format(tests=str(ROOT / "tests" / "export"), bundle=str(bundle))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == ("--calib needs torch, which is not installed here: calibrate on a host with "
                                "`edge export --int8`, then copy the bundle here")
