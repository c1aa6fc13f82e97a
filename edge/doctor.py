"""`edge doctor`: what this machine can do, one line per item with OK / missing and the fix.

Every probe is read-only and cheap (package metadata, GStreamer's plugin registry, ``nvidia-smi``, the
kernels' build directory, /dev/video*); nothing imports torch or TensorRT (package versions come from their
metadata), so the doctor runs on a Jetson image that has neither. ``edge run`` can work when GStreamer's
Python bindings load and at least one backend can (ONNX Runtime, TensorRT with pycuda, or torch).
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from glob import glob
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path

from edge.machine import Cpu, read_cpu

# element -> what it is for; the Jetson ones (nv*) are missing on a desktop, which is fine
ELEMENTS = {
    "decodebin": "file:// and rtsp:// decoding", "videoconvert": "colour conversion", "videoscale": "resizing",
    "appsink": "frames to the model", "appsrc": "annotated frames to the sinks", "x264enc": "H.264 file/RTP out",
    "openh264enc": "H.264 out when x264enc is absent", "mp4mux": "file://out.mp4", "rtph264pay": "rtp:// out",
    "rtspsrc": "rtsp:// in", "v4l2src": "USB cameras", "nvarguscamerasrc": "Jetson CSI cameras",
    "nvvidconv": "Jetson GPU colour conversion", "nvv4l2decoder": "Jetson hardware decoding",
    "nvv4l2h264enc": "Jetson hardware encoding",
}
APT = {"gstreamer": "apt-get install gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 python3-gi "
                    "(then pip install -e . in the venv)",
       "base": "apt-get install gstreamer1.0-plugins-base", "good": "apt-get install gstreamer1.0-plugins-good", "bad": "apt-get install gstreamer1.0-plugins-bad",
       "ugly": "apt-get install gstreamer1.0-plugins-ugly", "jetson": "part of JetPack (nvidia-l4t-gstreamer)",
       "rtsp_server": "apt-get install gir1.2-gst-rtsp-server-1.0"}
PLUGIN_PACKAGE = {**{e: "base" for e in ("decodebin", "videoconvert", "videoscale", "appsink", "appsrc")},
                  "x264enc": "ugly", "openh264enc": "bad", "mp4mux": "good", "rtph264pay": "good",
                  "rtspsrc": "good", "v4l2src": "good", "nvarguscamerasrc": "jetson", "nvvidconv": "jetson",
                  "nvv4l2decoder": "jetson", "nvv4l2h264enc": "jetson"}
PACKAGES = {"numpy": "pip install -e .", "onnxruntime": "pip install -e . (onnxruntime-gpu on a GPU machine)",
            "opencv-contrib-python-headless": "pip install -e .",
            "torch": "pip install torch (training, export and the torch backend; a Jetson runtime needs none)",
            "tensorrt": "JetPack ships it (python3-libnvinfer); elsewhere pip install -e .[jetson]",
            "pycuda": "pip install -e .[jetson] (it builds against the device's CUDA)"}


@dataclass(frozen=True)
class Check:
    """One line of the report: ``fix`` says what to do when ``ok`` is False."""

    item: str
    ok: bool
    detail: str
    fix: str = ""


def _pkg_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def package_checks() -> list[Check]:
    out = [Check("python", True, platform.python_version())]
    for name, fix in PACKAGES.items():
        v = _pkg_version(name) or (_pkg_version("onnxruntime-gpu") if name == "onnxruntime" else None)
        out.append(Check(name, v is not None, v or "not installed", "" if v else fix))
    return out


def gstreamer_checks() -> list[Check]:
    """GStreamer's version, every element the runtime may use, and the RTSP server library."""
    from edge.errors import EdgeError
    from edge.gst import gst

    try:
        Gst, _ = gst()
    except EdgeError as e:
        return [Check("gstreamer", False, str(e).split(";")[0], APT["gstreamer"])]
    out = [Check("gstreamer", True, Gst.version_string())]
    for name, use in ELEMENTS.items():
        found = Gst.ElementFactory.find(name) is not None
        out.append(Check(f"element {name}", found, use, "" if found else APT[PLUGIN_PACKAGE[name]]))
    out.append(_rtsp_server())
    return out


def _rtsp_server() -> Check:
    import gi

    try:
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GstRtspServer  # noqa: F401
    except (ImportError, ValueError):
        return Check("rtsp server library", False, "GstRtspServer typelib not found", APT["rtsp_server"])
    return Check("rtsp server library", True, "GstRtspServer 1.0")


def ort_checks() -> list[Check]:
    if find_spec("onnxruntime") is None:
        return [Check("onnxruntime providers", False, "onnxruntime not installed", PACKAGES["onnxruntime"])]
    import onnxruntime as ort

    providers = ort.get_available_providers()
    return [Check("onnxruntime providers", "CPUExecutionProvider" in providers, ", ".join(providers))]


