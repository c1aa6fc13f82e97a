#!/usr/bin/env bash
# Set up a Jetson for edge: system packages, a venv that sees JetPack's TensorRT and GStreamer bindings,
# pycuda built against the device's CUDA, ONNX Runtime with CUDA, and our CUDA kernels. Idempotent: every
# step checks first, so re-running is cheap. See docs/tensorrt.md and jetson/README.md.
#
#   jetson/setup.sh [--performance] [--venv DIR] [--cpu-onnxruntime] [--ort-wheel WHEEL] [--dry-run]
#
#   --performance       also set the maximum power mode and lock the clocks (nvpmodel -m 0, jetson_clocks):
#                       steadier benchmark figures, more power and heat (a fan is needed; not kept on reboot)
#   --venv DIR          where the venv goes (default: .venv in the repository)
#   --cpu-onnxruntime   keep PyPI's CPU onnxruntime instead of the Jetson AI Lab CUDA build
#   --ort-wheel WHEEL   install this onnxruntime-gpu wheel (file or URL): on JetPack 5, whose CUDA builds are
#                       listed in the Jetson Zoo (https://elinux.org/Jetson_Zoo#ONNX_Runtime), not an index
#   --dry-run           print what would be installed or changed, change nothing
#
# JetPack 6 (L4T R36): Python 3.10, TensorRT 10. JetPack 5 (L4T R35): Python 3.8, TensorRT 8.5, where edge
# installs as the runtime only (edge run/bench/info/doctor/build; training and export run on a host).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
PERFORMANCE=0
ORT_GPU=1
ORT_WHEEL=""
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --performance) PERFORMANCE=1 ;;
    --venv) VENV="$2"; shift ;;
    --cpu-onnxruntime) ORT_GPU=0 ;;
    --ort-wheel) ORT_WHEEL="$2"; shift ;;
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '== %s\n' "$*"; }
# every command that installs or changes something goes through run: --dry-run prints it instead
run() {
  if [ "$DRY" -eq 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- which JetPack: L4T R35 is JetPack 5 (CUDA 11.4, TensorRT 8.5), R36 is JetPack 6 (CUDA 12.x, TensorRT 10)
RELEASE="${EDGE_TEGRA_RELEASE:-/etc/nv_tegra_release}"  # overridable for tests/test_jetson_setup.py
if [ ! -r "$RELEASE" ]; then
  echo "setup.sh: $RELEASE not found: this is not a Jetson (on a desktop, follow the README)" >&2
  exit 2
fi
L4T="$(sed -n 's/^# R\([0-9]*\) .*/\1/p' "$RELEASE")"
case "$L4T" in
  35) JETPACK=5 ;;
  36) JETPACK=6 ;;
  *) echo "setup.sh: L4T R$L4T is neither JetPack 5 (R35) nor 6 (R36)" >&2; exit 2 ;;
esac
say "L4T R$L4T: JetPack $JETPACK"
# the system Python, which JetPack's TensorRT and GStreamer bindings are built for: 3.8 on JetPack 5 (the
# runtime only: pyproject.toml marks training's dependencies for 3.10+), 3.10 on JetPack 6
PYTHON_MINOR="$(python3 -c 'import sys; print(sys.version_info[1])')"
if [ "$PYTHON_MINOR" -lt 8 ]; then
  echo "setup.sh: Python 3.$PYTHON_MINOR here; edge's runtime needs 3.8 or newer (JetPack 5 or 6)" >&2
  exit 2
fi
if [ "$PYTHON_MINOR" -lt 10 ]; then
  say "Python 3.$PYTHON_MINOR: the runtime only (train and export on a host, then copy the bundle here)"
fi

# --- system packages (only the missing ones)
PACKAGES=(python3-venv python3-dev python3-gi python3-gi-cairo python3-libnvinfer gir1.2-gstreamer-1.0
  gir1.2-gst-plugins-base-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp
  libgirepository1.0-dev libcairo2-dev pkg-config build-essential)
MISSING=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || MISSING+=("$p")
done
if [ "${#MISSING[@]}" -gt 0 ]; then
  say "installing ${MISSING[*]}"
  run $SUDO apt-get update -qq
  run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${MISSING[@]}"
else
  say "system packages present"
fi

# --- CUDA on PATH (JetPack installs it under /usr/local/cuda but does not add it)
if ! command -v nvcc >/dev/null 2>&1; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
command -v nvcc >/dev/null 2>&1 || { echo "setup.sh: nvcc not found (install nvidia-jetpack)" >&2; exit 2; }
CUDA_VERSION="$(nvcc --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')"
say "CUDA $CUDA_VERSION"

# --- the venv sees the system site packages: JetPack's tensorrt and gi are not on PyPI for Jetson
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  run python3 -m venv --system-site-packages "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
run "${PIP[@]}" install -q --upgrade pip
run "${PIP[@]}" install -q -e "$REPO"
if ! "$VENV/bin/python" -c 'import pycuda.driver' >/dev/null 2>&1; then
  say "building pycuda against CUDA $CUDA_VERSION"
  run env CUDA_ROOT="$(dirname "$(dirname "$(command -v nvcc)")")" "${PIP[@]}" install -q pycuda
fi

# --- ONNX Runtime with CUDA. JetPack 6: NVIDIA's Jetson AI Lab index builds it per CUDA
# (https://pypi.jetson-ai-lab.io/jp6/cu126 for CUDA 12.6). JetPack 5: no index; the Jetson Zoo lists wheels
# per JetPack and Python (--ort-wheel), and without one PyPI's CPU build stays (TensorRT is the GPU path).
# PyPI has only CPU builds for aarch64.
if [ "$ORT_GPU" -eq 1 ] && ! "$VENV/bin/python" -c \
    'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' 2>/dev/null; then
  if [ -n "$ORT_WHEEL" ]; then
    say "installing onnxruntime-gpu from $ORT_WHEEL"
    run "${PIP[@]}" uninstall -q -y onnxruntime || true
    run "${PIP[@]}" install -q "$ORT_WHEEL"
  elif [ "$JETPACK" -eq 6 ]; then
    CU="cu$(echo "$CUDA_VERSION" | tr -d .)"
    say "installing onnxruntime-gpu from https://pypi.jetson-ai-lab.io/jp6/$CU"
    run "${PIP[@]}" uninstall -q -y onnxruntime || true
    run "${PIP[@]}" install -q onnxruntime-gpu --extra-index-url "https://pypi.jetson-ai-lab.io/jp6/$CU"
  else
    say "JetPack 5: keeping the CPU onnxruntime (pass --ort-wheel with a Jetson Zoo onnxruntime-gpu wheel" \
        "for Python 3.$PYTHON_MINOR: https://elinux.org/Jetson_Zoo#ONNX_Runtime)"
  fi
fi

# --- our CUDA kernels for this GPU
say "building the kernels"
run env -C "$REPO" "$VENV/bin/python" -m kernels.build  # what `make kernels` runs, in this venv

if [ "$PERFORMANCE" -eq 1 ]; then
  say "performance mode: nvpmodel -m 0 and jetson_clocks (until reboot)"
  run $SUDO nvpmodel -m 0
  run $SUDO jetson_clocks
fi

[ "$DRY" -eq 1 ] || "$VENV/bin/edge" doctor || true
say "done: $VENV/bin/edge run --model BUNDLE --source csi://0 --output display://"
