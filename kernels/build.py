"""nvcc build of the kernels: one shared library per .cu source, for every target arch the local nvcc has.

Targets: sm_87 and sm_110 (Jetson Orin, Thor), sm_75, sm_80, sm_86, sm_89, sm_90 (desktop), plus sm_72
(Xavier) and sm_53 (Nano) when the local nvcc still supports them (CUDA 11.4 on JetPack 5 does; CUDA 13
does not), and PTX of the newest arch so newer GPUs JIT it. Builds are cached by a hash of the source, the
flags and the nvcc version, so re-running is free. ``python -m kernels.build`` exits non-zero on a compile
error and 0 with a notice when nvcc is absent (the CPU references still work).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SRC_DIR = Path(__file__).parent / "src"
BUILD_DIR = Path(os.environ.get("EDGE_KERNELS_BUILD", Path(__file__).parent / "_build"))
WANTED_ARCHS = (53, 72, 75, 80, 86, 87, 89, 90, 110)
FLAGS = ["-O3", "-shared", "-Xcompiler", "-fPIC", "-std=c++14"]


class BuildError(RuntimeError):
    pass


def nvcc() -> str | None:
    return shutil.which("nvcc") or next((str(p) for p in (Path("/usr/local/cuda/bin/nvcc"),) if p.is_file()), None)


def supported_archs(nvcc_path: str) -> list[int]:
    """The wanted archs this nvcc can target (``nvcc --list-gpu-arch``; CUDA 11.4 lacks the flag)."""
    try:
        out = subprocess.run([nvcc_path, "--list-gpu-arch"], capture_output=True, text=True, check=True).stdout
        have = {int(m) for m in re.findall(r"compute_(\d+)", out)}
    except subprocess.CalledProcessError:
        have = {53, 62, 72, 75, 80, 86, 87}  # CUDA 11.4 (JetPack 5)
    return [a for a in WANTED_ARCHS if a in have]


def gencode_flags(archs: list[int]) -> list[str]:
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    return flags + [f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}"]


def library_path(name: str) -> Path:
    return BUILD_DIR / f"lib{name}.so"


def _key(src: Path, cmd: list[str], version: str) -> str:
    h = hashlib.sha256(src.read_bytes())
    h.update(" ".join(cmd).encode())
    h.update(version.encode())
    return h.hexdigest()


def build_one(src: Path, nvcc_path: str, archs: list[int], version: str) -> tuple[Path, bool]:
    """Compile ``src`` unless an up-to-date build exists. Returns (library, rebuilt)."""
    out = library_path(src.stem)
    cmd = [nvcc_path, *FLAGS, *gencode_flags(archs), "-o"]
    key = _key(src, cmd, version)
    stamp = out.with_suffix(".so.key")
    if out.is_file() and stamp.is_file() and stamp.read_text() == key:
        return out, False
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".so.{os.getpid()}.part")
    proc = subprocess.run([*cmd, str(tmp), str(src)], capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"nvcc failed on {src.name}:\n{proc.stderr.strip()}")
    os.replace(tmp, out)
    stamp.write_text(key)
    return out, True


def build_all(verbose: bool = True) -> dict[str, Path]:
    """Build every kernel; {} when nvcc is absent."""
    nv = nvcc()
    if nv is None:
        if verbose:
            print("kernels: nvcc not found; skipping the CUDA build (the CPU references are used)")
        return {}
    version = subprocess.run([nv, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    archs = supported_archs(nv)
    sources = sorted(SRC_DIR.glob("*.cu"))
    with ThreadPoolExecutor(max_workers=max(1, min(len(sources), os.cpu_count() or 1))) as pool:
        results = list(pool.map(lambda s: build_one(s, nv, archs, version), sources))
    if verbose:
        arch_list = ", ".join(f"sm_{a}" for a in archs)
        for (lib, rebuilt), src in zip(results, sources):
            print(f"kernels: {src.name} -> {lib} [{arch_list} + PTX sm_{archs[-1]}] "
                  f"({'built' if rebuilt else 'up to date'})")
    return {src.stem: lib for (lib, _), src in zip(results, sources)}


FATBIN_MAGIC = struct.pack("<I", 0xBA55ED50)


def embedded_targets(lib: Path) -> dict[str, set[int]]:
    """The archs a built library carries, read from its fatbin (cuobjdump is not always installed):
    {"sm": archs with machine code, "ptx": archs with PTX}. Entry layout: kind u16 (1 PTX, 2 ELF),
    u16, header size u32, payload size u64, ..., arch u32 at byte 28."""
    data = lib.read_bytes()
    found: dict[str, set[int]] = {"sm": set(), "ptx": set()}
    at = data.find(FATBIN_MAGIC)
    while at != -1:
        _, _, header, size = struct.unpack_from("<IHHQ", data, at)
        p, end = at + header, at + header + size
        while p < end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, p)
            arch = struct.unpack_from("<I", data, p + 28)[0]
            if kind in (1, 2):
                found["ptx" if kind == 1 else "sm"].add(arch)
            p += entry_header + payload
        at = data.find(FATBIN_MAGIC, max(end, at + 4))
    return found


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    try:
        build_all()
    except BuildError as e:
        print(f"kernels: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
