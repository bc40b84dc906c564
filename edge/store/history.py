"""Verdict history in SQLite: every verdict with its evidence, plus a JPEG for non-ok verdicts.

API (stable; outputs and escalation build on it)::

    history = History(state_dir / "history.sqlite3", frames_dir=state_dir / "frames")
    verdict_id = history.add(verdict, frame=rgb)        # -> int id; frame kept only if not ok
    history.set_escalation(verdict_id, {"answer": ...})  # outbox calls back when the cloud answers
    history.get(verdict_id)                              # -> StoredVerdict | None
    history.verdicts(asset="pump-1", since=t0, limit=50) # newest first
    history.latest("pump-1")                             # -> StoredVerdict | None
    history.assets()                                     # asset ids with at least one verdict
    history.count()                                      # verdicts stored
    history.prune()                                      # retention by age and size
    history.close()                                      # or use it as a context manager
    parse_since("2h", now_s=time.time())                 # CLI/API 'since' -> unix seconds

``StoredVerdict.verdict`` is the ``edge.evidence.Verdict`` as stored; ``StoredVerdict.to_dict()``
is ``Verdict.to_dict()`` plus ``id`` and ``frame`` (absolute path or None).

Durability and threads: ``edge.store.sqlite.Database`` (WAL, ``synchronous=FULL``, one writer,
pooled readers, migrations by ``user_version``). At one verdict per asset per check (seconds to
minutes apart) the fsync at every commit is cheap, even on an SD card.
Frames are written to a temporary file, fsynced and renamed before the row that names them is
committed, so a crash leaves at worst an unreferenced file, which the next open removes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import sqlite3
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import StorageError
from edge.evidence import Condition, Verdict, jsonable
from edge.files import write_atomically
from edge.store import anomaly_maps
from edge.store.sqlite import Database, Migration, Store, used_bytes

log = logging.getLogger(__name__)

MIGRATIONS: tuple[Migration, ...] = (
    """
    CREATE TABLE IF NOT EXISTS verdicts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        asset       TEXT    NOT NULL,
        ts          REAL    NOT NULL,
        condition   TEXT    NOT NULL,
        confidence  REAL    NOT NULL,
        escalated   INTEGER NOT NULL,
        body        TEXT    NOT NULL,
        frame       TEXT,
        frame_bytes INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS verdicts_asset_ts ON verdicts (asset, ts);
    CREATE INDEX IF NOT EXISTS verdicts_ts ON verdicts (ts);
    """,
)
_COLUMNS = "id, body, frame"
_ORPHAN_AGE_S = 60.0


@dataclass(frozen=True)
class StoredVerdict:
    """A verdict as kept in history: its row id and the saved frame, if any."""

    id: int
    verdict: Verdict
    frame: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.verdict.to_dict(), "frame": None if self.frame is None else str(self.frame)}


@dataclass(frozen=True)
class Retention:
    """How much history to keep; the oldest verdicts and frames go first."""

    max_age_s: float = 90 * 86400.0
    max_db_bytes: int = 256 * 1024 * 1024
    max_frames_bytes: int = 512 * 1024 * 1024
    frame_max_px: int = 1024  # long side of a saved JPEG
    jpeg_quality: int = 85


class History(Store):
    """SQLite verdict store; see the module docstring for the API and its guarantees."""

    def __init__(self, path: Path, frames_dir: Path | None = None, retention: Retention = Retention()) -> None:
        self.path = Path(path)
        self.frames_dir = Path(frames_dir) if frames_dir is not None else self.path.parent / "frames"
        self.retention = retention
        try:
            self.frames_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the history folder {self.frames_dir}: {exc}") from exc
        self._db = Database(self.path, "history", MIGRATIONS)
        self._write = self._db.write
        self._read = self._db.read
        self._remove_orphan_frames()

    # -- writing -----------------------------------------------------------------------------

    def add(self, verdict: Verdict, frame: np.ndarray | None = None, anomaly_map: np.ndarray | None = None) -> int:
        """Store ``verdict`` (and ``frame``, an (H, W, 3) uint8 RGB array, with its anomaly map
        when the verdict is not ok); return its id. When this returns, the verdict is on disk."""
        frame_name, frame_bytes = None, 0
        if frame is not None and verdict.condition is not Condition.OK:
            frame_name, frame_bytes = self._save_frame(verdict, frame)
            if anomaly_map is not None:
                anomaly_maps.save_beside(self.frames_dir / frame_name, anomaly_map)
        body = json.dumps(verdict.to_dict())
        try:
            with self._write() as db:
                cursor = db.execute(
                    "INSERT INTO verdicts (asset, ts, condition, confidence, escalated, body, frame, frame_bytes)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (verdict.asset_id, verdict.timestamp, verdict.condition.value, verdict.confidence,
                     int(verdict.escalated), body, frame_name, frame_bytes),
                )
                verdict_id = cursor.lastrowid
        except StorageError:
            if frame_name is not None:
                self._unlink_frame(frame_name)
            raise
        assert verdict_id is not None
        return int(verdict_id)

    def set_escalation(self, verdict_id: int, escalation: Mapping[str, Any], escalated: bool = True) -> None:
        """Record the escalation result (the cloud's answer, or why it was not asked) of a stored
        verdict. Raises StorageError when no verdict has that id (it may have been pruned)."""
        with self._write() as db:
            row = db.execute("SELECT body FROM verdicts WHERE id = ?", (verdict_id,)).fetchone()
            if row is None:
                raise StorageError(f"history has no verdict with id {verdict_id} (pruned, or never stored)")
            body = json.loads(row[0])
            body["escalation"] = jsonable(escalation)
            body["escalated"] = bool(escalated)
            db.execute(
                "UPDATE verdicts SET body = ?, escalated = ? WHERE id = ?",
                (json.dumps(body), int(escalated), verdict_id),
            )

    def prune(self, now_s: float | None = None) -> int:
        """Apply retention: drop verdicts older than ``max_age_s`` and the oldest verdicts while
        the database holds more than ``max_db_bytes``; drop the oldest frames (keeping their
        verdicts) while frames take more than ``max_frames_bytes``. Returns verdicts removed."""
        now_s = time.time() if now_s is None else now_s
        removed_frames: list[str] = []
        with self._write() as db:
            cutoff = now_s - self.retention.max_age_s
            removed_frames += [r[0] for r in db.execute(
                "SELECT frame FROM verdicts WHERE ts < ? AND frame IS NOT NULL", (cutoff,))]
            removed = db.execute("DELETE FROM verdicts WHERE ts < ?", (cutoff,)).rowcount
            removed += self._shrink_rows(db, removed_frames)
            removed_frames += self._shrink_frames(db)
        for name in removed_frames:
            self._unlink_frame(name)
        if removed or removed_frames:
            log.info("history retention removed %d verdict(s) and %d frame(s)", removed, len(removed_frames))
        return removed

    def _shrink_rows(self, db: sqlite3.Connection, removed_frames: list[str]) -> int:
        removed = 0
        while used_bytes(db) > self.retention.max_db_bytes:
            count = db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
            if count == 0:
                break
            batch = max(1, count // 20)  # 5 % at a time: few passes, little overshoot
            oldest = "SELECT id FROM verdicts ORDER BY ts, id LIMIT ?"
            removed_frames += [r[0] for r in db.execute(
                f"SELECT frame FROM verdicts WHERE id IN ({oldest}) AND frame IS NOT NULL", (batch,))]
            removed += db.execute(f"DELETE FROM verdicts WHERE id IN ({oldest})", (batch,)).rowcount
        return removed

    def _shrink_frames(self, db: sqlite3.Connection) -> list[str]:
        total = db.execute("SELECT COALESCE(SUM(frame_bytes), 0) FROM verdicts").fetchone()[0]
        dropped: list[str] = []
        if total <= self.retention.max_frames_bytes:
            return dropped
        for verdict_id, name, size in db.execute(
            "SELECT id, frame, frame_bytes FROM verdicts WHERE frame IS NOT NULL ORDER BY ts, id"
        ).fetchall():
            if total <= self.retention.max_frames_bytes:
                break
            db.execute("UPDATE verdicts SET frame = NULL, frame_bytes = 0 WHERE id = ?", (verdict_id,))
            dropped.append(name)
            total -= size
        return dropped

    # -- frames ------------------------------------------------------------------------------

    def _save_frame(self, verdict: Verdict, frame: np.ndarray) -> tuple[str, int]:
        from PIL import Image

        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise StorageError(f"a saved frame must be an (H, W, 3) uint8 RGB array, got {frame.shape} {frame.dtype}")
        image = Image.fromarray(frame, "RGB")
        image.thumbnail((self.retention.frame_max_px, self.retention.frame_max_px))
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(verdict.timestamp))
        name = f"{verdict.asset_id}-{stamp}-{uuid.uuid4().hex[:8]}.jpg"
        target = self.frames_dir / name
        try:
            write_atomically(target, lambda handle: image.save(handle, "JPEG", quality=self.retention.jpeg_quality),
                             0o644)
            return name, target.stat().st_size
        except OSError as exc:
            raise StorageError(f"cannot save the frame of {verdict.asset_id} to {self.frames_dir}: {exc}") from exc

    def _unlink_frame(self, name: str) -> None:
        anomaly_maps.remove_beside(self.frames_dir / name)
        try:
            (self.frames_dir / name).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove old frame %s: %s", name, exc)

    def _remove_orphan_frames(self) -> None:
        """Files a crash left behind: partial writes and frames whose row was never committed.

        Only files older than a minute: a reader opening the history (``edgewatch history``, the
        HTTP API) must not take the frame that the running service is about to commit."""
        cutoff = time.time() - _ORPHAN_AGE_S
        known = {row[0] for row in self._read("SELECT frame FROM verdicts WHERE frame IS NOT NULL")}
        for path in self.frames_dir.iterdir():
            if path.suffix not in (".jpg", ".partial") or path.name in known:
                continue
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    log.info("removing frame %s that no stored verdict references", path.name)
                    path.unlink(missing_ok=True)
            except OSError as exc:  # a reader without write access leaves the cleanup to the service
                log.debug("cannot remove orphan frame %s: %s", path.name, exc)

    # -- reading -----------------------------------------------------------------------------

    def get(self, verdict_id: int) -> StoredVerdict | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM verdicts WHERE id = ?", (verdict_id,))
        return self._stored(rows[0]) if rows else None

    def verdicts(
        self, asset: str | None = None, since: float | None = None, limit: int | None = 100, after_id: int | None = None
    ) -> list[StoredVerdict]:
        """Stored verdicts, newest first: optionally one asset, at or after ``since`` (unix
        seconds), with an id above ``after_id`` (for pollers), at most ``limit`` (None: all)."""
        where: list[str] = []
        params: list[Any] = []
        if asset is not None:
            where.append("asset = ?")
            params.append(asset)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if after_id is not None:
            where.append("id > ?")
            params.append(after_id)
        sql = f"SELECT {_COLUMNS} FROM verdicts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        params.append(-1 if limit is None else limit)
        return [self._stored(row) for row in self._read(sql, tuple(params))]

    def latest(self, asset: str) -> StoredVerdict | None:
        found = self.verdicts(asset=asset, limit=1)
        return found[0] if found else None

    def assets(self) -> list[str]:
        return [row[0] for row in self._read("SELECT DISTINCT asset FROM verdicts ORDER BY asset")]

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM verdicts")[0][0])

    def _stored(self, row: tuple[Any, ...]) -> StoredVerdict:
        verdict_id, body, frame = row
        try:
            verdict = Verdict.from_dict(json.loads(body))
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"history {self.path}: verdict {verdict_id} is unreadable: {exc}") from exc
        return StoredVerdict(verdict_id, verdict, None if frame is None else self.frames_dir / frame)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_since(text: str, now_s: float) -> float:
    """A ``since`` argument -> unix seconds: a duration back from ``now_s`` ('90s', '15m', '2h', '3d',
    '1w'), unix seconds, or ISO 8601 ('2026-09-21T14:00:00Z'; naive means UTC). ValueError if none."""
    match = _DURATION.match(text)
    if match:
        return now_s - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(value):
            return value
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"since {text!r} is neither a duration (15m, 2h, 3d), unix seconds nor an ISO 8601 time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()
