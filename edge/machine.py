"""This machine's CPU in the words a speed figure needs: its model, its widest vector instructions, and
whether it has the int8 dot-product instructions (x86 VNNI, Arm's ``asimddp``). Without them ONNX Runtime's
INT8 kernels gain little over fp32 and the Q/DQ steps can make INT8 slower (docs/compression.md), so every
benchmark page and ``edge bench``'s json name it, and ``edge doctor`` reports it.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

_VNNI = {"avx512_vnni", "avx_vnni"}
# Arm's /proc/cpuinfo has no model name, only (implementer, part) codes: the Jetsons' cores
_ARM_PARTS = {("0x41", "0xd42"): "Arm Cortex-A78AE", ("0x41", "0xd07"): "Arm Cortex-A57",
              ("0x4e", "0x004"): "NVIDIA Carmel"}


@dataclass(frozen=True)
class Cpu:
    name: str
    arch: str  # "x86", "arm" or "" (unknown: no flags line in /proc/cpuinfo)
    vector: str  # widest SIMD: "AVX-512", "AVX2", "AVX", "SSE", "NEON" or ""
    int8_dot: bool | None  # VNNI / asimddp; None where the flags do not say

    def __str__(self) -> str:
        if not self.arch:
            return self.name
        dot = "VNNI" if self.arch == "x86" else "int8 dot product"
        return f"{self.name} ({self.vector}, {dot if self.int8_dot else 'no ' + dot})"


def _field(lines: list[str], *keys: str) -> str | None:
    """The value of the first line whose key (before the colon) is one of ``keys``."""
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in keys:
            return value.strip()
    return None


def read_cpu(cpuinfo: str | None = None) -> Cpu:
    """Parse ``cpuinfo`` (the text of /proc/cpuinfo; read from there when None, empty where it is absent)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.is_file() else ""
    lines = cpuinfo.splitlines()
    part = _ARM_PARTS.get((_field(lines, "cpu implementer") or "", _field(lines, "cpu part") or ""))
    name = _field(lines, "model name") or part or platform.processor() or platform.machine()
    x86, arm = _field(lines, "flags"), _field(lines, "features")
    if x86 is not None:
        flags = set(x86.split())
        vector = next((v for f, v in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")) if f in flags), "SSE")
        return Cpu(name, "x86", vector, bool(flags & _VNNI))
    if arm is not None:
        flags = set(arm.split())
        return Cpu(name, "arm", "NEON" if flags & {"asimd", "neon"} else "", "asimddp" in flags)
    return Cpu(name, "", "", None)


def cpu_name() -> str:
    """This CPU as results pages name it, e.g. ``AMD EPYC (AVX2, no VNNI)``."""
    return str(read_cpu())
