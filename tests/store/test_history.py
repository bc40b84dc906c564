"""History on a real SQLite file: round trip, filters, escalation updates, frames, retention, threads."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge.errors import StorageError
from edge.evidence import Condition, Verdict
from edge.store.history import History, Retention, parse_since
from tests.history_support import make_verdict


@pytest.fixture
def history(tmp_path: Path) -> History:
    with History(tmp_path / "history.sqlite3") as opened:
        yield opened


def test_round_trip_keeps_every_field(history: History) -> None:
    verdict = make_verdict(condition=Condition.WARNING)
    verdict_id = history.add(verdict)
    stored = history.get(verdict_id)
    assert stored is not None and stored.id == verdict_id
    assert stored.verdict.evidence[0].values == {"anomaly_score": 0.25, "patch": [1, 2]}
    assert stored.verdict.evidence[1].condition is None
    assert stored.to_dict()["evidence"][1]["reasons"] == ["frame is black"]
    assert stored.to_dict()["id"] == verdict_id and stored.to_dict()["frame"] is None
    assert Verdict.from_dict(stored.to_dict()) == stored.verdict


def test_filters_and_order(history: History) -> None:
    for ts in (10.0, 30.0, 20.0):
        history.add(make_verdict("a", ts))
    history.add(make_verdict("b", 25.0))
    assert [s.verdict.timestamp for s in history.verdicts()] == [30.0, 25.0, 20.0, 10.0]
    assert [s.verdict.timestamp for s in history.verdicts(asset="a", since=20.0)] == [30.0, 20.0]
    assert len(history.verdicts(limit=2)) == 2
    assert history.latest("a").verdict.timestamp == 30.0
    assert history.latest("missing") is None
    assert history.assets() == ["a", "b"]
    first = history.verdicts(limit=None)[-1].id
    assert {s.id for s in history.verdicts(after_id=first)} == {first + 1, first + 2, first + 3}


def test_set_escalation_updates_the_stored_verdict(history: History) -> None:
    verdict_id = history.add(make_verdict(condition=Condition.FAULT))
    history.set_escalation(verdict_id, {"model": "gpt", "answer": "bearing wear"})
    stored = history.get(verdict_id)
    assert stored.verdict.escalated is True
    assert stored.verdict.escalation == {"model": "gpt", "answer": "bearing wear"}
    with pytest.raises(StorageError, match="no verdict with id 999"):
        history.set_escalation(999, {})


def test_frames_only_for_non_ok_verdicts(history: History) -> None:
    frame = np.random.default_rng(0).integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
    ok_id = history.add(make_verdict(condition=Condition.OK), frame=frame)
    bad_id = history.add(make_verdict(condition=Condition.FAULT), frame=frame)
    assert history.get(ok_id).frame is None
    path = history.get(bad_id).frame
    assert path is not None and path.read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    with pytest.raises(StorageError, match="uint8 RGB"):
        history.add(make_verdict(condition=Condition.FAULT), frame=frame.astype(np.float32))


def test_retention_by_age_and_frame_bytes(tmp_path: Path) -> None:
    frame = np.random.default_rng(1).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    with History(tmp_path / "h.sqlite3", retention=Retention(max_age_s=100.0, max_frames_bytes=1)) as history:
        old = history.add(make_verdict(ts=0.0, condition=Condition.FAULT), frame=frame)
        old_frame = history.get(old).frame
        newer = [history.add(make_verdict(ts=t, condition=Condition.FAULT), frame=frame) for t in (150.0, 160.0)]
        assert history.prune(now_s=200.0) == 1
        assert history.get(old) is None and not old_frame.exists()
        # frames over budget: the oldest frames go, their verdicts stay
        assert history.get(newer[0]) is not None and history.get(newer[0]).frame is None
        assert history.get(newer[1]).frame is None


def test_retention_by_database_size(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3", retention=Retention(max_age_s=1e12, max_db_bytes=64 * 1024)) as history:
        for ts in range(400):
            history.add(make_verdict(ts=float(ts)))
        assert history.prune(now_s=500.0) > 0
        remaining = history.verdicts(limit=None)
        assert remaining and remaining[0].verdict.timestamp == 399.0  # newest kept
        db = sqlite3.connect(tmp_path / "h.sqlite3")
        pragmas = ("page_count", "freelist_count", "page_size")
        pages, free, size = (db.execute(f"PRAGMA {p}").fetchone()[0] for p in pragmas)
        assert (pages - free) * size <= 64 * 1024


def test_orphan_frames_from_a_crash_are_removed(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    old = time.time() - 3600
    for name, data in (("pump-1-x.jpg.partial", b"half"), ("pump-1-y.jpg", b"never committed")):
        (frames / name).write_bytes(data)
        os.utime(frames / name, (old, old))
    (frames / "pump-1-z.jpg").write_bytes(b"being committed right now by the service")
    with History(tmp_path / "h.sqlite3", frames_dir=frames):
        assert [p.name for p in frames.iterdir()] == ["pump-1-z.jpg"]  # a fresh file is left alone


def test_durability_pragmas(history: History, tmp_path: Path) -> None:
    history.add(make_verdict())
    db = sqlite3.connect(tmp_path / "history.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with history._write() as writer:
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_one_writer_and_readers_in_other_threads(history: History) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                found = history.verdicts(limit=5)
                assert all(s.verdict.asset_id == "pump-1" for s in found)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    for ts in range(200):
        history.add(make_verdict(ts=float(ts)))
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors and history.count() == 200


def test_closed_history_refuses_use(tmp_path: Path) -> None:
    history = History(tmp_path / "h.sqlite3")
    history.close()
    with pytest.raises(StorageError, match="closed"):
        history.add(make_verdict())
    with pytest.raises(StorageError, match="closed"):
        history.verdicts()


def test_unwritable_folder_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot create the history folder"):
        History(blocker / "sub" / "h.sqlite3")


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", 910.0), ("15m", 100.0), ("0.25h", 100.0), ("1d", 1000.0 - 86400), ("1w", 1000.0 - 604800),
    ("1790000000.5", 1790000000.5), ("1970-01-01T00:10:00Z", 600.0), ("1970-01-01T00:10:00", 600.0),
    ("1970-01-01T01:10:00+01:00", 600.0),
])
def test_parse_since(text: str, expected: float) -> None:
    assert parse_since(text, now_s=1000.0) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["yesterday", "2 hours", "nan", ""])
def test_parse_since_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since(text, now_s=0.0)
