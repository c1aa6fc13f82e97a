"""The nvcc build: every .cu compiles into a library holding machine code for each target arch the local
nvcc supports, the launchers are exported, and a missing toolchain falls back to the references."""

import ctypes
import logging
import re

import pytest

from kernels import build, cuda

needs_nvcc = pytest.mark.skipif(build.nvcc() is None, reason="nvcc not installed: nothing to compile")
DESKTOP_AND_ORIN_THOR = {75, 80, 86, 87, 89, 90, 110}


@pytest.fixture(scope="module")
def built() -> dict:
    return build.build_all(verbose=False)


@needs_nvcc
def test_targets_are_what_the_issue_asks_for_when_nvcc_has_them():
    archs = build.supported_archs(build.nvcc())
    assert set(archs) >= DESKTOP_AND_ORIN_THOR & set(build.WANTED_ARCHS)
    flags = build.gencode_flags(archs)
    assert "-gencode=arch=compute_87,code=sm_87" in flags and flags[-1].endswith(f"code=compute_{archs[-1]}")


@needs_nvcc
def test_every_kernel_library_has_each_arch_and_its_launchers(built):
    assert set(built) == {"temporal_shift", "csr_spmv"}
    archs = build.supported_archs(build.nvcc())
    for name, lib in built.items():
        targets = build.embedded_targets(lib)
        assert targets["sm"] >= set(archs), f"{lib.name} carries sm {sorted(targets['sm'])}, wanted {archs}"
        assert max(archs) in targets["ptx"]
        so = ctypes.CDLL(str(lib))
        for symbol in cuda.SIGNATURES[name]:
            assert hasattr(so, symbol)


def declared_launchers(source: str) -> dict[str, str]:
    """extern "C" launchers of a .cu file as {name: signature} in SIGNATURES' letters."""
    found = {}
    for name, params in re.findall(r'extern "C" int (\w+)\(([^)]*)\)', source):
        found[name] = "".join("p" if "*" in p else "i" for p in params.split(","))
    return found


def test_ctypes_signatures_match_the_cuda_declarations():
    # a wrong argument list would only show as a crash on a GPU, which CI does not have
    for name, signatures in cuda.SIGNATURES.items():
        assert declared_launchers((build.SRC_DIR / f"{name}.cu").read_text()) == signatures


@needs_nvcc
def test_rebuild_is_cached(built):
    assert build.build_all(verbose=False) == built
    for lib in built.values():
        assert lib.with_suffix(".so.key").is_file()


@needs_nvcc
def test_a_second_build_reuses_the_library_and_a_changed_source_or_toolchain_rebuilds(monkeypatch, tmp_path):
    monkeypatch.setattr(build, "BUILD_DIR", tmp_path / "build")
    src = tmp_path / "probe.cu"
    src.write_text('extern "C" __global__ void probe(float* x) { x[threadIdx.x] = 1.0f; }\n')
    nv, archs = build.nvcc(), [build.supported_archs(build.nvcc())[0]]

    def build_and_stat(version="v1"):
        lib, rebuilt = build.build_one(src, nv, archs, version)
        return rebuilt, lib.stat().st_mtime_ns

    first = build_and_stat()
    assert first[0] and build.library_path("probe").is_file()
    assert build_and_stat() == (False, first[1])  # nothing changed: not recompiled, file untouched
    assert build_and_stat("v2")[0]  # another nvcc
    src.write_text(src.read_text().replace("1.0f", "2.0f"))
    assert build_and_stat("v2")[0]  # a changed source
    assert not build_and_stat("v2")[0]
    assert sorted(p.name for p in (tmp_path / "build").iterdir()) == ["libprobe.so", "libprobe.so.key"]


@needs_nvcc
def test_a_compile_error_is_reported_and_leaves_no_library(monkeypatch, tmp_path):
    monkeypatch.setattr(build, "BUILD_DIR", tmp_path / "build")
    src = tmp_path / "broken.cu"
    src.write_text("this is not C++\n")
    nv = build.nvcc()
    with pytest.raises(build.BuildError, match="nvcc failed on broken.cu"):
        build.build_one(src, nv, [build.supported_archs(nv)[0]], "v1")
    assert not list((tmp_path / "build").iterdir())


def test_missing_nvcc_gives_the_reference_with_one_notice(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(build, "BUILD_DIR", tmp_path)
    monkeypatch.setattr(build, "nvcc", lambda: None)
    monkeypatch.setattr(cuda, "_noticed", set())
    cuda.library.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="kernels"):
            assert cuda.library("temporal_shift") is None
            cuda.notice_once("temporal_shift", "again")
        assert [r.message for r in caplog.records] == [
            "kernels: libtemporal_shift.so not built (no nvcc); using the reference implementation"]
    finally:
        cuda.library.cache_clear()
