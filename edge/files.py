"""The one way edgewatch writes a file that must never be left half-written (profiles, learned state,
saved frames, installed config, bundle manifests and signatures), and the one way it reads a file
a person points it at without trusting its size."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: Path, content: bytes | Callable[[BinaryIO], object], mode: int | None = None) -> None:
    """Replace ``path`` with ``content`` (bytes, or a function that writes to the open file) so that a
    crash, a kill or a full disk leaves the old file or the new one, never half of one: a temporary
    file in the same folder, fsync, rename, fsync of the folder (so the rename survives a power cut
    before the caller deletes what the old file named). ``mode`` sets the permissions (default 0600).

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
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def read_bounded(path: Path, limit_bytes: int, what: str, error: type[Exception], hint: str) -> bytes:
    """The bytes of ``path`` (``what``: 'config file', 'trusted key', ...), refusing a file larger than
    ``limit_bytes`` before parsing it (parsed JSON or YAML takes ten times its size); ``hint`` tells
    the person what to do about a large one (the caller names its own error: a config or a bundle error).
    Only a regular file is read: a FIFO would block the reader
    and a device such as /dev/zero never ends. Every failure is an ``error`` naming the file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open either
        kind = _kind(os.fstat(descriptor).st_mode)
        if kind:
            os.close(descriptor)
            raise error(f"{what} {path} is not a regular file but {kind}; point at a file")
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read(limit_bytes + 1)
    except FileNotFoundError as exc:
        raise error(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc}") from exc
    if len(data) > limit_bytes:
        size = f"{limit_bytes // 2**20} MiB" if limit_bytes % 2**20 == 0 else f"{limit_bytes} bytes"
        raise error(f"{what} {path} is larger than {size}; {hint}")
    return data


def _kind(mode: int) -> str:
    """'' for a regular file, else what the path is, in words."""
    if stat.S_ISREG(mode):
        return ""
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "a special file")
