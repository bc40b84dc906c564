"""What ``rauc status --detailed --output-format=json`` prints (RAUC 1.8's shape), for tests that read it."""

from __future__ import annotations

from typing import Any

Install = tuple[str, str, str]  # bundle version, installed at, activated at (RAUC's ISO 8601 text)


def rauc_status(a: str, b: str, booted: str = "B", installed: str = "2026-12-07T10:00:00Z",
                version: str = "1.1.0", installs: dict[str, Install] | None = None) -> dict[str, Any]:
    """Slots A and B with boot status ``a`` and ``b``. ``installs`` gives each slot's last RAUC install;
    by default the slot not booted holds one (``version``, installed and activated at ``installed``)
    and the booted one only the first flash, as after one update."""
    records = installs if installs is not None else {"AB".replace(booted, ""): (version, installed, installed)}

    def slot(index: int, name: str, status: str) -> dict[str, Any]:
        detail: dict[str, Any] = {"status": "ok"}
        if name in records:
            version, at, activated = records[name]
            detail |= {"bundle": {"compatible": "edgewatch-qemu-arm64", "version": version},
                       "installed": {"timestamp": at, "count": 1}, "activated": {"timestamp": activated, "count": 1}}
        return {f"rootfs.{index}": {"class": "rootfs", "device": f"/dev/vda{index + 2}", "type": "ext4",
                                    "bootname": name, "state": "booted" if name == booted else "inactive",
                                    "boot_status": status, "slot_status": detail}}

    return {"compatible": "edgewatch-qemu-arm64", "booted": booted, "boot_primary": f"rootfs.{'AB'.index(booted)}",
            "slots": [slot(0, "A", a), slot(1, "B", b)]}
