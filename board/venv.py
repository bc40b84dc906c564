"""Build the board's venv from the wheelhouse on the host, without running the board's Python.

A venv is a ``pyvenv.cfg``, interpreter links and a site-packages folder; installing a wheel is
unpacking it and writing its scripts and RECORD. ``installer`` (PyPA) does exactly that for
another prefix, so the venv costs seconds here instead of minutes of pip under qemu-user. The
result is what ``python3 -m venv --system-site-packages`` plus ``pip install --no-index`` make,
and pip is installed in it so the board can upgrade from a newer wheelhouse.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path, PurePosixPath

from board.host import BuildError
from board.wheelhouse import TargetPython

log = logging.getLogger(__name__)

PREFIX = PurePosixPath("/opt/edgewatch")  # where the unit's ExecStart expects edgewatch


def wheels_to_install(wheels: list[Path], target: TargetPython) -> list[Path]:
    """Every wheel, except numpy when the base has apt's numpy: the venv then sees exactly one numpy."""
    if target.system_numpy is None:
        return wheels
    return [wheel for wheel in wheels if not wheel.name.lower().startswith("numpy-")]


def create(root: Path, target: TargetPython, wheels: list[Path], prefix: PurePosixPath = PREFIX) -> Path:
    """Write a venv at ``prefix`` inside ``root`` with ``wheels`` installed; return its folder on the host."""
    venv = root / prefix.relative_to("/")
    if venv.exists():
        raise BuildError(f"{venv} already exists in the image root: refusing to install over it")
    site = prefix / f"lib/python{target.version}/site-packages"
    for folder in ("bin", str(site.relative_to(prefix))):
        (venv / folder).mkdir(parents=True)
    (venv / "lib64").symlink_to("lib")
    (venv / "bin/python").symlink_to(f"/usr/bin/python{target.version}")
    (venv / "bin/python3").symlink_to("python")
    (venv / f"bin/python{target.version}").symlink_to("python")
    (venv / "pyvenv.cfg").write_text(
        f"home = /usr/bin\ninclude-system-site-packages = true\nversion = {target.version}\n"
        f"executable = /usr/bin/python{target.version}\n", encoding="utf-8")
    install(root, target, wheels_to_install(wheels, target), prefix)
    return venv


def install(root: Path, target: TargetPython, wheels: list[Path], prefix: PurePosixPath = PREFIX) -> None:
    """Install ``wheels`` into the venv at ``prefix`` inside ``root``, as pip would on the board.

    A distribution the venv has already is kept, as pip keeps a satisfied requirement.
    """
    from installer import install as install_wheel
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    site = prefix / f"lib/python{target.version}/site-packages"
    # Bytecode compiled here is valid there only for the same minor version (same magic number).
    same_python = sys.version_info[:2] == (target.major, target.minor)
    destination = SchemeDictionaryDestination(
        {"purelib": str(site), "platlib": str(site), "headers": str(prefix / "include"),
         "scripts": str(prefix / "bin"), "data": str(prefix)},
        interpreter=str(prefix / "bin/python"), script_kind="posix",
        bytecode_optimization_levels=(0,) if same_python else (), destdir=str(root))
    present = {_distribution(p.name) for p in (root / site.relative_to("/")).glob("*.dist-info")}
    for wheel in wheels:
        if _distribution(wheel.name) in present:
            log.info("%s: already in the venv, kept", wheel.name)
            continue
        with WheelFile.open(wheel) as source:
            install_wheel(source, destination, {"INSTALLER": b"edgewatch-image\n"})
    log.info("venv %s: %d wheels installed%s", prefix, len(wheels), ", bytecode compiled" if same_python else "")


def _distribution(file_name: str) -> str:
    """Normalised distribution name of a wheel or dist-info folder ('Foo_Bar-1.0-...' -> 'foo-bar')."""
    return file_name.split("-")[0].lower().replace("_", "-").replace(".", "-")
