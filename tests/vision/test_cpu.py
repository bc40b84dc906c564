"""Which CPUs saturate full-range INT8 (x86 with AVX2 and no VNNI), read from /proc/cpuinfo."""

from __future__ import annotations

import pytest

from edge.vision import cpu

AVX2_ONLY = ["processor\t: 0", "model name\t: AMD EPYC 7B12", "flags\t\t: fpu sse2 avx avx2 fma"]
VNNI = ["model name\t: Intel Xeon", "flags\t\t: fpu avx2 avx512f avx512_vnni"]
PI5 = ["processor\t: 0", "Features\t: fp asimd evtstrm crc32 cpuid asimdhp asimddp", "CPU part\t: 0xd0b"]


@pytest.mark.parametrize(("machine", "lines", "saturates"), [
    ("x86_64", AVX2_ONLY, True),
    ("x86_64", VNNI, False),
    ("aarch64", PI5, False),
    ("x86_64", [], False),  # unreadable /proc/cpuinfo: no claim
])
def test_int8_may_saturate(monkeypatch: pytest.MonkeyPatch, machine: str, lines: list[str], saturates: bool) -> None:
    monkeypatch.setattr(cpu, "_cpuinfo_lines", lambda: lines)
    monkeypatch.setattr(cpu.platform, "machine", lambda: machine)
    assert cpu.int8_may_saturate() is saturates


def test_model_name_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "_cpuinfo_lines", lambda: AVX2_ONLY)
    assert cpu.model_name() == "AMD EPYC 7B12"
    assert {"avx2", "fma"} <= cpu.flags() and "avx512_vnni" not in cpu.flags()
    monkeypatch.setattr(cpu, "_cpuinfo_lines", lambda: PI5)
    assert "asimddp" in cpu.flags()
