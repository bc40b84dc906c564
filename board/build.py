"""``edgewatch image build``: the steps in order, each timed, leaving nothing half-written behind.

Without a base: minimal Debian root (cached) -> wheelhouse for its Python -> edgewatch injected
-> boot files -> disk image. With ``--base``: the user's image is copied, its Python read, the
wheelhouse built for it, its root partition grown and edgewatch injected there.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from board import ab, base, disk, inject, kmod, rauc, rootfs, system, uboot, wheelhouse
from board.host import BuildError
from edge.settings import load_config

log = logging.getLogger(__name__)

UNPACKED_PER_WHEEL_BYTE = 4  # a venv takes about four times its wheels' size, bytecode included
GROW_MARGIN_BYTES = 256 * disk.MIB


@dataclass(frozen=True)
class BuildRequest:
    out: Path  # the .img to write
    payload: inject.Payload
    extras: str | None = None  # None: the defaults and what the config needs
    serial_autologin: bool = False
    keep_root: Path | None = None  # also leave the image's root folder here (no base only)
    base: Path | None = None  # the user's arm64 image to install into
    compress: str | None = None  # "xz" or "zstd": write .img.xz / .img.zst instead of .img
    # emulation tests only: kernel-tree sources (e.g. drivers/i2c/i2c-stub.c) built for the image's kernel
    test_modules: tuple[str, ...] = ()
    ab_keyring: Path | None = None  # an A/B image (RAUC) trusting bundles signed under this CA; None: one root


@dataclass(frozen=True)
class Built:
    image: Path
    kernel: Path | None  # for qemu's -kernel; None when the base boots itself
    initrd: Path | None
    wheelhouse: Path
    root: Path | None
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall-clock seconds


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - start


def build(request: BuildRequest) -> Built:
    out = request.out
    if out.suffix != ".img":
        raise BuildError(f"{out}: the image file name must end in .img")
    if request.base is not None and (request.keep_root or request.serial_autologin or request.test_modules
                                     or request.ab_keyring):
        raise BuildError("--keep-root, --serial-autologin, --ab and test modules apply to the image built without "
                         "--base")
    extras = wheelhouse.extras_for(load_config(request.payload.config), request.extras)  # refused before any work
    out.parent.mkdir(parents=True, exist_ok=True)
    house = out.with_name(f"{out.stem}.wheelhouse")
    if house.exists():
        shutil.rmtree(house)
    timer = _Timer()
    built = (_on_base(request, extras, house, timer) if request.base is not None
             else _minimal(request, extras, house, timer))
    if request.compress is not None:
        with timer.step("compress"):
            built = replace(built, image=disk.compress(built.image, request.compress), seconds=timer.seconds)
    log.info("image %s built: %s", out, ", ".join(f"{step} {s:.0f} s" for step, s in timer.seconds.items()))
    return built


def _minimal(request: BuildRequest, extras: str, house: Path, timer: _Timer) -> Built:
    out = request.out
    work = Path(tempfile.mkdtemp(prefix=f".{out.stem}-", dir=out.parent))
    root = request.keep_root or work / "root"
    if root.exists():
        raise BuildError(f"{root} already exists: give a new folder to keep the image root in")
    try:
        with timer.step("root file system"):
            rootfs.extract(rootfs.cached_tarball(), root)
        target = wheelhouse.target_python(root)
        with timer.step("wheelhouse"):
            wheels = wheelhouse.build(house, target, extras)
        with timer.step("install"):
            inject.inject(root, target, wheels, request.payload)
            system.configure(root, request.serial_autologin)
        if request.test_modules:
            with timer.step("test kernel modules"):
                kmod.install(root, [kmod.build_module(root, source) for source in request.test_modules])
        with timer.step("install"):
            kernel, initrd = system.boot_files(root, out.parent, out.stem)
            if request.ab_keyring:
                rauc.configure(root, request.ab_keyring, uboot.fw_env_config())
        with timer.step("disk image"):
            if request.ab_keyring:
                ab.make(root, out)
            else:
                disk.make(root, out, system.ROOT_LABEL)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Built(out, kernel, initrd, house, request.keep_root, timer.seconds)


def _on_base(request: BuildRequest, extras: str, house: Path, timer: _Timer) -> Built:
    assert request.base is not None
    out = request.out
    with timer.step("copy base"):
        base.copy_image(request.base, out)
    try:
        partition, _ = base.root_partition(out)
        with base.mounted_root(out, partition) as root:
            target = wheelhouse.target_python(root)
        with timer.step("wheelhouse"):
            wheels = wheelhouse.build(house, target, extras)
        needed = sum(w.stat().st_size for w in wheels) * UNPACKED_PER_WHEEL_BYTE + GROW_MARGIN_BYTES
        needed += sum(disk.tree_bytes(folder) for folder in request.payload.folders)
        with timer.step("install"):
            partition = base.grow(out, (needed + disk.MIB - 1) // disk.MIB * disk.MIB)
            with base.mounted_root(out, partition) as root:
                inject.inject(root, target, wheels, request.payload)
    except BaseException:
        out.unlink(missing_ok=True)  # a half-injected image must not be flashed
        raise
    return Built(out, None, None, house, None, timer.seconds)
