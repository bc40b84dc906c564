"""A flashable disk image from a root folder, without loop devices or mounts.

``mkfs.ext4 -d`` writes the file system straight from the folder (owners and modes kept), and
the partition is copied into a disk image with an MBR table behind a 1 MiB gap, the layout
Raspberry Pi Imager, ``dd`` and ``qemu -drive`` all take.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from board.host import BuildError, require, run

log = logging.getLogger(__name__)

MIB = 1024 * 1024
PARTITION_START = MIB
FREE_BYTES = 512 * MIB  # room for history, frames and the journal before a first-boot grow
FS_OVERHEAD = 1.15  # ext4 metadata and inode tables on top of the files


def tree_bytes(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                total += os.lstat(path).st_blocks * 512
    return total


def make(root: Path, out: Path, label: str) -> Path:
    """Write ``out``: an MBR disk with one bootable ext4 partition holding ``root``."""
    require("mkfs.ext4", "sfdisk")
    size = int(tree_bytes(root) * FS_OVERHEAD) + FREE_BYTES
    size = (size + MIB - 1) // MIB * MIB
    partition = out.with_name(out.name + ".root.partial")
    run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", root, partition, f"{size // 1024}k"],
        f"write the ext4 file system for {root}")
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as disk:
        disk.truncate(PARTITION_START + size)
    table = f"label: dos\nstart={PARTITION_START // 512}, type=83, bootable\n"
    run(["sfdisk", "--quiet", partial], "write the partition table", stdin=table)
    run(["dd", f"if={partition}", f"of={partial}", "bs=4M", f"seek={PARTITION_START}", "oflag=seek_bytes",
         "conv=notrunc,sparse", "status=none"], "copy the root partition into the disk image")
    partition.unlink()
    os.replace(partial, out)
    log.info("disk image %s: %.0f MiB (root partition %.0f MiB)", out, out.stat().st_size / MIB, size / MIB)
    return out



COMPRESSORS = {"xz": ("xz", "-T0", "-6"), "zstd": ("zstd", "-T0", "-10", "-q")}  # both read by Raspberry Pi Imager


def compress(image: Path, how: str) -> Path:
    """``image`` compressed beside it (``.img.xz`` / ``.img.zst``), the original removed."""
    program, *options = COMPRESSORS[how]
    require(program)
    out = image.with_name(image.name + (".xz" if how == "xz" else ".zst"))
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as sink:
        done = subprocess.run([program, *options, "-c", str(image)], stdout=sink, stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BuildError(f"cannot compress {image} with {program}: {done.stderr.decode(errors='replace').strip()}")
    os.replace(partial, out)
    image.unlink()
    log.info("compressed %s: %.0f MiB", out, out.stat().st_size / MIB)
    return out