def _run(cmd: list[str]) -> str | None:
    """stdout of ``cmd``, or None when it is absent or fails."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def gpu_checks() -> list[Check]:
    """GPU name and compute capability (nvidia-smi; a Jetson has none: its model from the device tree),
    CUDA (nvcc), and whether our kernels are built with code for this GPU."""
    smi = _run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"])
    gpus = [tuple(x.strip() for x in line.split(",")) for line in (smi or "").splitlines() if line.strip()]
    jetson = Path("/proc/device-tree/model")
    if gpus:
        gpu = Check("gpu", True, "; ".join(f"{n} (compute capability {c})" for n, c in gpus))
    elif jetson.is_file() and "jetson" in jetson.read_text(errors="replace").lower():
        gpu = Check("gpu", True, jetson.read_text(errors="replace").strip("\x00\n"))
    else:
        gpu = Check("gpu", False, "no NVIDIA GPU found (nvidia-smi absent or no device)",
                    "CPU backends still work; for TensorRT run on a Jetson or an NVIDIA GPU")
    nvcc = _run(["nvcc", "--version"])
    release = re.search(r"release ([\d.]+)", nvcc or "")
    cuda = Check("cuda (nvcc)", release is not None, release.group(1) if release else "nvcc not found",
                 "" if release else "install the CUDA toolkit (JetPack has it) to build our kernels")
    return [gpu, cuda, kernels_check([c for _, c in gpus])]


def kernels_check(capabilities: Iterable[str]) -> Check:
    """Our CUDA kernels' libraries, and whether they carry machine code (or PTX to JIT) for these GPUs."""
    from kernels.build import embedded_targets, library_path

    libs = [library_path(n) for n in ("temporal_shift", "csr_spmv")]
    missing = [p.name for p in libs if not p.is_file()]
    if missing:
        return Check("cuda kernels", False, f"not built ({', '.join(missing)})", "make kernels")
    targets = embedded_targets(libs[0])
    wanted = [int(c.replace(".", "")) for c in capabilities]
    served = [a for a in wanted if a in targets["sm"] or any(p <= a for p in targets["ptx"])]
    detail = f"built: sm_{', sm_'.join(map(str, sorted(targets['sm'])))}"
    unserved = [a for a in wanted if a not in served]
    if unserved:
        return Check("cuda kernels", False, f"{detail}; none for sm_{unserved[0]}", "make kernels on this machine")
    return Check("cuda kernels", True, detail + (f"; runs on sm_{', sm_'.join(map(str, served))}" if served else ""))


def cpu_check(cpu: Cpu) -> Check:
    """Whether this CPU has int8 dot-product instructions (VNNI, asimddp): without them ONNX Runtime's INT8
    gains little or nothing over fp32, so which precision to run is for ``edge bench`` to say."""
    if cpu.int8_dot is None:
        return Check("cpu int8", False, f"{cpu}: /proc/cpuinfo lists no instruction set",
                     "edge bench --rows ort:fp32,ort:int8 shows which to run")
    if cpu.int8_dot:
        return Check("cpu int8", True, str(cpu))
    return Check("cpu int8", False, f"{cpu}: no int8 dot-product instructions, so ONNX Runtime INT8 gains "
                 "little or nothing over fp32 here", "edge bench --rows ort:fp32,ort:int8 shows which to run")


def camera_checks() -> list[Check]:
    cams = sorted(glob("/dev/video*"))
    return [Check("cameras", bool(cams), ", ".join(cams) if cams else "no /dev/video* device",
                  "" if cams else "plug a USB camera, or use file://, rtsp:// or test:// sources")]


def cpu_checks() -> list[Check]:
    return [cpu_check(read_cpu())]


PROBES: tuple[Callable[[], list[Check]], ...] = (package_checks, gstreamer_checks, ort_checks, cpu_checks,
                                                  gpu_checks, camera_checks)


def diagnose() -> list[Check]:
    return [c for probe in PROBES for c in probe()]


def runnable(checks: Iterable[Check]) -> bool:
    """Whether ``edge run`` can work: GStreamer loads and at least one backend does (ONNX Runtime with its CPU
    provider, TensorRT with pycuda, or torch)."""
    ok = {c.item for c in checks if c.ok}
    backend = "onnxruntime providers" in ok or {"tensorrt", "pycuda"} <= ok or "torch" in ok
    return "gstreamer" in ok and backend


def render(checks: Iterable[Check]) -> str:
    checks = list(checks)
    width = max(len(c.item) for c in checks)
    lines = [f"{'OK' if c.ok else 'missing':8s}{c.item:{width}s}  {c.detail}" + (f"  -> {c.fix}" if c.fix else "")
             for c in checks]
    verdict = "edge run can work here" if runnable(checks) else "edge run cannot work here: see the missing items"
    return "\n".join([*lines, verdict])


def as_json(checks: Iterable[Check]) -> dict:
    checks = list(checks)
    return {"runnable": runnable(checks), "checks": [asdict(c) for c in checks]}
