"""Atomic replacement: a failed write leaves the old file whole and no temporary file behind; bounded reads
refuse a file too large to be what it should be, naming it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

import pytest

from edge.errors import InputError
from edge.files import read_bounded, write_atomically


def test_replaces_the_file_with_the_given_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    write_atomically(path, b"old")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_atomically(path, lambda handle: handle.write(b"new"), 0o644)
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_a_write_that_fails_half_way_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "profile.npz"
    path.write_bytes(b"the previous profile")

    def disk_full(handle: BinaryIO) -> None:
        handle.write(b"half of the new one")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, disk_full)
    assert path.read_bytes() == b"the previous profile"
    assert [p.name for p in tmp_path.iterdir()] == ["profile.npz"]


def test_a_bounded_read_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    with pytest.raises(InputError, match=r"^sensors file .*snapshot.json does not exist$"):
        read_bounded(path, 2**20, "sensors file", InputError, "split it")
    path.write_bytes(b"x" * (2**20 + 1))
    with pytest.raises(InputError, match=r"snapshot.json is larger than 1 MiB; split it$"):
        read_bounded(path, 2**20, "sensors file", InputError, "split it")
    with pytest.raises(InputError, match=r"is larger than 4096 bytes; split it$"):
        read_bounded(path, 4096, "sensors file", InputError, "split it")
    assert read_bounded(path, 2**20 + 1, "sensors file", InputError, "split it") == b"x" * (2**20 + 1)
    with pytest.raises(InputError, match=r"sensors file .* is not a regular file but a folder; point at a file$"):
        read_bounded(tmp_path, 10, "sensors file", InputError, "split it")


def test_a_bounded_read_refuses_a_fifo_and_a_device_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "frame.jpg"
    os.mkfifo(fifo)  # nobody writes: opening it for reading would wait forever
    with pytest.raises(InputError, match=r"frame.jpg is not a regular file but a FIFO \(named pipe\)"):
        read_bounded(fifo, 2**20, "image", InputError, "split it")
    with pytest.raises(InputError, match=r"/dev/zero is not a regular file but a character device"):
        read_bounded(Path("/dev/zero"), 2**20, "image", InputError, "split it")
