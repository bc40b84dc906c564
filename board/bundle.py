"""``edgewatch image bundle``: a signed RAUC update bundle from the root slot of an A/B image.

The root file system is cut out of the image built with ``--ab`` (partition 2, byte for byte, no
mount needed) and signed with ``rauc bundle`` in the ``verity`` format, so the board checks
every block it installs against the signed hash tree. The board only installs it when its
``compatible`` matches and the signer chains up to ``/etc/rauc/keyring.pem``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from board.host import BuildError, require, run
from board.rauc import COMPATIBLE, SLOTS

log = logging.getLogger(__name__)

SECTOR = 512
# mksquashfs's compressors for the bundle: gzip is its default (what rauc bundle used before the option);
# xz makes the smallest download, lz4 the fastest build and install (at about twice gzip's size)
COMPRESSIONS = ("gzip", "lz4", "xz")


def manifest(version: str, compatible: str = COMPATIBLE) -> str:
    if not version or any(c.isspace() for c in version):
        raise BuildError(f"bundle version {version!r}: give a version without white space, e.g. 1.4.0")
    return (f"[update]\ncompatible={compatible}\nversion={version}\n\n[bundle]\nformat=verity\n\n"
            "[image.rootfs]\nfilename=rootfs.ext4\n")


def extract_root(image: Path, out: Path) -> Path:
    """Slot A's file system from the A/B disk ``image`` into ``out``."""
    if not image.is_file():
        raise BuildError(f"--image {image}: no such file (give the .img that 'edgewatch image build --ab' wrote)")
    table = json.loads(run(["sfdisk", "--json", image], f"read the partition table of {image}"))
    partitions = table.get("partitiontable", {}).get("partitions", [])
    if len(partitions) != 4:
        raise BuildError(f"{image} has {len(partitions)} partitions, not the 4 of an A/B image "
                         "(build it with 'edgewatch image build --ab')")
    slot = partitions[SLOTS["A"] - 1]
    run(["dd", f"if={image}", f"of={out}", "bs=4M", f"skip={slot['start'] * SECTOR}",
         f"count={slot['size'] * SECTOR}", "iflag=skip_bytes,count_bytes", "conv=sparse", "status=none"],
        f"copy the root slot out of {image}")
    return out


def _check(key: Path, cert: Path, out: Path, version: str, compression: str) -> str:
    """Refuse bad arguments before any work; the manifest when they are fine."""
    if compression not in COMPRESSIONS:
        raise BuildError(f"--compression {compression!r}: expected one of {', '.join(COMPRESSIONS)}")
    if out.suffix != ".raucb":
        raise BuildError(f"{out}: the bundle file name must end in .raucb")
    for name, path in (("--key", key), ("--cert", cert)):
        if not path.is_file():
            raise BuildError(f"{name} {path}: no such file")
    return manifest(version)


def write(image: Path, key: Path, cert: Path, out: Path, version: str, compression: str = "gzip") -> Path:
    """Sign slot A of ``image`` as the bundle ``out`` (.raucb) for ``version``."""
    require("sfdisk")
    _check(key, cert, out, version, compression)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.stem}-", dir=out.parent))
    try:
        return sign(extract_root(image, work / "rootfs.ext4"), key, cert, out, version, compression)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sign(rootfs: Path, key: Path, cert: Path, out: Path, version: str, compression: str = "gzip") -> Path:
    """The root file system image ``rootfs`` (ext4) as the signed bundle ``out``; ``rootfs`` is moved in."""
    require("rauc", "mksquashfs")
    text = _check(key, cert, out, version, compression)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.stem}-", dir=out.parent))
    partial = out.with_name(out.name + ".partial.raucb")
    try:
        content = work / "content"
        content.mkdir()
        (content / "manifest.raucm").write_text(text, encoding="utf-8")
        shutil.move(rootfs, content / "rootfs.ext4")
        partial.unlink(missing_ok=True)  # rauc refuses to overwrite
        run(["rauc", "bundle", f"--cert={cert}", f"--key={key}", f"--mksquashfs-args=-comp {compression}",
             content, partial], f"sign the bundle {out}")
        partial.replace(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        partial.unlink(missing_ok=True)
    log.info("bundle %s: version %s for %s, %s, %.0f MiB", out, version, COMPATIBLE, compression,
             out.stat().st_size / 2**20)
    return out
