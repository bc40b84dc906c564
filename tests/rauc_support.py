"""What ``rauc status --detailed --output-format=json`` prints (RAUC 1.8's shape), for tests that read it."""

from __future__ import annotations

from typing import Any


def rauc_status(a: str, b: str, booted: str = "B", installed: str = "2026-12-07T10:00:00Z",
                version: str = "1.1.0") -> dict[str, Any]:
    """Slots A and B with boot status ``a`` and ``b``; the one not booted holds the install
    (``installed``, ``version``), as after an update, the booted one RAUC's record of the first flash."""
    def slot(index: int, name: str, status: str) -> dict[str, Any]:
        detail: dict[str, Any] = {"status": "ok"}
        if name != booted:
            detail |= {"bundle": {"compatible": "edgewatch-qemu-arm64", "version": version},
                       "installed": {"timestamp": installed, "count": 1}}
        return {f"rootfs.{index}": {"class": "rootfs", "device": f"/dev/vda{index + 2}", "type": "ext4",
                                    "bootname": name, "state": "booted" if name == booted else "inactive",
                                    "boot_status": status, "slot_status": detail}}

    return {"compatible": "edgewatch-qemu-arm64", "booted": booted, "boot_primary": f"rootfs.{'AB'.index(booted)}",
            "slots": [slot(0, "A", a), slot(1, "B", b)]}
