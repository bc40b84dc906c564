"""The shared SQLite helper: pragmas, ordered migrations by user_version, and files the old code wrote."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edge.errors import StorageError
from edge.escalation.outbox import Outbox
from edge.store.alerts import MIGRATIONS as ALERT_MIGRATIONS
from edge.store.alerts import AlertStore, Notice
from edge.store.history import History
from edge.store.notifications import NotificationQueue
from edge.store.sqlite import Database, add_column_if_missing, split_statements
from edge.store.trends import Trends

STEPS = (
    "CREATE TABLE things (id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT 'a;b');"
    " CREATE INDEX things_body ON things (body);",
    add_column_if_missing("things", "note", "TEXT"),
)


def test_durability_pragmas_on_every_connection(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.sqlite3", "thing store", STEPS)
    with db.write() as writer:
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert writer.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    assert db.read("PRAGMA journal_mode") == [("wal",)]
    assert db.read("PRAGMA synchronous") == [(2,)]
    db.close()


def test_migrations_run_in_order_once(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    db = Database(path, "thing store", STEPS[:1])
    assert db.schema_version == 1
    with db.write() as writer:
        writer.execute("INSERT INTO things (id) VALUES (1)")
    db.close()
    db = Database(path, "thing store", STEPS)
    assert db.schema_version == 2
    assert db.read("SELECT id, body, note FROM things") == [(1, "a;b", None)]
    db.close()
    Database(path, "thing store", STEPS).close()  # nothing left to run: no 'table exists' error


def test_a_failing_step_leaves_the_old_version(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    Database(path, "thing store", STEPS[:1]).close()
    broken = (*STEPS, "CREATE TABLE extra (x INTEGER); CREATE TABLE things (y INTEGER);")
    with pytest.raises(StorageError, match=r"cannot write the thing store .*already exists"):
        Database(path, "thing store", broken)
    db = Database(path, "thing store", STEPS)
    assert db.schema_version == 2
    assert db.read("SELECT name FROM sqlite_master WHERE name = 'extra'") == []  # rolled back whole
    db.close()


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    Database(path, "thing store", STEPS).close()
    with pytest.raises(StorageError, match=r"schema 2, newer than this edgewatch \(1\)"):
        Database(path, "thing store", STEPS[:1])


def test_closed_database_refuses_use(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.sqlite3", "thing store", STEPS)
    db.close()
    with pytest.raises(StorageError, match=r"thing store .* is closed"):
        db.read("SELECT 1")


def test_split_statements_keeps_triggers_whole() -> None:
    script = "CREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = ';'; END;\n"
    assert split_statements(script) == [
        "CREATE TABLE a (x);", "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = ';'; END;"
    ]
    with pytest.raises(ValueError, match="incomplete SQL statement"):
        split_statements("CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 1;")


# The schemas as the code before the shared helper wrote them, byte for byte.
OLD_HISTORY = """
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, asset TEXT NOT NULL, ts REAL NOT NULL, condition TEXT NOT NULL,
    confidence REAL NOT NULL, escalated INTEGER NOT NULL, body TEXT NOT NULL, frame TEXT,
    frame_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS verdicts_asset_ts ON verdicts (asset, ts);
