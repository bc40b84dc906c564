"""Alerts in SQLite: one open alert per asset, each asset's snooze and maintenance, the audit trail, and
the notifications each transition queues, all written in one transaction so none is lost or doubled.

    raised --acknowledge--> acknowledged --verdict ok--> cleared
       \\_____________________verdict ok_______________/
    a worse verdict (warning -> fault) re-raises an acknowledged alert

Every transition and every person's action is an ``events`` row (who, when, note); the rows of
``notifications`` are the durable outbox the notifier drains (``edge/alerts/notifier.py``).
Durability and threads: ``edge.store.sqlite.Database`` (WAL, ``synchronous=FULL``, one writer, pooled
readers); the CLI writes beside a running service, so a lock is waited for up to ten seconds.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge.errors import StorageError
from edge.store.sqlite import Database, Migration, Store

log = logging.getLogger(__name__)

# step 1 is the schema files written before versioning already have (user_version 0): IF NOT EXISTS
MIGRATIONS: tuple[Migration, ...] = (
    """
    CREATE TABLE IF NOT EXISTS alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        asset TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('raised', 'acknowledged', 'cleared')),
        condition TEXT NOT NULL,
        headline TEXT NOT NULL,
        verdict_id INTEGER,
        raised_at REAL NOT NULL,
        acknowledged_at REAL,
        acknowledged_by TEXT,
        note TEXT,
        cleared_at REAL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open ON alerts (asset) WHERE state != 'cleared';
    CREATE TABLE IF NOT EXISTS modes (
        asset TEXT PRIMARY KEY,
        snoozed_until REAL,
        snoozed_by TEXT,
        maintenance_since REAL,
        maintenance_until REAL,
        maintenance_by TEXT,
        maintenance_note TEXT
    );
    CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        asset TEXT NOT NULL,
        alert_id INTEGER,
        action TEXT NOT NULL,
        actor TEXT,
        note TEXT,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX IF NOT EXISTS events_asset ON events (asset, id);
    CREATE TABLE IF NOT EXISTS notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        event_id INTEGER NOT NULL,
        target TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dropped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try_at REAL NOT NULL,
        sent_at REAL,
        error TEXT
    );
    CREATE INDEX IF NOT EXISTS notifications_pending ON notifications (status, next_try_at, id);
""",
    # worse news first (2 fault, 1 warning, 0 cleared and what people did); a repeated snooze or
    # maintenance action of an asset replaces its unsent notice (collapse_key)
    """
    ALTER TABLE notifications ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE notifications ADD COLUMN collapse_key TEXT;
    CREATE INDEX notifications_collapse ON notifications (collapse_key, target) WHERE status = 'pending';
