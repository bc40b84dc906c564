"""With no base image: a minimal Debian arm64 root file system from Debian's packages (mmdebstrap).

The result is cached as a tarball keyed by everything that shapes it, so a second build on the
same machine skips the download and the qemu-user package scripts. Debian's kernel comes with
it, but its initramfs hook is diverted while packages install: generating one under qemu-user
takes about 20 minutes, and :mod:`board.initramfs` assembles a tiny one on the host instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from board.host import CACHE_DIR, require, run

log = logging.getLogger(__name__)

SUITE = "bookworm"
# ca-certificates: without a CA bundle the cloud client cannot even be built (TLS context), found on arm64;
# alsa-utils (arecord) and python3-spidev (no aarch64 wheel on PyPI) for the sound-card and SPI readers;
# dbus: systemd-run (doctor --as-service) talks to systemd over it; i2c-tools to look at an I2C bus on the board;
# rauc, rauc-service (D-Bus activated, no unit enabled) and libubootenv-tool (fw_setenv) for A/B images: one
# root serves both kinds of image, so a machine that built one builds the other without a second mmdebstrap
PACKAGES = ("systemd-sysv", "udev", "python3", "ca-certificates", "linux-image-arm64", "busybox-static", "kmod",
            "alsa-utils", "python3-spidev", "dbus", "i2c-tools", "rauc", "rauc-service", "libubootenv-tool")
_DIVERT = ('chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs'
           ' && ln -s /bin/true "$1/usr/sbin/update-initramfs"')
_UNDIVERT = ('rm "$1/usr/sbin/update-initramfs"'
             ' && chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs')



def _command(out: Path) -> list[str]:
    return ["mmdebstrap", "--arch=arm64", "--variant=minbase", "--format=tar", f"--include={','.join(PACKAGES)}",
            f"--essential-hook={_DIVERT}", f"--customize-hook={_UNDIVERT}", SUITE, str(out)]


def cached_tarball(cache: Path = CACHE_DIR) -> Path:
    """The root file system as a tarball, built with mmdebstrap unless this machine has it already."""
    key = hashlib.sha256(" ".join(_command(Path("-"))).encode()).hexdigest()[:12]
    tarball = cache / f"debian-{SUITE}-arm64-{key}.tar"
    if tarball.is_file():
        log.info("root file system from the cache: %s", tarball)
        return tarball
    require("mmdebstrap")
    cache.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(f"{tarball.name}.{os.getpid()}.partial")  # two builds at once do not collide
    start = time.monotonic()
    log.info("building a Debian %s arm64 root with mmdebstrap (a few minutes; cached in %s)", SUITE, cache)
    try:
        run(_command(partial), f"build a Debian {SUITE} arm64 root file system (mmdebstrap; needs "
            "qemu-user-static, binfmt-support and 'update-binfmts --enable qemu-aarch64')")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, tarball)
    log.info("root file system built in %.0f s", time.monotonic() - start)
    return tarball


def extract(tarball: Path, dest: Path) -> Path:
    """Unpack ``tarball`` into the empty folder ``dest`` keeping owners and modes (run as root)."""
    dest.mkdir(parents=True, exist_ok=True)
    run(["tar", "--extract", "--numeric-owner", "--same-permissions", "--file", tarball, "--directory", dest],
        f"unpack {tarball}")
    return dest