CREATE INDEX IF NOT EXISTS verdicts_ts ON verdicts (ts);
PRAGMA user_version = 1;
"""

OLD_OUTBOX = """
CREATE TABLE IF NOT EXISTS escalations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, asset_id TEXT NOT NULL,
    situation TEXT NOT NULL, frame_hash TEXT, verdict_id INTEGER, created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'dropped')),
    attempts INTEGER NOT NULL DEFAULT 0, request TEXT NOT NULL, verdict TEXT NOT NULL, result TEXT, error TEXT
);
CREATE INDEX IF NOT EXISTS escalations_status ON escalations (status, seq);
CREATE INDEX IF NOT EXISTS escalations_asset ON escalations (asset_id, created_at);
CREATE TABLE IF NOT EXISTS usage (
    at REAL NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, usd REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS checks (at REAL NOT NULL, asset_id TEXT NOT NULL, escalated INTEGER NOT NULL);
INSERT INTO escalations (key, asset_id, situation, created_at, updated_at, status, request, verdict)
    VALUES ('k1', 'pump', 'pump:warning', 1.0, 1.0, 'pending', '{}', '{"verdict": "warning"}');
INSERT INTO usage VALUES (5.0, 100, 20, 0.25);
"""


def test_a_history_written_by_the_old_code_opens_with_its_verdicts(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    body = {"asset": "pump-1", "verdict": "warning", "confidence": 0.8, "reasons": ["hot"], "evidence": [],
            "timestamp": 10.0, "escalated": False, "escalation": None}
    old = sqlite3.connect(path)
    old.executescript(OLD_HISTORY)
    old.execute("INSERT INTO verdicts (asset, ts, condition, confidence, escalated, body) VALUES (?, ?, ?, ?, ?, ?)",
                ("pump-1", 10.0, "warning", 0.8, 0, json.dumps(body)))
    old.commit()
    old.close()
    with History(path) as history:
        stored = history.latest("pump-1")
        assert stored is not None and stored.verdict.reasons == ("hot",)
        assert history._db.schema_version == 1


@pytest.mark.parametrize("had_embeddings", [False, True], ids=["before-learning", "with-learning"])
def test_an_outbox_written_before_versions_migrates(tmp_path: Path, had_embeddings: bool) -> None:
    path = tmp_path / "outbox.sqlite"
    old = sqlite3.connect(path)
    old.executescript(OLD_OUTBOX)
    if had_embeddings:  # the old code added the column itself, still at user_version 0
        old.execute("ALTER TABLE escalations ADD COLUMN embedding BLOB")
    old.commit()
    old.close()
    with Outbox(path) as outbox:
        assert outbox._db.schema_version == 2
        item = outbox.get("k1")
        assert item is not None and item.embedding is None and item.verdict == {"verdict": "warning"}
        assert outbox.spent_usd_since(0.0) == 0.25
        assert outbox.add("k2", "pump", "pump:fault", None, "{}", {}, now=2.0, embedding=np.ones(4))
        stored = outbox.get("k2")
        assert stored is not None and stored.embedding is not None
        assert stored.embedding.tolist() == [1.0, 1.0, 1.0, 1.0]


OLD_ALERTS = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, asset TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('raised', 'acknowledged', 'cleared')), condition TEXT NOT NULL,
    headline TEXT NOT NULL, verdict_id INTEGER, raised_at REAL NOT NULL, acknowledged_at REAL, acknowledged_by TEXT,
    note TEXT, cleared_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open ON alerts (asset) WHERE state != 'cleared';
CREATE TABLE IF NOT EXISTS modes (
    asset TEXT PRIMARY KEY, snoozed_until REAL, snoozed_by TEXT, maintenance_since REAL, maintenance_until REAL,
    maintenance_by TEXT, maintenance_note TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, asset TEXT NOT NULL, alert_id INTEGER,
    action TEXT NOT NULL, actor TEXT, note TEXT, detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_asset ON events (asset, id);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, event_id INTEGER NOT NULL, target TEXT NOT NULL,
    title TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dropped')), attempts INTEGER NOT NULL DEFAULT 0,
    next_try_at REAL NOT NULL, sent_at REAL, error TEXT
);
CREATE INDEX IF NOT EXISTS notifications_pending ON notifications (status, next_try_at, id);
INSERT INTO alerts (asset, state, condition, headline, verdict_id, raised_at)
    VALUES ('press-1', 'raised', 'fault', 'bearing outer race', 7, 100.0);
INSERT INTO events (at, asset, alert_id, action, detail)
    VALUES (100.0, 'press-1', 1, 'raised', '{"condition": "fault"}');
INSERT INTO notifications (key, event_id, target, title, body, created_at, status, next_try_at)
    VALUES ('ew-1-mail', 1, 'mail', 'press-1: fault', 'bearing outer race', 100.0, 'pending', 100.0);
"""

OLD_TRENDS = """
CREATE TABLE IF NOT EXISTS trends (
    asset TEXT NOT NULL, sensor TEXT NOT NULL, metric TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS trends_key_ts ON trends (asset, sensor, metric, ts);
CREATE INDEX IF NOT EXISTS trends_ts ON trends (ts);
INSERT INTO trends VALUES ('press-1', 'drive_end', 'rpm', 1000.0, 1500.0);
INSERT INTO trends VALUES ('press-1', 'drive_end', 'rpm', 87400.0, 1490.0);
"""


def write_old(path: Path, script: str) -> None:
    """A file as the code before the shared helper left it: its schema at user_version 0."""
    old = sqlite3.connect(path)
    old.executescript(script)
    old.commit()
    assert old.execute("PRAGMA user_version").fetchone()[0] == 0
    old.close()


def test_an_alert_store_written_before_versions_keeps_its_alert_and_queued_notice(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite3"
    write_old(path, OLD_ALERTS)
    with AlertStore(path) as store:
        assert store._db.schema_version == len(ALERT_MIGRATIONS)  # every step applied
        alert = store.open_alert("press-1")
        assert alert is not None and alert.headline == "bearing outer race" and alert.verdict_id == 7
        assert [event.detail for event in store.events("press-1")] == [{"condition": "fault"}]
        queue = NotificationQueue(store)
        assert [item.key for item in queue.due(now=100.0)] == ["ew-1-mail"]
        acknowledged = store.acknowledge(alert, "anna", "on it", 200.0, Notice("ack", "anna", ("mail",)))
        assert acknowledged.state == "acknowledged" and acknowledged.acknowledged_by == "anna"
        assert [item.key for item in queue.due(now=200.0)] == ["ew-1-mail", "ew-2-mail"]


def test_trends_written_before_versions_keep_their_points(tmp_path: Path) -> None:
    path = tmp_path / "trends.sqlite3"
    write_old(path, OLD_TRENDS)
    trends = Trends(path)
    assert trends._db.schema_version == 1
    assert trends.series("press-1", "drive_end", "rpm") == [(1000.0, 1500.0), (87400.0, 1490.0)]
    [summary] = trends.summary("press-1")
    assert summary.points == 2 and summary.slope_per_day == pytest.approx(-10.0)
    trends.close()
