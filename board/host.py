"""Host programs the image builder runs, behind one function that turns a failure into one sentence."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from edge.errors import EdgewatchError

log = logging.getLogger(__name__)

CACHE_DIR = Path("/var/cache/edgewatch-board")  # downloads and root file systems reused across builds

# program -> the Debian package that provides it, for the error message
PACKAGES = {
    "mmdebstrap": "mmdebstrap",
    "mkfs.ext4": "e2fsprogs",
    "sfdisk": "fdisk",
    "e2fsck": "e2fsprogs",
    "resize2fs": "e2fsprogs",
    "qemu-system-aarch64": "qemu-system-arm",
    "systemctl": "systemd",
    "systemd-sysusers": "systemd",
    "losetup": "mount",
    "xz": "xz-utils",
    "zstd": "zstd",
    "make": "make",
    "aarch64-linux-gnu-gcc-12": "gcc-aarch64-linux-gnu",
    "gcc-12": "gcc-12",
    "dpkg-deb": "dpkg",
    "rauc": "rauc",
    "mksquashfs": "squashfs-tools",
    "mkimage": "u-boot-tools",
    "mkenvimage": "u-boot-tools",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
}


class BuildError(EdgewatchError):
    """A step of building or booting an image failed; the message names the step and the cause."""


def require(*programs: str) -> None:
    """Fail early, naming every missing program and the package that brings it."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        hint = " ".join(sorted({PACKAGES.get(p, p) for p in missing}))
        raise BuildError(f"missing host program(s) {', '.join(missing)}: install them with 'apt-get install {hint}'")


def run(command: Sequence[str | Path], what: str, stdin: str | None = None, ok: tuple[int, ...] = (0,)) -> str:
    """Run ``command`` (``stdin`` fed to it); its stdout on success, else a BuildError naming ``what``."""
    argv = [str(part) for part in command]
    log.debug("running %s", " ".join(argv))
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BuildError(f"cannot {what}: {argv[0]}: {exc}") from exc
    if done.returncode not in ok:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BuildError(f"cannot {what}: '{argv[0]}' exited {done.returncode}: {' | '.join(tail)}")
    return done.stdout
