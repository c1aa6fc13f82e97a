"""The CPU named next to every speed figure (edge.machine), and `edge doctor`'s int8 line, on hand-made
/proc/cpuinfo texts of the machines this project meets."""

from edge.doctor import cpu_check
from edge.machine import cpu_name, read_cpu

XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw avx512_vnni amx_int8
"""
EPYC = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 sse4_2 avx f16c avx2 fma
"""
ALDER_LAKE = "model name\t: 12th Gen Intel(R) Core(TM) i7-1265U\nflags\t\t: sse avx avx2 avx_vnni\n"
ORIN = """processor\t: 0
BogoMIPS\t: 62.50
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd42
"""
NANO = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\nCPU implementer\t: 0x41\nCPU part\t: 0xd07\n"


def test_x86_names_its_vector_width_and_vnni():
    assert str(read_cpu(XEON)) == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz (AVX-512, VNNI)"
    assert str(read_cpu(EPYC)) == "AMD EPYC (AVX2, no VNNI)"
    assert str(read_cpu(ALDER_LAKE)).endswith("(AVX2, VNNI)")  # AVX-VNNI without AVX-512


def test_jetson_cores_are_named_from_their_part_codes():
    orin, nano = read_cpu(ORIN), read_cpu(NANO)
    assert str(orin) == "Arm Cortex-A78AE (NEON, int8 dot product)"
    assert str(nano) == "Arm Cortex-A57 (NEON, no int8 dot product)"
    assert (orin.arch, orin.int8_dot, nano.int8_dot) == ("arm", True, False)


def test_unknown_cpuinfo_falls_back_to_the_platform_name():
    cpu = read_cpu("")
    assert cpu.arch == "" and cpu.int8_dot is None and str(cpu) == cpu.name and cpu.name


def test_doctor_says_when_int8_has_no_fast_path():
    fast, slow, unknown = cpu_check(read_cpu(XEON)), cpu_check(read_cpu(EPYC)), cpu_check(read_cpu(""))
    assert fast.ok and not fast.fix and "VNNI" in fast.detail
    assert not slow.ok and "no VNNI" in slow.detail and "edge bench" in slow.fix
    assert not unknown.ok and unknown.fix


def test_this_machine_is_described():
    assert cpu_name().endswith("VNNI)") or cpu_name().endswith("dot product)")  # Linux lists the flags