""",
)
MAX_TITLE_CHARS = 200  # one readable subject line; a longer one is cut before anything encodes it
MAX_BODY_CHARS = 4000
PRUNE_EVERY = 100  # events between two retention passes
_ALERT_COLUMNS = "id, asset, state, condition, headline, verdict_id, raised_at, acknowledged_at, acknowledged_by, " \
                 "note, cleared_at"


@dataclass(frozen=True)
class Alert:
    id: int
    asset: str
    state: str  # raised | acknowledged | cleared
    condition: str  # warning | fault
    headline: str
    verdict_id: int | None
    raised_at: float
    acknowledged_at: float | None
    acknowledged_by: str | None
    note: str | None
    cleared_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Mode:
    """An asset's snooze and on-demand maintenance as stored (a schedule's windows are not stored)."""

    snoozed_until: float | None = None
    snoozed_by: str | None = None
    maintenance_since: float | None = None
    maintenance_until: float | None = None  # None with a start: until someone stops it
    maintenance_by: str | None = None
    maintenance_note: str | None = None

    def snoozed(self, now: float) -> bool:
        return self.snoozed_until is not None and now < self.snoozed_until

    def in_maintenance(self, now: float) -> bool:
        return self.maintenance_since is not None and (self.maintenance_until is None or now < self.maintenance_until)


@dataclass(frozen=True)
class Event:
    id: int
    at: float
    asset: str
    alert_id: int | None
    action: str
    actor: str | None
    note: str | None
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Notice:
    """What one transition tells people: queued once per notification target in the same transaction."""

    title: str
    body: str
    targets: Sequence[str]  # target ids (see edge/alerts/notifier.py)
    priority: int = 0  # sent before lower ones: 2 fault, 1 warning, 0 cleared and what people did
    collapse_key: str | None = None  # replaces an unsent notice with the same key (a repeated snooze...)


@dataclass(frozen=True)
class Retention:
    """How much history the alert store keeps: the newest ``events`` audit entries and ``notifications``
    rows (sent and dropped ones go first; beyond it the oldest, least urgent pending ones are dropped)."""

    events: int = 100_000
    notifications: int = 10_000


def clip(text: str, limit: int, one_line: bool = False) -> str:
    """``text`` cut to ``limit`` characters (with '…'); ``one_line`` turns line breaks and other control
    characters into spaces (a subject line). Applied before anything encodes a notification."""
    if one_line:
        text = "".join(" " if ord(char) < 32 or ord(char) == 127 else char for char in text[:limit + 1])
    return text if len(text) <= limit else text[:limit - 1] + "…"


class AlertStore(Store):
    """``AlertStore(state_dir / "alerts.sqlite3")``; safe to share between threads."""

    def __init__(self, path: Path, retention: Retention | None = None) -> None:
        self.path = Path(path)
        self.retention = retention or Retention()
        self._db = Database(self.path, "alert store", MIGRATIONS, busy_timeout_s=10.0)
        self.write = self._db.write  # one IMMEDIATE transaction: everything inside commits together or not at all
        self.read = self._db.read

    # -- reading ---------------------------------------------------------------------------------

    def open_alert(self, asset: str) -> Alert | None:
        rows = self.read(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE asset = ? AND state != 'cleared'", (asset,))
        return Alert(*rows[0]) if rows else None

    def get(self, alert_id: int) -> Alert | None:
        rows = self.read(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        return Alert(*rows[0]) if rows else None

    def alerts(self, asset: str | None = None, limit: int = 100) -> list[Alert]:
        """Alerts newest first, open and cleared."""
        where, params = ("WHERE asset = ?", (asset,)) if asset is not None else ("", ())
        rows = self.read(f"SELECT {_ALERT_COLUMNS} FROM alerts {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [Alert(*row) for row in rows]

    def mode(self, asset: str) -> Mode:
        rows = self.read("SELECT snoozed_until, snoozed_by, maintenance_since, maintenance_until, maintenance_by,"
                         " maintenance_note FROM modes WHERE asset = ?", (asset,))
        return Mode(*rows[0]) if rows else Mode()

    def events(self, asset: str | None = None, limit: int = 100, actions: Sequence[str] = (),
               ref: str | None = None) -> list[Event]:
        """The audit trail, newest first; only ``actions`` when given, only entries whose detail has
        this ``ref`` (a correction's) when given, so old entries are found however many came since."""
        clauses = [(asset is not None, "asset = ?", (asset,)),
                   (bool(actions), f"action IN ({', '.join('?' * len(actions))})", tuple(actions)),
                   (ref is not None, "json_extract(detail, '$.ref') = ?", (ref,))]
        where = " AND ".join(sql for used, sql, _ in clauses if used)
        params = tuple(value for used, _, values in clauses if used for value in values)
        rows = self.read(f"SELECT id, at, asset, alert_id, action, actor, note, detail FROM events"
                         f"{' WHERE ' + where if where else ''} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [Event(id=row[0], at=row[1], asset=row[2], alert_id=row[3], action=row[4], actor=row[5], note=row[6],
                      detail=json.loads(row[7])) for row in rows]

    # -- writing: each call is one transaction with its event and notifications -----------------

    def raise_alert(self, asset: str, condition: str, headline: str, verdict_id: int | None, at: float,
                    notice: Notice | None) -> Alert:
        with self.write() as db:
            cursor = db.execute("INSERT INTO alerts (asset, state, condition, headline, verdict_id, raised_at)"
                                " VALUES (?, 'raised', ?, ?, ?, ?)", (asset, condition, headline, verdict_id, at))
            alert_id = int(cursor.lastrowid or 0)
            _event(db, self.retention, at, asset, alert_id, "raised", None, None,
                   {"condition": condition, "verdict_id": verdict_id}, notice)
        return self._must(alert_id)

    def worsen(self, alert: Alert, condition: str, headline: str, verdict_id: int | None, at: float,
               notice: Notice | None) -> Alert:
        """A worse verdict while the alert is open: it is raised again, even if acknowledged."""
        with self.write() as db:
            _changed(db.execute("UPDATE alerts SET state = 'raised', condition = ?, headline = ?, verdict_id = ?"
                                " WHERE id = ? AND state != 'cleared'", (condition, headline, verdict_id, alert.id)),
                     alert)
            _event(db, self.retention, at, alert.asset, alert.id, "worsened", None, None,
                   {"condition": condition, "verdict_id": verdict_id}, notice)
        return self._must(alert.id)

    def acknowledge(self, alert: Alert, by: str, note: str | None, at: float, notice: Notice | None) -> Alert:
        with self.write() as db:
            _changed(db.execute("UPDATE alerts SET state = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?,"
                                " note = ? WHERE id = ? AND state = 'raised'", (at, by, note, alert.id)), alert)
            _event(db, self.retention, at, alert.asset, alert.id, "acknowledged", by, note, {}, notice)
        return self._must(alert.id)

    def clear(self, alert: Alert, at: float, notice: Notice | None, actor: str | None = None) -> Alert:
        with self.write() as db:
            _changed(db.execute("UPDATE alerts SET state = 'cleared', cleared_at = ?"
                                " WHERE id = ? AND state != 'cleared'", (at, alert.id)), alert)
            _event(db, self.retention, at, alert.asset, alert.id, "cleared", actor, None, {}, notice)
        return self._must(alert.id)

    def set_mode(self, asset: str, mode: Mode, action: str, actor: str | None, note: str | None, at: float,
                 notice: Notice | None, detail: dict[str, Any] | None = None) -> None:
        """Store an asset's snooze/maintenance (``action``: snoozed, unsnoozed, maintenance_started, ...)."""
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO modes VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (asset, mode.snoozed_until, mode.snoozed_by, mode.maintenance_since, mode.maintenance_until,
                        mode.maintenance_by, mode.maintenance_note))
            open_alert = db.execute("SELECT id FROM alerts WHERE asset = ? AND state != 'cleared'", (asset,)).fetchone()
            _event(db, self.retention, at, asset, None if open_alert is None else open_alert[0], action, actor, note,
                   detail or {}, notice)

    def record(self, asset: str, action: str, actor: str | None, note: str | None, detail: dict[str, Any],
               at: float | None = None) -> Event:
        """An audit entry that changes no alert (a verdict marked wrong, its undo)."""
        at = time.time() if at is None else at
        with self.write() as db:
            event_id = _event(db, self.retention, at, asset, None, action, actor, note, detail, None)
        return Event(event_id, at, asset, None, action, actor, note, detail)

    def _must(self, alert_id: int) -> Alert:
        alert = self.get(alert_id)
        if alert is None:
            raise StorageError(f"the alert store {self.path}: alert {alert_id} vanished")
        return alert


