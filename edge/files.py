"""Atomic file replacement: the one way edgewatch writes a file that must never be left half-written
(profiles, learned state, saved frames, installed config)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: Path, content: bytes | Callable[[BinaryIO], object], mode: int | None = None) -> None:
    """Replace ``path`` with ``content`` (bytes, or a function that writes to the open file) so that a
    crash, a kill or a full disk leaves the old file or the new one, never half of one: a temporary
    file in the same folder, fsync, rename. ``mode`` sets the permissions (default 0600).

    OSError propagates with the temporary file removed; the caller names the file's role in its error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
