"""The durable escalation store: every escalation is written here before it is sent.

SQLite through ``edge.store.sqlite.Database`` (WAL, ``synchronous=FULL``): a row that ``add``
returned for is on disk, so a kill -9 or a power cut loses nothing. Each escalation has an
idempotency key (UNIQUE), so adding the same one twice is a no-op and a resend after a crash
carries the same key. Pending rows are drained oldest first. The same file keeps finished rows
(cool-down memory across restarts), the money spent (budget caps across restarts) and one row
per check (the escalation rate).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.escalation.config import OutboxConfig
from edge.store.sqlite import Database, Migration, Store, add_column_if_missing

log = logging.getLogger(__name__)

# Files written before versioning are at version 0 with these tables already there (hence IF NOT
# EXISTS), some of them without the embedding column that learning added later.
MIGRATIONS: tuple[Migration, ...] = (
    """
    CREATE TABLE IF NOT EXISTS escalations (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        asset_id TEXT NOT NULL,
        situation TEXT NOT NULL,
        frame_hash TEXT,
        verdict_id INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'dropped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        request TEXT NOT NULL,
        verdict TEXT NOT NULL,
        result TEXT,
        error TEXT,
        embedding BLOB
    );
    CREATE INDEX IF NOT EXISTS escalations_status ON escalations (status, seq);
    CREATE INDEX IF NOT EXISTS escalations_asset ON escalations (asset_id, created_at);
    CREATE TABLE IF NOT EXISTS usage (
        at REAL NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, usd REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS usage_at ON usage (at);
    CREATE TABLE IF NOT EXISTS checks (at REAL NOT NULL, asset_id TEXT NOT NULL, escalated INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS checks_asset ON checks (asset_id, at);
    """,
    add_column_if_missing("escalations", "embedding", "BLOB"),
)

_COLUMNS = "seq, key, asset_id, situation, frame_hash, verdict_id, created_at, status, attempts, request, verdict, " \
           "result, error, embedding"


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    key: str
    asset_id: str
    situation: str
    frame_hash: int | None
    verdict_id: int | None
    created_at: float
    status: str
    attempts: int
    request: str  # CloudRequest JSON
    verdict: dict[str, Any]  # the local verdict when it was escalated
    result: dict[str, Any] | None
    error: str | None
    embedding: np.ndarray | None  # (D,) float32 frame embedding, kept only when learning is on


@dataclass(frozen=True)
class PastEscalation:
    """What the policy needs to know about an earlier escalation (cool-down, duplicate frames)."""

    situation: str
    frame_hash: int | None
    created_at: float


class Outbox(Store):
    def __init__(self, path: Path, config: OutboxConfig | None = None) -> None:
        self.path = path
        self._config = config or OutboxConfig()
        self._db = Database(path, "escalation outbox", MIGRATIONS, busy_timeout_s=10.0)
        self._write = self._db.write
        self._read = self._db.read

    # --- escalations ---------------------------------------------------------------------------

    def add(self, key: str, asset_id: str, situation: str, frame_hash: int | None, request_json: str,
            verdict: dict[str, Any], verdict_id: int | None = None, now: float | None = None,
            embedding: np.ndarray | None = None) -> bool:
        """Store a new pending escalation; False when this key is already known (nothing changes)."""
        now = time.time() if now is None else now
        blob = None if embedding is None else np.asarray(embedding, dtype="<f4").reshape(-1).tobytes()
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO escalations (key, asset_id, situation, frame_hash, verdict_id, created_at,"
                " updated_at, status, request, verdict, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (key, asset_id, situation, None if frame_hash is None else f"{frame_hash:016x}", verdict_id,
                 now, now, request_json, json.dumps(verdict), blob),
            )
            if cursor.rowcount == 0:
                return False
            self._bound(db, now)
        return True

    def _bound(self, db: sqlite3.Connection, now: float) -> None:
        overflow = db.execute("SELECT COUNT(*) FROM escalations WHERE status = 'pending'").fetchone()[0] \
            - self._config.max_pending
        if overflow > 0:
            log.warning("escalation outbox full (%d pending): dropping the %d oldest", self._config.max_pending,
                        overflow)
            db.execute(
                "UPDATE escalations SET status = 'dropped', updated_at = ?, error = 'outbox full'"
                " WHERE seq IN (SELECT seq FROM escalations WHERE status = 'pending' ORDER BY seq LIMIT ?)",
                (now, overflow),
            )
        db.execute(
            "DELETE FROM escalations WHERE seq IN (SELECT seq FROM escalations WHERE status != 'pending'"
            " ORDER BY seq DESC LIMIT -1 OFFSET ?)",
            (self._config.keep_done,),
        )

    def get(self, key: str) -> OutboxItem | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM escalations WHERE key = ?", (key,))
        return _item(rows[0]) if rows else None

    def pending(self, limit: int | None = None) -> list[OutboxItem]:
        """Escalations not yet answered, oldest first."""
        rows = self._read(f"SELECT {_COLUMNS} FROM escalations WHERE status = 'pending' ORDER BY seq LIMIT ?",
                          (-1 if limit is None else limit,))
        return [_item(row) for row in rows]

    def items(self) -> list[OutboxItem]:
        return [_item(row) for row in self._read(f"SELECT {_COLUMNS} FROM escalations ORDER BY seq")]

    def begin_attempt(self, key: str) -> None:
        """Count an attempt before sending, so a crash mid-flight still shows it was tried."""
        with self._write() as db:
            db.execute("UPDATE escalations SET attempts = attempts + 1, updated_at = ? WHERE key = ?",
                       (time.time(), key))

    def complete(self, key: str, result: dict[str, Any]) -> None:
        self._finish(key, "done", json.dumps(result), None)

    def fail(self, key: str, error: str) -> None:
        self._finish(key, "failed", None, error)

    def note_error(self, key: str, error: str) -> None:
        """A transient failure: the escalation stays pending."""
        with self._write() as db:
            db.execute("UPDATE escalations SET error = ?, updated_at = ? WHERE key = ?", (error, time.time(), key))

    def _finish(self, key: str, status: str, result: str | None, error: str | None) -> None:
        with self._write() as db:
            db.execute("UPDATE escalations SET status = ?, result = ?, error = ?, updated_at = ? WHERE key = ?",
                       (status, result, error, time.time(), key))

    def recent(self, asset_id: str, since: float) -> list[PastEscalation]:
        rows = self._read(
            "SELECT situation, frame_hash, created_at FROM escalations WHERE asset_id = ? AND created_at >= ?"
            " AND status != 'dropped' ORDER BY seq",
            (asset_id, since),
        )
        return [PastEscalation(s, None if h is None else int(h, 16), at) for s, h, at in rows]

    def counts(self) -> dict[str, int]:
        return {status: n for status, n in self._read("SELECT status, COUNT(*) FROM escalations GROUP BY status")}

    # --- money (budget.UsageLedger) ------------------------------------------------------------

    def add_usage(self, at: float, input_tokens: int, output_tokens: int, usd: float) -> None:
        with self._write() as db:
            db.execute("INSERT INTO usage VALUES (?, ?, ?, ?)", (at, input_tokens, output_tokens, usd))
            db.execute("DELETE FROM usage WHERE at < ?", (at - 7 * 86400,))

    def spent_usd_since(self, since: float) -> float:
        return float(self._read("SELECT COALESCE(SUM(usd), 0) FROM usage WHERE at >= ?", (since,))[0][0])

    # --- escalation rate -----------------------------------------------------------------------

    def record_check(self, asset_id: str, escalated: bool, at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self._write() as db:
            db.execute("INSERT INTO checks VALUES (?, ?, ?)", (at, asset_id, int(escalated)))
            db.execute("DELETE FROM checks WHERE at < ?", (at - 30 * 86400,))

    def escalation_rate(self, asset_id: str | None = None, since: float = 0.0) -> tuple[int, int]:
        """(escalated checks, all checks) since a time, for one asset or all."""
        sql = "SELECT COALESCE(SUM(escalated), 0), COUNT(*) FROM checks WHERE at >= ?"
        params: tuple[Any, ...] = (since,)
        if asset_id is not None:
            sql += " AND asset_id = ?"
            params += (asset_id,)
        escalated, total = self._read(sql, params)[0]
        return int(escalated), int(total)


def _item(row: tuple[Any, ...]) -> OutboxItem:
    (seq, key, asset, situation, frame_hash, verdict_id, created, status, attempts, request, verdict, result, error,
     embedding) = row
    return OutboxItem(
        seq=seq, key=key, asset_id=asset, situation=situation,
        frame_hash=None if frame_hash is None else int(frame_hash, 16), verdict_id=verdict_id,
        created_at=created, status=status, attempts=attempts, request=request, verdict=json.loads(verdict),
        result=None if result is None else json.loads(result), error=error,
        embedding=None if embedding is None else np.frombuffer(embedding, dtype="<f4"),
    )