def _changed(cursor: sqlite3.Cursor, alert: Alert) -> None:
    """Inside a write: the alert was changed by someone else meanwhile (another process): roll back."""
    if cursor.rowcount != 1:
        raise StorageError(f"alert {alert.id} of {alert.asset} changed meanwhile; nothing was done, try again")


def _event(db: sqlite3.Connection, retention: Retention, at: float, asset: str, alert_id: int | None, action: str,
           actor: str | None, note: str | None, detail: dict[str, Any], notice: Notice | None) -> int:
    cursor = db.execute("INSERT INTO events (at, asset, alert_id, action, actor, note, detail) VALUES (?, ?, ?, ?, ?,"
                        " ?, ?)", (at, asset, alert_id, action, actor, note, json.dumps(detail)))
    event_id = int(cursor.lastrowid or 0)
    if event_id % PRUNE_EVERY == 0:
        _prune(db, retention)
    if notice is None:
        return event_id
    title, body = clip(notice.title, MAX_TITLE_CHARS, one_line=True), clip(notice.body, MAX_BODY_CHARS)
    for target in notice.targets:
        if notice.collapse_key is not None:  # never tried yet: the newer notice says what is true now
            db.execute("UPDATE notifications SET status = 'dropped', error = ? WHERE status = 'pending'"
                       " AND attempts = 0 AND collapse_key = ? AND target = ?",
                       (f"replaced by ew-{event_id}-{target}", notice.collapse_key, target))
        db.execute("INSERT INTO notifications (key, event_id, target, title, body, created_at, status, next_try_at,"
                   " priority, collapse_key) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                   (f"ew-{event_id}-{target}", event_id, target, title, body, at, at, notice.priority,
                    notice.collapse_key))
    return event_id


def _prune(db: sqlite3.Connection, retention: Retention) -> None:
    """Keep the newest ``retention`` rows (ids only grow, so an id cut-off is a count, through the key)."""
    db.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (retention.events,))
    db.execute("DELETE FROM notifications WHERE status != 'pending' AND id <= (SELECT MAX(id) FROM notifications)"
               " - ?", (retention.notifications,))
    dropped = db.execute(
        "UPDATE notifications SET status = 'dropped', error = 'the queue was full' WHERE id IN (SELECT id FROM"
        " notifications WHERE status = 'pending' ORDER BY priority, id LIMIT max(0, (SELECT COUNT(*) FROM"
        " notifications WHERE status = 'pending') - ?))", (retention.notifications,)).rowcount
    if dropped:
        log.warning("notification queue over %d waiting: %d of the oldest, least urgent dropped (are the "
                    "receivers down?)", retention.notifications, dropped)
