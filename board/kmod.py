"""Kernel modules that Debian's arm64 kernel leaves out, built for the image's exact kernel (emulation tests only).

Debian builds its arm64 kernel without ``CONFIG_I2C_STUB``, so the guest has no emulated I2C chip
for the I2C readers to talk to. The module is built out of tree from that kernel version's own
source (``linux-source-X.Y``) against Debian's arm64 headers for the installed ABI, with the
host's build tools (``linux-kbuild-X.Y`` of the same version) and, on an x86 workstation,
``gcc-aarch64-linux-gnu``. Nothing here goes into an image unless the build asks for it
(:attr:`board.build.BuildRequest.test_modules`); a built module is cached per kernel version.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from board.host import CACHE_DIR, BuildError, require, run
from board.initramfs import kernel_version

log = logging.getLogger(__name__)

# Debian's kernel packages: security updates first (where a current stable kernel usually comes from)
POOLS = ("http://deb.debian.org/debian-security/pool/updates/main/l/linux",
         "http://deb.debian.org/debian/pool/main/l/linux")
CROSS_COMPILE = "aarch64-linux-gnu-"


def kernel_package_version(root: Path, abi: str) -> str:
    """The Debian version of ``linux-image-<abi>`` installed in ``root`` (e.g. 6.1.192-3)."""
    status = (root / "var/lib/dpkg/status").read_text(encoding="utf-8")
    for stanza in status.split("\n\n"):
        if re.search(rf"^Package: linux-image-{re.escape(abi)}$", stanza, re.MULTILINE):
            found = re.search(r"^Version: (\S+)$", stanza, re.MULTILINE)
            if found:
                return found[1]
    raise BuildError(f"{root}: no installed package linux-image-{abi} in its dpkg status")


def _download(package: str, version: str, arch: str, folder: Path) -> Path:
    name = f"{package}_{version.split(':')[-1]}_{arch}.deb"
    target = folder / name
    if target.is_file():
        return target
    for pool in POOLS:
        try:
            with urllib.request.urlopen(f"{pool}/{name}", timeout=120) as reply:
                partial = target.with_name(f"{name}.{os.getpid()}.partial")
                with partial.open("wb") as out:
                    shutil.copyfileobj(reply, out)
            os.replace(partial, target)
            return target
        except OSError as exc:
            log.info("%s not in %s: %s", name, pool, exc)
    raise BuildError(f"cannot download {name} from {' or '.join(POOLS)}: the mirror no longer has the image's "
                     "kernel version (rebuild the root file system to get the current one)")


def _source_file(deb: Path, series: str, relative: str, dest: Path) -> Path:
    """One file of the kernel tree in ``linux-source-<series>`` (a deb holding a .tar.xz of the tree)."""
    tree = f"./usr/src/linux-source-{series}.tar.xz"
    unpack = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=unpack.stdout, mode="r|") as outer:
            for member in outer:
                if member.name != tree:
                    continue
                with tarfile.open(fileobj=outer.extractfile(member), mode="r|xz") as inner:
                    for entry in inner:
                        if entry.name == f"linux-source-{series}/{relative}" and entry.isfile():
                            source = inner.extractfile(entry)
                            assert source is not None
                            dest.write_bytes(source.read())
                            return dest
    finally:
        unpack.kill()
        unpack.wait()
    raise BuildError(f"{deb.name} has no {relative}")


def build_module(root: Path, relative: str, cache: Path = CACHE_DIR) -> Path:
    """``relative`` (e.g. ``drivers/i2c/i2c-stub.c``) built as a module for the kernel installed in ``root``."""
    abi = kernel_version(root)  # 6.1.0-57-arm64
    version = kernel_package_version(root, abi)
    series = ".".join(abi.split(".")[:2])  # 6.1
    stem = Path(relative).stem
    built = cache / "modules" / f"{abi}-{version}" / f"{stem}.ko"
    if built.is_file():
        log.info("kernel module from the cache: %s", built)
        return built
    host_arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                               check=True).stdout.strip()
    cross = "" if host_arch == "arm64" else CROSS_COMPILE
    require("make", f"{cross}gcc-12", "dpkg-deb")
    downloads = cache / "kernel-debs"
    downloads.mkdir(parents=True, exist_ok=True)
    debs = [_download(f"linux-headers-{abi}", version, "arm64", downloads),
            _download(f"linux-headers-{abi.rsplit('-', 1)[0]}-common", version, "all", downloads),
            _download(f"linux-kbuild-{series}", version, host_arch, downloads)]
    source = _download(f"linux-source-{series}", version, "all", downloads)
    with tempfile.TemporaryDirectory(prefix="edgewatch-kmod-") as work:
        sysroot, module = Path(work) / "sysroot", Path(work) / "module"
        for deb in debs:
            run(["dpkg-deb", "-x", deb, sysroot], f"unpack {deb.name}")
        headers = sysroot / f"usr/src/linux-headers-{abi}"
        makefile = headers / "Makefile"  # it includes the -common tree by its absolute /usr/src path
        makefile.write_text(makefile.read_text(encoding="utf-8").replace("/usr/src/", f"{sysroot}/usr/src/"),
                            encoding="utf-8")
        module.mkdir()
        _source_file(source, series, relative, module / Path(relative).name)
        (module / "Kbuild").write_text(f"obj-m := {stem}.o\n", encoding="utf-8")
        run(["make", "-C", headers, f"M={module}", "ARCH=arm64", f"CROSS_COMPILE={cross}", "modules"],
            f"build {relative} for kernel {abi} (needs make and, on a non-arm64 host, gcc-aarch64-linux-gnu)")
        built.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(module / f"{stem}.ko", built)
    log.info("kernel module %s built for %s (%s)", built.name, abi, version)
    return built


def install(root: Path, modules: list[Path]) -> list[str]:
    """Copy built modules into the root's ``/lib/modules/<abi>/updates``; their paths in the image (for insmod)."""
    folder = root / "lib/modules" / kernel_version(root) / "updates"
    folder.mkdir(parents=True, exist_ok=True)
    installed = []
    for module in modules:
        shutil.copyfile(module, folder / module.name)
        installed.append(f"/{(folder / module.name).relative_to(root)}")
    log.warning("test kernel modules in the image (emulation tests only): %s", ", ".join(installed))
    return installed
