"""Failures that repeat at every check (a full disk) are logged when they start and when they end."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge.evidence import Verdict
from edge.service.loop import Service
from edge.store.history import History
from tests.service_support import INTERVAL_S, FakeClock, InlineExecutor, ListSink, sensor_only


def test_a_full_disk_is_logged_when_it_starts_and_when_it_ends(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """Each failed attempt used to log its own line (about 4 a second on a full disk)."""
    (tmp_path / "fan").mkdir()
    history = History(tmp_path / "h.sqlite3")
    writer = history._db._writer  # SQLite's own limit: the file may not grow, as on a full disk
    writer.execute("PRAGMA max_page_count = 1")  # (clamped to the current size)

    class FreesTheDisk(ListSink):
        def publish(self, verdict: Verdict) -> None:
            super().publish(verdict)
            if len(self.verdicts) == 30:
                writer.execute("PRAGMA max_page_count = 1000000")

    sink = FreesTheDisk()
    service = Service([sensor_only("fan", tmp_path, INTERVAL_S)], history, sinks=[sink], clock=FakeClock(),
                      executor=InlineExecutor(), max_checks=40)
    with caplog.at_level(logging.DEBUG, logger="edge.service.loop"):
        service.run()
    history.close()
    lines = [r for r in caplog.records if "verdict not stored" in r.getMessage()]
    errors = [r for r in lines if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "database or disk is full" in errors[0].getMessage()
    assert sum(r.levelno == logging.DEBUG for r in lines) >= 20  # the repeats, for whoever debugs
    assert [r.levelno for r in lines][-1] == logging.WARNING and "works again" in lines[-1].getMessage()
    assert len(sink.verdicts) == 40  # published all along
