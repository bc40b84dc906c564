"""The sensors JSON of ``edgewatch check --sensors``: hostile files end in one clear InputError, read in
bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from edge.errors import InputError
from edge.sensors import snapshot_file


def test_deeply_nested_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nested.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="nested too deeply"):
        snapshot_file.load(path)


def test_an_oversized_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.truncate(140 * 2**20)  # 140 MB (sparse: costs no disk)
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"larger than 16 MiB; put long bursts in a 'file'"):
            snapshot_file.load(path)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < 2 * snapshot_file.MAX_FILE_BYTES


def test_a_file_at_the_cap_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "padded.json"
    document = '{"readings": [{"name": "motor", "quantity": "temperature", "unit": "degC", "value": 41.5}]}'
    path.write_text(document + " " * (snapshot_file.MAX_FILE_BYTES - len(document)))
    assert snapshot_file.load(path).readings[0].value == 41.5


def test_a_timestamp_that_is_not_a_time_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"timestamp": NaN, "readings": [{"name": "m", "quantity": "temperature", "unit": "degC", '
                    '"value": 3, "timestamp": Infinity}]}')
    with pytest.raises(InputError, match=r"invalid sensors file:\n  timestamp: .*finite.*\n  readings\[0\]\.timestamp"):
        snapshot_file.load(path)
