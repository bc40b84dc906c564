"""``edgewatch image build``: the steps in order, each timed, leaving nothing half-written behind.

minimal Debian root (cached) -> wheelhouse for its Python -> edgewatch injected -> boot files
-> disk image. The root folder is kept only when asked (tests run arm64 code in it).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from board import disk, inject, rootfs, system, wheelhouse
from board.host import BuildError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildRequest:
    out: Path  # the .img to write
    payload: inject.Payload
    extras: str = wheelhouse.DEFAULT_EXTRAS
    serial_autologin: bool = False
    keep_root: Path | None = None  # also leave the image's root folder here


@dataclass(frozen=True)
class Built:
    image: Path
    kernel: Path
    initrd: Path
    wheelhouse: Path
    root: Path | None
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall-clock seconds


def build(request: BuildRequest) -> Built:
    out = request.out
    if out.suffix != ".img":
        raise BuildError(f"{out}: the image file name must end in .img")
    out.parent.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix=f".{out.stem}-", dir=out.parent))
    root = request.keep_root or work / "root"
    if root.exists():
        raise BuildError(f"{root} already exists: give a new folder to keep the image root in")
    try:
        start = time.monotonic()
        rootfs.extract(rootfs.cached_tarball(), root)
        seconds["root file system"] = time.monotonic() - start
        target = wheelhouse.target_python(root)
        house = out.with_name(f"{out.stem}.wheelhouse")
        if house.exists():
            shutil.rmtree(house)
        start = time.monotonic()
        wheels = wheelhouse.build(house, target, request.extras)
        seconds["wheelhouse"] = time.monotonic() - start
        start = time.monotonic()
        inject.inject(root, target, wheels, request.payload)
        system.configure(root, request.serial_autologin)
        kernel, initrd = system.boot_files(root, out.parent, out.stem)
        seconds["install"] = time.monotonic() - start
        start = time.monotonic()
        disk.make(root, out, system.ROOT_LABEL)
        seconds["disk image"] = time.monotonic() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("image %s built: %s", out, ", ".join(f"{step} {s:.0f} s" for step, s in seconds.items()))
    return Built(out, kernel, initrd, house, request.keep_root, seconds)
