"""The A/B disk: boot partition (FAT), root file systems A and B, and a persistent data partition.

Like :mod:`board.disk`, every file system is written from a folder on the host (``mkfs.ext4 -d``,
mtools for FAT), without loop devices or mounts. Slot B starts as a byte copy of slot A, so the
board can fall back to it before the first update; each slot gets room for a larger next version.

    p1  FAT   EW-BOOT         boot.scr, uboot.env (the A/B variables)
    p2  ext4  edgewatch-root  slot A (kernel and initramfs in /boot)
    p3  ext4  edgewatch-root  slot B
    p4  ext4  edgewatch-data  /var/lib/edgewatch, /etc/edgewatch/local, /var/log/journal
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from board import rauc, uboot
from board.disk import FS_OVERHEAD, MIB, PARTITION_START, tree_bytes
from board.host import BuildError, require, run

log = logging.getLogger(__name__)

BOOT_BYTES = 16 * MIB
SLOT_HEADROOM = 1.25  # a slot holds a next version a quarter larger than this one
SLOT_FREE_BYTES = 256 * MIB
# history (capped at 0.75 GiB by default: doctor fails a state folder with less room), frames and the journal;
# the image is sparse, so the room costs nothing until used
DATA_FREE_BYTES = 1024 * MIB


@dataclass(frozen=True)
class Partition:
    image: Path  # the file system, written beside the disk
    mbr_type: str  # sfdisk's type: c FAT32 LBA, 83 Linux
    bootable: bool = False


def _mib(size: float) -> int:
    return (int(size) + MIB - 1) // MIB * MIB


def ext4(folder: Path, out: Path, label: str, size: int) -> Path:
    run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", folder, out, f"{size // 1024}k"],
        f"write the ext4 file system {out}")
    return out


def fat(files: list[Path], out: Path, label: str) -> Path:
    with out.open("wb") as image:
        image.truncate(BOOT_BYTES)
    run(["mkfs.vfat", "-n", label, out], f"write the FAT file system {out}")
    run(["mcopy", "-i", out, *files, "::"], f"copy {', '.join(f.name for f in files)} into {out}")
    return out


def boot_files(root: Path) -> None:
    """/boot/vmlinuz and /boot/initrd.img at fixed names (hard links) for the boot script to load."""
    boot = root / "boot"
    kernels = sorted(boot.glob("vmlinuz-*"))
    initrds = sorted(boot.glob("initrd.img-*"))
    if len(kernels) != 1 or len(initrds) != 1:
        raise BuildError(f"{boot} must hold one kernel and one initramfs, found {len(kernels)} and {len(initrds)}")
    for source, name in ((kernels[0], "vmlinuz"), (initrds[0], "initrd.img")):
        (boot / name).unlink(missing_ok=True)
        os.link(source, boot / name)


def make(root: Path, out: Path) -> Path:
    """Write ``out`` from ``root`` (edgewatch and RAUC already configured there); the persistent folders
    move to the data partition."""
    require("mkfs.ext4", "mkfs.vfat", "mcopy", "sfdisk", "mkimage", "mkenvimage")
    work = out.with_name(out.name + ".parts")
    work.mkdir(exist_ok=True)
    try:
        boot_files(root)
        data = rauc.data_tree(root, work / "data")
        slot_size = _mib(tree_bytes(root) * FS_OVERHEAD * SLOT_HEADROOM + SLOT_FREE_BYTES)
        slot_a = ext4(root, work / "slot-a.ext4", "edgewatch-root", slot_size)
        script = uboot.write_boot_script(work / "boot.scr")
        env = uboot.write_env(work / uboot.ENV_FILE, uboot.initial_env())
        parts = [Partition(fat([script, env], work / "boot.vfat", rauc.BOOT_LABEL), "c", bootable=True),
                 Partition(slot_a, "83"), Partition(slot_a, "83"),
                 Partition(ext4(data, work / "data.ext4", rauc.DATA_LABEL,
                                _mib(tree_bytes(data) * FS_OVERHEAD + DATA_FREE_BYTES)), "83")]
        assemble(parts, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def assemble(parts: list[Partition], out: Path) -> Path:
    """An MBR disk holding ``parts`` in order, each 1 MiB aligned; written beside ``out``, then renamed."""
    partial = out.with_name(out.name + ".partial")
    starts, table, offset = [], ["label: dos"], PARTITION_START
    for part in parts:
        size = _mib(part.image.stat().st_size)
        starts.append(offset)
        table.append(f"start={offset // 512}, size={size // 512}, type={part.mbr_type}"
                     + (", bootable" if part.bootable else ""))
        offset += size
    with partial.open("wb") as disk:
        disk.truncate(offset)
    run(["sfdisk", "--quiet", partial], "write the partition table", stdin="\n".join(table) + "\n")
    for part, start in zip(parts, starts, strict=True):
        run(["dd", f"if={part.image}", f"of={partial}", "bs=4M", f"seek={start}", "oflag=seek_bytes",
             "conv=notrunc,sparse", "status=none"], f"copy {part.image.name} into the disk image")
    os.replace(partial, out)
    log.info("A/B disk image %s: %.0f MiB in %d partitions", out, out.stat().st_size / MIB, len(parts))
    return out
