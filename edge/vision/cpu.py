"""What this CPU is and which of its integer dot-product instructions INT8 kernels use."""

from __future__ import annotations

import platform
from pathlib import Path

VNNI_FLAGS = ("avx512_vnni", "avx_vnni")


def model_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what ``platform`` knows."""
    for line in _cpuinfo_lines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def flags() -> set[str]:
    """The first core's feature flags (x86 ``flags``, ARM ``Features``); empty where unreadable."""
    for line in _cpuinfo_lines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def int8_may_saturate() -> bool:
    """An x86 CPU without VNNI multiplies uint8 by int8 with VPMADDUBSW, whose int16 pair sums
    saturate for full-range int8 weights; ARM and VNNI CPUs do not."""
    found = flags()
    return platform.machine() in ("x86_64", "AMD64") and "avx2" in found and not found & set(VNNI_FLAGS)


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
