"""Reading a bundle's files so that what is checked is what is used.

Each file is opened once, walking from the bundle folder one name at a time with ``O_NOFOLLOW``: a
symbolic link anywhere inside the bundle is refused, and a path swapped after the open changes
nothing. The model bytes handed to onnxruntime are the very bytes whose sha256 was compared with the
(signed) manifest, so replacing ``image.onnx`` between verification and load cannot slip a model in.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from edge.errors import BundleError

_HASH_CHUNK = 1 << 20


def open_member(root: Path, name: str) -> BinaryIO:
    """``name`` ('/'-separated, inside the bundle) opened for reading; BundleError when it is missing,
    is or goes through a symbolic link, or is not a regular file."""
    parts = PurePosixPath(name).parts
    folder = _open(root, str(root), os.O_RDONLY | os.O_DIRECTORY, name, dir_fd=None)
    try:
        for part in parts[:-1]:
            inner = _open(root, part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, name, dir_fd=folder)
            os.close(folder)
            folder = inner
        descriptor = _open(root, parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, name, dir_fd=folder)
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise BundleError(f"bundle {root}: {name} is not a regular file")
    return os.fdopen(descriptor, "rb")


def _open(root: Path, part: str, flags: int, name: str, dir_fd: int | None) -> int:
    try:
        return os.open(part, flags, dir_fd=dir_fd)
    except FileNotFoundError as exc:
        raise BundleError(f"bundle {root}: file {name} is missing") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and _is_link(part, dir_fd)):
            raise BundleError(f"bundle {root}: {name} is or goes through a symbolic link; a bundle holds its "
                              "files themselves (copy them in)") from exc
        raise BundleError(f"bundle {root}: file {name} cannot be read: {exc}") from exc


def _is_link(part: str, dir_fd: int | None) -> bool:
    try:
        return stat.S_ISLNK(os.stat(part, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _check_size(root: Path, name: str, handle: BinaryIO, size: int) -> None:
    actual = os.fstat(handle.fileno()).st_size
    if actual != size:
        raise BundleError(f"bundle {root}: file {name} is {actual} bytes, manifest says {size} (truncated or replaced)")


def _mismatch(root: Path, name: str) -> BundleError:
    return BundleError(f"bundle {root}: file {name} does not match its sha256 (corrupted or tampered)")


def read_member(root: Path, name: str, size: int, sha256: str) -> bytes:
    """The whole file, read once into memory and checked against ``size`` and ``sha256``."""
    try:
        with open_member(root, name) as handle:
            _check_size(root, name, handle, size)
            data = handle.read(size + 1)
    except OSError as exc:
        raise BundleError(f"bundle {root}: file {name} cannot be read: {exc}") from exc
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise _mismatch(root, name)
    return data


def verify_member(root: Path, name: str, size: int, sha256: str) -> None:
    """Like :func:`read_member` without holding the file in memory (bundle verification)."""
    try:
        with open_member(root, name) as handle:
            _check_size(root, name, handle, size)
            digest = sha256_stream(handle)
    except OSError as exc:
        raise BundleError(f"bundle {root}: file {name} cannot be read: {exc}") from exc
    if digest != sha256:
        raise _mismatch(root, name)


def sha256_stream(handle: BinaryIO) -> str:
    """The hex sha256 of what is left in ``handle``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    while chunk := handle.read(_HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()
