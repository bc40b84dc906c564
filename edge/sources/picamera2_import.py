"""Import picamera2 and, when that fails, say why in one sentence a person can act on.

On Raspberry Pi OS picamera2 and its C modules (simplejpeg, libcamera's bindings) come from apt,
built against apt's numpy. A venv made with ``--system-site-packages`` sees them, but a numpy
from PyPI installed in the venv shadows apt's; numpy 2 then breaks ``import picamera2`` with
"numpy.dtype size changed, may indicate binary incompatibility" (a ValueError, not an ImportError).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from edge.errors import SourceError

APT_SITE = Path("usr/lib/python3/dist-packages")
_ABI_SIGNS = ("dtype size changed", "binary incompatibility", "_ARRAY_API not found",
              "compiled using NumPy 1.x", "numpy.core.multiarray failed to import")


def apt_numpy_version(root: Path = Path("/")) -> str | None:
    """Version of apt's numpy (python3-numpy) under ``root``, from its dist-info or egg-info folder name."""
    for folder in sorted((root / APT_SITE).glob("numpy-*")):
        match = re.fullmatch(r"numpy-([0-9][0-9a-z.]*?)(?:\.dist-info|\.egg-info|-py\d.*\.egg-info)", folder.name)
        if match:
            return match[1]
    return None


def explain(exc: BaseException, apt_numpy: str | None) -> str:
    """Why ``import picamera2`` failed with ``exc``, and the fix."""
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "picamera2":
        sees_apt = any(Path(p) == Path("/") / APT_SITE for p in sys.path)
        how = "" if sees_apt else (f"; this Python ({sys.prefix}) does not see apt's packages: recreate the venv "
                                   "with 'python3 -m venv --system-site-packages'")
        return f"picamera2 is not installed: run 'sudo apt install python3-picamera2'{how}"
    if any(sign in str(exc) for sign in _ABI_SIGNS):
        import numpy

        where = Path(numpy.__file__).parent
        fix = (f"reinstall from a wheelhouse pinned to it ('edgewatch image wheelhouse --numpy {apt_numpy}')"
               if apt_numpy else "install python3-numpy from apt and use a venv without its own numpy")
        return (f"picamera2 is built against apt's numpy {apt_numpy or '(not installed)'} but this Python imports "
                f"numpy {numpy.__version__} from {where}, which is binary-incompatible ({exc}); remove that numpy "
                f"('{sys.prefix}/bin/pip uninstall numpy') or {fix}")
    return f"picamera2 cannot be imported: {type(exc).__name__}: {exc}"


def import_picamera2() -> Any:
    """The ``picamera2.Picamera2`` class, or a SourceError that says what is wrong."""
    try:
        from picamera2 import Picamera2
    except (ImportError, ValueError) as exc:  # numpy ABI mismatches surface as ValueError
        raise SourceError(explain(exc, apt_numpy_version())) from exc
    return Picamera2
