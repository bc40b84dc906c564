"""U-Boot for the emulated A/B image: the boot script and the environment file both sides share.

qemu_arm64's U-Boot (Debian's ``u-boot-qemu``) keeps its own environment in flash, which Linux
cannot reach on ``-M virt``; so the A/B variables live in ``uboot.env`` on the FAT boot
partition instead: the boot script imports and exports them with ``env import/export -c`` and
``fatwrite``, and RAUC on Linux reads and writes the same file with ``fw_printenv``/``fw_setenv``
(libubootenv takes a plain file as its device). The format is U-Boot's binary environment: a
CRC32, then ``name=value`` strings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from board.host import run
from board.qemu import board_machine, loopback_port
from board.rauc import contrib_file

log = logging.getLogger(__name__)

FIRMWARE = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")  # qemu's -bios
ENV_FILE = "uboot.env"
ENV_SIZE = 0x4000
BOOT_TRIES = 3
BOOT_MOUNT = "/boot/firmware"  # the FAT boot partition in the running system


def fw_env_config(env_path: str = f"{BOOT_MOUNT}/{ENV_FILE}") -> str:
    """/etc/fw_env.config: libubootenv's device line (a file, offset 0, the environment's size)."""
    return f"# device offset size (U-Boot's A/B variables, see the boot script)\n{env_path} 0x0 {ENV_SIZE:#x}\n"


def initial_env(order: str = "A B") -> str:
    return f"BOOT_ORDER={order}\nBOOT_A_LEFT={BOOT_TRIES}\nBOOT_B_LEFT={BOOT_TRIES}\n"


def write_env(out: Path, text: str) -> Path:
    """``text`` (name=value lines) as a binary U-Boot environment of ENV_SIZE bytes (mkenvimage)."""
    source = out.with_name(out.name + ".txt")
    source.write_text(text, encoding="utf-8")
    try:
        run(["mkenvimage", "-s", hex(ENV_SIZE), "-p", "0", "-o", out, source], f"write the U-Boot environment {out}")
    finally:
        source.unlink()
    return out


def write_boot_script(out: Path) -> Path:
    """contrib/rauc/boot.cmd compiled for U-Boot's ``source`` (mkimage -T script) as ``out`` (boot.scr)."""
    text = contrib_file("boot.cmd").replace("@ENV_SIZE@", hex(ENV_SIZE))
    source = out.with_name("boot.cmd")
    source.write_text(text, encoding="utf-8")
    run(["mkimage", "-q", "-A", "arm64", "-O", "linux", "-T", "script", "-C", "none", "-n", "edgewatch A/B",
         "-d", source, out], "compile the U-Boot boot script")
    return out


@dataclass(frozen=True)
class UBootMachine:
    """The A/B disk under qemu with U-Boot as firmware: the boot script picks the slot and loads its kernel."""

    image: Path
    port: int  # forwarded from 127.0.0.1 on the host to the same port in the guest
    cpus: int = 2
    memory_mib: int = 1024
    media: Path | None = None  # a second disk, read-only (/dev/vdb): e.g. a file system holding update bundles

    def command(self) -> list[str]:
        media = ["-drive", f"file={self.media},format=raw,if=virtio,readonly=on"] if self.media else []
        return [*board_machine(self.cpus, self.memory_mib), "-bios", str(FIRMWARE),
                "-drive", f"file={self.image},format=raw,if=virtio", *media, *loopback_port(self.port)]
