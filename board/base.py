"""``--base``: put edgewatch into the user's own arm64 image (Raspberry Pi OS Lite, a Jetson root).

The base keeps its boot partition, kernel, firmware and first-boot tools: Raspberry Pi Imager's
customisation (host name, user, Wi-Fi, SSH) writes to the boot partition and runs at first boot
as before. Only the root partition changes: it is grown by what edgewatch needs (the base's own
first-boot resize still fills the card afterwards), checked, mounted through a loop device, and
edgewatch is injected there as into the minimal Debian root.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from board.host import BuildError, require, run

log = logging.getLogger(__name__)

SECTOR = 512
LINUX_TYPES = {"83", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}  # MBR and GPT "Linux filesystem"


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # sectors
    size: int  # sectors


def root_partition(image: Path) -> tuple[Partition, bool]:
    """The base's root: its last Linux partition; and whether it is the disk's last partition (growable)."""
    require("sfdisk")
    table = json.loads(run(["sfdisk", "--json", image], f"read the partition table of {image}"))["partitiontable"]
    partitions = table.get("partitions", [])
    linux = [p for p in partitions if str(p.get("type", "")).upper() in LINUX_TYPES]
    if not linux:
        raise BuildError(f"{image} has no Linux partition to install into (types: "
                         f"{', '.join(str(p.get('type')) for p in partitions) or 'no partitions'})")
    chosen = linux[-1]
    number = partitions.index(chosen) + 1
    last = max(partitions, key=lambda p: int(p["start"]))
    return Partition(number, int(chosen["start"]), int(chosen["size"])), chosen is last


def grow(image: Path, extra_bytes: int) -> Partition:
    """Append ``extra_bytes`` to the disk and give them to the root partition and its ext4 file system."""
    require("e2fsck", "resize2fs")
    partition, last = root_partition(image)
    if not last:
        raise BuildError(f"the root partition of {image} is not the last one: it cannot grow; free space in it first")
    with image.open("r+b") as disk:
        disk.truncate(image.stat().st_size + extra_bytes)
    if json.loads(run(["sfdisk", "--json", image], "read the partition table"))["partitiontable"]["label"] == "gpt":
        run(["sfdisk", "--relocate", "gpt-bak-std", image], "move the backup GPT to the new end of the disk")
    run(["sfdisk", "--no-reread", "-N", str(partition.number), image], "grow the root partition", stdin=", +\n")
    grown, _ = root_partition(image)
    with loop_device(image, grown) as device:
        # exit status 1: errors were found and corrected, which leaves a file system resize2fs takes
        run(["e2fsck", "-f", "-y", device], f"check the root file system of {image}", ok=(0, 1))
        run(["resize2fs", device], "grow the root file system")
    return grown


@contextmanager
def loop_device(image: Path, partition: Partition) -> Iterator[str]:
    require("losetup")
    device = run(["losetup", "--find", "--show", "--offset", str(partition.start * SECTOR),
                  "--sizelimit", str(partition.size * SECTOR), image], "attach the root partition to a loop device")
    try:
        yield device.strip()
    finally:
        subprocess.run(["losetup", "--detach", device.strip()], check=False)


@contextmanager
def mounted_root(image: Path, partition: Partition) -> Iterator[Path]:
    """The base's root partition mounted read-write in a temporary folder."""
    with loop_device(image, partition) as device:
        where = Path(tempfile.mkdtemp(prefix="edgewatch-base-"))
        run(["mount", "-t", "ext4", device, where], f"mount the root partition of {image}")
        try:
            yield where
        finally:
            subprocess.run(["umount", str(where)], check=False)
            where.rmdir()


def copy_image(base: Path, out: Path) -> None:
    if not base.is_file():
        raise BuildError(f"--base {base}: no such image file (give a .img; decompress .xz images first)")
    partial = out.with_name(out.name + ".partial")
    run(["cp", "--sparse=always", base, partial], f"copy {base}")
    shutil.move(partial, out)
