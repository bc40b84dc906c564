"""What the minimal Debian root needs to boot on its own: host name, fstab, network, kernel and initramfs.

A user's base image (Raspberry Pi OS, a Jetson root) has all of this already and keeps its own;
only the image built without ``--base`` gets it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from board import initramfs
from board.host import run

log = logging.getLogger(__name__)

HOSTNAME = "edgewatch"
ROOT_LABEL = "edgewatch-root"
NETWORK = "[Match]\nType=ether\n\n[Network]\nDHCP=ipv4\n"
# Emulation tests only: a root shell on the serial console, so a test can run commands in the guest.
AUTOLOGIN = ("[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear --keep-baud "
             "115200,57600,38400,9600 %I $TERM\n")


def configure(root: Path, serial_autologin: bool) -> None:
    (root / "etc/hostname").write_text(HOSTNAME + "\n", encoding="utf-8")
    (root / "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n::1\tlocalhost\n", encoding="utf-8")
    (root / "etc/fstab").write_text(f"LABEL={ROOT_LABEL}\t/\text4\tdefaults,errors=remount-ro\t0\t1\n",
                                    encoding="utf-8")
    network = root / "etc/systemd/network/20-wired.network"
    network.parent.mkdir(parents=True, exist_ok=True)
    network.write_text(NETWORK, encoding="utf-8")
    run(["systemctl", f"--root={root}", "enable", "systemd-networkd.service"], "enable systemd-networkd in the image")
    if serial_autologin:
        dropin = root / "etc/systemd/system/serial-getty@ttyAMA0.service.d/autologin.conf"
        dropin.parent.mkdir(parents=True, exist_ok=True)
        dropin.write_text(AUTOLOGIN, encoding="utf-8")
        log.warning("the image logs root in on the serial console without a password: for emulation tests only")


def boot_files(root: Path, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Kernel and a host-built initramfs, inside the root (/boot) and beside the image for qemu's -kernel/-initrd."""
    version = initramfs.kernel_version(root)
    initrd = initramfs.build(root, root / f"boot/initrd.img-{version}")
    kernel = out_dir / f"{stem}.vmlinuz"
    initrd_copy = out_dir / f"{stem}.initrd"
    shutil.copyfile(root / f"boot/vmlinuz-{version}", kernel)
    shutil.copyfile(initrd, initrd_copy)
    return kernel, initrd_copy
