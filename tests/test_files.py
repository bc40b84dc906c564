"""Atomic replacement: a failed write leaves the old file whole and no temporary file behind."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import BinaryIO

import pytest

from edge.files import write_atomically


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
