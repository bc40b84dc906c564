"""A tiny initramfs assembled on the host: busybox, the few modules that reach the root disk, an /init.

Debian's initramfs-tools would run hundreds of arm64 programs under qemu-user (about 20 minutes
on two cores). The root disk of ``qemu-system-aarch64 -M virt`` needs only the virtio transport,
the virtio block driver and ext4, so those modules (and what they depend on, from the kernel's
own modules.dep) are copied next to a static busybox; ``/init`` loads them in order, mounts the
root read-only and hands over to systemd, which remounts it from /etc/fstab.
"""

from __future__ import annotations

import gzip
import io
import logging
import lzma
import os
import stat
from pathlib import Path

from board.host import BuildError

log = logging.getLogger(__name__)

# What the root disk needs under -M virt; crc32c is asked for by ext4 at mount, not listed as a dependency.
ROOT_MODULES = ("virtio_mmio", "virtio_pci", "virtio_blk", "crc32c_generic", "ext4")

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /modules.load); do
  insmod "/modules/$module" || echo "initramfs: cannot load $module"
done
root=/dev/vda1
for arg in $(cat /proc/cmdline); do
  case "$arg" in root=*) root="${arg#root=}" ;; esac
done
tries=0
while [ $tries -lt 300 ]; do
  case "$root" in LABEL=*|UUID=*) device=$(findfs "$root" 2>/dev/null) ;; *) device="$root" ;; esac
  [ -b "$device" ] && break
  tries=$((tries + 1)); sleep 0.1
done
mkdir -p /newroot
if ! mount -o ro -t ext4 "$device" /newroot; then
  echo "initramfs: cannot mount the root file system $root; here is a shell"
  exec sh
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
"""


def kernel_version(root: Path) -> str:
    """The one kernel installed in ``root`` (its /lib/modules folder)."""
    versions = sorted(p.name for p in (root / "lib/modules").glob("*") if (p / "modules.dep").is_file())
    if len(versions) != 1:
        raise BuildError(f"expected one kernel with modules.dep under {root}/lib/modules, found {versions or 'none'}")
    return versions[0]


def module_order(modules_dep: str, wanted: tuple[str, ...]) -> list[str]:
    """Module files (relative paths) for ``wanted`` and their dependencies, each after what it needs.

    Names missing from modules.dep are built into the kernel (or absent) and are skipped.
    """
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        path, _, rest = line.partition(":")
        if not path:
            continue
        deps[path] = rest.split()
        name = Path(path).name.split(".ko")[0].replace("-", "_")
        by_name[name] = path
    ordered: list[str] = []

    def visit(path: str) -> None:
        if path in ordered:
            return
        for dependency in reversed(deps.get(path, [])):  # modules.dep lists the deepest last
            visit(dependency)
        ordered.append(path)

    for name in wanted:
        if name in by_name:
            visit(by_name[name])
    return ordered


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        raise BuildError(f"{path}: zstd-compressed modules are not supported; use a kernel with xz or plain modules")
    return data


def _newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A cpio 'newc' archive of (name, mode, content) entries, owned by root (what the kernel unpacks)."""
    out = io.BytesIO()
    for inode, (name, mode, content) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        fields = (inode, mode, 0, 0, 1, 0, len(content), 0, 0, 0, 0, len(encoded), 0)
        out.write(b"070701" + b"".join(b"%08X" % value for value in fields) + encoded)
        out.write(b"\0" * (-(110 + len(encoded)) % 4))
        out.write(content)
        out.write(b"\0" * (-len(content) % 4))
    return out.getvalue()


def build(root: Path, out: Path, wanted: tuple[str, ...] = ROOT_MODULES) -> Path:
    """Write ``out`` (gzip'd cpio) for the kernel in ``root``, using ``root``'s static busybox."""
    version = kernel_version(root)
    module_dir = root / "lib/modules" / version
    busybox = root / "bin/busybox"
    if not busybox.is_file():
        raise BuildError(f"{root} has no /bin/busybox: the image root needs the busybox-static package")
    ordered = module_order((module_dir / "modules.dep").read_text(encoding="utf-8"), wanted)
    directory = stat.S_IFDIR | 0o755
    entries: list[tuple[str, int, bytes]] = [(d, directory, b"") for d in ("bin", "dev", "proc", "sys", "modules")]
    entries.append(("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes()))
    names = []
    for relative in ordered:
        name = Path(relative).name.split(".ko")[0] + ".ko"
        entries.append((f"modules/{name}", stat.S_IFREG | 0o644, _module_bytes(module_dir / relative)))
        names.append(name)
    entries.append(("modules.load", stat.S_IFREG | 0o644, ("\n".join(names) + "\n").encode()))
    entries.append(("init", stat.S_IFREG | 0o755, INIT.encode()))
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(gzip.compress(_newc(entries), compresslevel=6, mtime=0))
    os.replace(partial, out)
    log.info("initramfs %s: kernel %s, modules %s", out, version, ", ".join(names) or "none (all built in)")
    return out
