"""`edge doctor` on this machine (real probes: GStreamer's registry, ONNX Runtime, nvidia-smi, the kernels'
build directory) and its verdict on hand-made reports."""

import json
import subprocess
import sys

import pytest

from edge.doctor import Check, kernels_check, render, runnable


def doctor(*args):
    return subprocess.run([sys.executable, "-m", "edge.cli", "doctor", *args], capture_output=True, text=True)


def test_this_machine_has_gstreamer_and_onnxruntime_and_no_tensorrt():
    r = doctor()
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(x.startswith("OK") and " gstreamer " in x and "GStreamer 1." in x for x in lines)
    assert any(x.startswith("OK") and "onnxruntime providers" in x and "CPUExecutionProvider" in x for x in lines)
    assert any(x.startswith("missing") and " tensorrt " in x and "-> " in x for x in lines)
    assert any(x.startswith("OK") and "element decodebin" in x for x in lines)
    assert lines[-1] == "edge run can work here"


def test_json_report_matches_the_text_one():
    report = json.loads(doctor("--json").stdout)
    items = {c["item"]: c for c in report["checks"]}
    assert report["runnable"] is True
    assert items["gstreamer"]["ok"] and not items["tensorrt"]["ok"] and items["tensorrt"]["fix"]
    assert {"python", "numpy", "onnxruntime", "pycuda", "gpu", "cuda (nvcc)", "cuda kernels", "cameras",
            "rtsp server library", "element nvarguscamerasrc", "cpu int8"} <= set(items)


def _report(*ok_items, missing=()):
    return [Check(i, True, "") for i in ok_items] + [Check(i, False, "", "fix it") for i in missing]


@pytest.mark.parametrize("checks, expected", [
    (_report("gstreamer", "onnxruntime providers"), True),
    (_report("gstreamer", "tensorrt", "pycuda", missing=("onnxruntime providers",)), True),
    (_report("gstreamer", "tensorrt", missing=("pycuda", "onnxruntime providers", "torch")), False),
    (_report("gstreamer", "torch"), True),
    (_report("onnxruntime providers", "torch", missing=("gstreamer",)), False),
])
def test_edge_run_needs_gstreamer_and_one_backend(checks, expected):
    assert runnable(checks) is expected
    assert render(checks).splitlines()[-1].startswith("edge run can work" if expected else "edge run cannot")


def test_missing_lines_name_the_fix():
    text = render(_report("gstreamer", missing=("tensorrt",)))
    assert "missing tensorrt" in text.replace("  ", " ") and "-> fix it" in text


def test_kernels_are_judged_against_the_gpus_compute_capability(tmp_path, monkeypatch):
    import kernels.build as build

    if not build.library_path("temporal_shift").is_file():
        pytest.skip("kernels not built here (no nvcc): make kernels")
    built = build.embedded_targets(build.library_path("temporal_shift"))
    newest = max(built["sm"])
    assert kernels_check([]).ok
    assert kernels_check([f"{newest // 10}.{newest % 10}"]).ok
    # PTX of the newest arch lets a newer GPU JIT the kernels; an older, unlisted arch has nothing
    assert kernels_check(["99.9"]).ok == any(p <= 999 for p in built["ptx"])
    assert not kernels_check(["3.0"]).ok
    monkeypatch.setattr(build, "BUILD_DIR", tmp_path)
    missing = kernels_check([])
    assert not missing.ok and missing.fix == "make kernels"
