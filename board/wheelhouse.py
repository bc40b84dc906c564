"""The offline wheelhouse: edgewatch and its runtime dependencies as aarch64 wheels for the board's Python.

It is both what the image builder installs and a release artifact for boards already running
(``pip install --no-index --find-links WHEELHOUSE edgewatch``). When the base system has apt's
numpy (Raspberry Pi OS ships python3-numpy, and python3-picamera2/simplejpeg are built against
it), the wheelhouse is resolved against that exact numpy: a numpy 2 wheel in a
``--system-site-packages`` venv would shadow it and break ``import picamera2``.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from board.host import BuildError, run
from edge.service.hardware import parts
from edge.settings import Config
from edge.sources.picamera2_import import apt_numpy_version

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")  # glibc 2.17/2.28: bookworm, L4T 35/36
DEFAULT_EXTRAS = "cloud,mqtt"
PIP = (sys.executable, "-m", "pip", "--disable-pip-version-check")


@dataclass(frozen=True)
class TargetPython:
    """The board's interpreter: what the wheels must be built for, and what the venv links to."""

    major: int
    minor: int
    system_numpy: str | None  # apt's numpy version in the base, if any

    @property
    def tag(self) -> str:
        return f"cp{self.major}{self.minor}"

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"


def target_python(root: Path) -> TargetPython:
    """Read the base's python3 version and apt numpy from its files (nothing arm64 is run)."""
    link = root / "usr/bin/python3"
    if not link.is_symlink() and not link.exists():
        raise BuildError(f"{root} has no /usr/bin/python3: install python3 in the base image first")
    name = link.readlink().name if link.is_symlink() else "python3"
    match = re.fullmatch(r"python(\d+)\.(\d+)", name)
    if match is None:
        raise BuildError(f"cannot tell the Python version of {root}: /usr/bin/python3 points at {name!r}")
    major, minor = int(match[1]), int(match[2])
    return TargetPython(major, minor, apt_numpy_version(root))


def extras_for(config: Config, requested: str | None) -> str:
    """The extras an image installs: the defaults and what the config's plug-ins need, or ``requested``
    as given (``--extras``) when it holds every extra the config needs."""
    needed: dict[str, list[str]] = {}
    for part, access in parts(config):
        if access.extra is not None:
            needed.setdefault(access.extra, []).append(part)
    if requested is None:
        return ",".join(sorted({*DEFAULT_EXTRAS.split(","), *needed}))
    missing = sorted(set(needed) - set(requested.split(",")))
    if missing:
        raise BuildError(f"--extras {requested!r} lacks " + "; ".join(
            f"'{extra}', which {', '.join(needed[extra])} needs" for extra in missing)
            + f": add {','.join(missing)} to --extras, or leave --extras out")
    return requested


def download(out: Path, target: TargetPython, requirements: list[str], constraints: Path | None = None) -> None:
    """Binary aarch64 wheels of ``requirements`` and their dependencies for ``target`` into ``out``."""
    command = [*PIP, "download", "--quiet", "--dest", str(out), "--only-binary=:all:", "--implementation", "cp",
               "--python-version", target.version, "--abi", target.tag]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    run([*command, *requirements], f"download aarch64 wheels of {', '.join(requirements)} for Python "
        f"{target.version} (a dependency without an aarch64 wheel is named above)")


def build(out: Path, target: TargetPython, extras: str = DEFAULT_EXTRAS, project: Path = PROJECT_ROOT) -> list[Path]:
    """Fill ``out`` with edgewatch's wheel and every dependency's aarch64 wheel; return the wheel files."""
    if not (project / "pyproject.toml").is_file():
        raise BuildError(f"{project} is not an edgewatch source tree (no pyproject.toml): pass --project")
    if "export" in extras.split(","):
        raise BuildError("the 'export' extra (torch) is for the workstation; leave it out of a board's wheelhouse")
    if out.exists() and any(out.iterdir()):
        raise BuildError(f"{out} is not empty: give a new folder, so that no stale wheel ends up on the board")
    out.mkdir(parents=True, exist_ok=True)
    run([*PIP, "wheel", "--no-deps", "--quiet", "--wheel-dir", out, project], "build the edgewatch wheel")
    wheel = next(out.glob("edgewatch-*.whl"))
    constraints = out / "constraints.txt"
    constraints.write_text(f"numpy=={target.system_numpy}\n" if target.system_numpy else "", encoding="utf-8")
    if target.system_numpy:
        log.info("pinning numpy to the base's apt numpy %s (picamera2 is built against it)", target.system_numpy)
    download(out, target, [f"{wheel}[{extras}]" if extras else str(wheel), "pip"], constraints)
    wheels = sorted(out.glob("*.whl"))
    log.info("wheelhouse %s: %d wheels", out, len(wheels))
    return wheels
