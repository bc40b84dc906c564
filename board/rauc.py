"""RAUC in an A/B root: system.conf, keyring, fw_env.config, the health gate, and the data partition.

Both slots are written from the same root folder, so everything here is slot-independent: the
booted slot comes from ``rauc.slot=`` on the kernel command line, the partitions by label. The
data partition holds what must survive an update (edgewatch's state, config overrides, the
journal) and is mounted the same way in both slots.
"""

from __future__ import annotations

import logging
import os
import shutil
from importlib import resources
from pathlib import Path

from board.host import BuildError, run

log = logging.getLogger(__name__)

COMPATIBLE = "edgewatch-qemu-arm64"  # a bundle for another board type is refused by RAUC
BOOT_LABEL, DATA_LABEL = "EW-BOOT", "edgewatch-data"
SLOTS = {"A": 2, "B": 3}  # slot -> partition number on the disk
LIB_DIR = Path("usr/lib/edgewatch/rauc")  # backends and the health gate on the board
GATE_UNIT = "edgewatch-health-gate.service"
DATA_MOUNT = "/data"
# on the data partition -> where both slots see it (bind mounts)
PERSISTENT = {"edgewatch": "/var/lib/edgewatch", "edgewatch-config": "/etc/edgewatch/local",
              "journal": "/var/log/journal"}


def contrib_file(name: str) -> str:
    """A file of contrib/rauc as packaged with the builder."""
    return resources.files("board").joinpath("contrib_rauc", name).read_text(encoding="utf-8")


def system_conf(bootloader: str = "uboot", disk: str = "/dev/vda") -> str:
    """/etc/rauc/system.conf: two root slots (A on partition 2, B on 3 of ``disk``) and the bootloader's backend.

    Slots are named by partition, not by label: RAUC writes a bundle's ext4 image whole, label included,
    so after an update both slots would carry the same label."""
    backend = {"uboot": "", "tryboot": f"bootloader-custom-backend=/{LIB_DIR}/tryboot-backend\n",
               "nvbootctrl": f"bootloader-custom-backend=/{LIB_DIR}/nvbootctrl-backend\n"}
    if bootloader not in backend:
        raise BuildError(f"unknown bootloader {bootloader!r}: expected one of {', '.join(backend)}")
    kind = "uboot" if bootloader == "uboot" else "custom"
    slots = "".join(f"\n[slot.rootfs.{index}]\ndevice={disk}{number}\ntype=ext4\nbootname={name}\n"
                    for index, (name, number) in enumerate(SLOTS.items()))
    return (f"[system]\ncompatible={COMPATIBLE}\nbootloader={kind}\n{backend[bootloader]}"
            "bundle-formats=-plain\nstatusfile=/data/rauc.status\n\n"
            "[keyring]\npath=/etc/rauc/keyring.pem\n" + slots)


def fstab() -> str:
    # the root is the slot the bootloader chose (root= on the command line): no device here, so no fsck unit
    lines = ["/dev/root\t/\text4\tdefaults,errors=remount-ro\t0\t0",
             f"LABEL={BOOT_LABEL}\t/boot/firmware\tvfat\tdefaults,nofail\t0\t0",
             f"LABEL={DATA_LABEL}\t{DATA_MOUNT}\text4\tdefaults,errors=remount-ro\t0\t2"]
    lines += [f"{DATA_MOUNT}/{source}\t{target}\tnone\tbind,x-systemd.requires-mounts-for={DATA_MOUNT}\t0\t0"
              for source, target in PERSISTENT.items()]
    return "\n".join(lines) + "\n"


def configure(root: Path, keyring: Path, fw_env_config: str) -> None:
    """RAUC, fw_env.config, fstab, the health gate (enabled) and the backends into ``root``."""
    if not keyring.is_file():
        raise BuildError(f"--keyring {keyring}: no such file (the CA certificate bundles are checked against)")
    if not (root / "usr/bin/rauc").exists():
        raise BuildError(f"{root} has no /usr/bin/rauc: the A/B root needs Debian's rauc package")
    rauc_dir = root / "etc/rauc"
    rauc_dir.mkdir(parents=True, exist_ok=True)
    (rauc_dir / "system.conf").write_text(system_conf(), encoding="utf-8")
    shutil.copyfile(keyring, rauc_dir / "keyring.pem")
    (root / "etc/fw_env.config").write_text(fw_env_config, encoding="utf-8")
    (root / "etc/fstab").write_text(fstab(), encoding="utf-8")
    for target in (DATA_MOUNT, "/boot/firmware", *PERSISTENT.values()):
        (root / target.lstrip("/")).mkdir(parents=True, exist_ok=True)
    lib = root / LIB_DIR
    lib.mkdir(parents=True, exist_ok=True)
    for name in ("tryboot-backend", "nvbootctrl-backend", "health-gate"):
        (lib / name).write_text(contrib_file(name), encoding="utf-8")
        (lib / name).chmod(0o755)
    (root / "etc/systemd/system" / GATE_UNIT).write_text(contrib_file(GATE_UNIT), encoding="utf-8")
    run(["systemctl", f"--root={root}", "enable", GATE_UNIT], "enable the health gate in the image")


def data_tree(root: Path, data: Path) -> Path:
    """The data partition's first content: the persistent folders moved out of ``root`` (owners kept)."""
    data.mkdir(parents=True, exist_ok=True)
    for source, target in PERSISTENT.items():
        inside = root / target.lstrip("/")
        inside.mkdir(parents=True, exist_ok=True)
        before = inside.stat()
        shutil.move(inside, data / source)
        inside.mkdir()  # the empty mount point, as it was
        for path in (inside, data / source):  # a move across file systems copies without owners
            os.chown(path, before.st_uid, before.st_gid)
            path.chmod(before.st_mode & 0o7777)
    return data
