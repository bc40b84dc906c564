"""Vibration trends per asset in SQLite: levels and bearing-line heights over time, and their slopes.

A bearing wears for weeks before it fails; one burst's verdict says where it stands, the trend
says how fast it moves. ``Trends`` is a verdict sink: every vibration evidence a verdict carries
adds one row per trended value (``TREND_METRICS``), keyed by asset, sensor and metric.

    trends = Trends(state_dir / "trends.sqlite3")
    trends.publish(verdict)                                  # as a sink, after history
    trends.series("pump-1", "drive_end", "envelope_band_rms_g", since=t0)  # -> [(ts, value)], oldest first
    trends.summary("pump-1", since=t0)                       # -> [TrendSummary] per sensor and metric
    trends.prune(now_s)                                      # older than max_age_s (publish does it hourly)

Its own database file, apart from the verdict history: trends are small, numeric and kept longer
(a year by default), and either file can be deleted without touching the other. Durability and
threads: ``edge.store.sqlite.Database`` (WAL, synchronous=FULL, one writer, pooled readers).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.evidence import EvidenceKind, Verdict
from edge.store.sqlite import Database, Migration, Store

log = logging.getLogger(__name__)

# value key in vibration evidence -> metric name; dict values fan out as "<name>_<key>"
TREND_METRICS = {
    "velocity_rms_mm_s": "velocity_rms_mm_s",
    "bearing_band_rms_g": "bearing_band_rms_g",
    "envelope_band_rms_g": "envelope_band_rms_g",
    "rpm": "rpm",
    "bearing_lines_db": "line_db",  # line_db_outer_race, line_db_inner_race, ...
}
DAY_S = 86400.0
PRUNE_EVERY_S = 3600.0
# step 1 is the schema files written before versioning already have (user_version 0): IF NOT EXISTS
MIGRATIONS: tuple[Migration, ...] = (
    """
    CREATE TABLE IF NOT EXISTS trends (
        asset  TEXT NOT NULL,
        sensor TEXT NOT NULL,
        metric TEXT NOT NULL,
        ts     REAL NOT NULL,
        value  REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS trends_key_ts ON trends (asset, sensor, metric, ts);
    CREATE INDEX IF NOT EXISTS trends_ts ON trends (ts);
    """,
)


@dataclass(frozen=True)
class TrendSummary:
    sensor: str
    metric: str
    points: int
    first_ts: float
    last_ts: float
    last_value: float
    slope_per_day: float | None  # least squares over the points; None with fewer than 2 or no time span

    def to_dict(self) -> dict[str, Any]:
        return {"sensor": self.sensor, "metric": self.metric, "points": self.points, "first_ts": self.first_ts,
                "last_ts": self.last_ts, "last_value": self.last_value, "slope_per_day": self.slope_per_day}


def trend_values(values: Mapping[str, Any]) -> dict[str, float]:
    """The trended numbers of one vibration evidence's values (missing or non-finite ones left out)."""
    found: dict[str, float] = {}
    for key, metric in TREND_METRICS.items():
        value = values.get(key)
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, number in items:
            if isinstance(number, (int, float)) and not isinstance(number, bool) and math.isfinite(number):
                found[metric if sub is None else f"{metric}_{sub}"] = float(number)
    return found


def slope_per_day(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (ts, value) in value units per day."""
    if len(points) < 2:
        return None
    ts, values = np.array(points, dtype=np.float64).T
    if np.ptp(ts) <= 0:
        return None
    return float(np.polyfit((ts - ts[0]) / DAY_S, values, 1)[0])


class Trends(Store):
    def __init__(self, path: Path, max_age_s: float = 365 * DAY_S) -> None:
        self.path = Path(path)
        self.max_age_s = max_age_s
        self._next_prune_s = -math.inf
        self._db = Database(self.path, "trends", MIGRATIONS)
        self._write = self._db.write
        self._read = self._db.read

    # -- VerdictSink ---------------------------------------------------------------------------

    def publish(self, verdict: Verdict) -> None:
        rows = [(verdict.asset_id, item.source.split(":", 1)[-1], metric, item.timestamp, value)
                for item in verdict.evidence if item.kind is EvidenceKind.VIBRATION
                for metric, value in trend_values(item.values).items()]
        if rows:
            with self._write() as db:
                db.executemany("INSERT INTO trends (asset, sensor, metric, ts, value) VALUES (?, ?, ?, ?, ?)", rows)
            if verdict.timestamp >= self._next_prune_s:  # retention rides on the writes: no job to schedule
                self._next_prune_s = verdict.timestamp + PRUNE_EVERY_S
                self.prune(verdict.timestamp)

    # -- reading -------------------------------------------------------------------------------

    def series(self, asset: str, sensor: str, metric: str, since: float | None = None,
               limit: int = 10_000) -> list[tuple[float, float]]:
        """(ts, value) oldest first: the newest ``limit`` points since ``since``."""
        rows = self._read("SELECT ts, value FROM trends WHERE asset = ? AND sensor = ? AND metric = ? AND ts >= ?"
                          " ORDER BY ts DESC LIMIT ?", (asset, sensor, metric, since or -math.inf, limit))
        return [(float(ts), float(value)) for ts, value in reversed(rows)]

    def summary(self, asset: str, since: float | None = None) -> list[TrendSummary]:
        """One summary per (sensor, metric) of the asset since ``since``, with its slope per day."""
        keys = self._read("SELECT DISTINCT sensor, metric FROM trends WHERE asset = ? AND ts >= ? ORDER BY 1, 2",
                          (asset, since or -math.inf))
        found = []
        for sensor, metric in keys:
            points = self.series(asset, sensor, metric, since)
            found.append(TrendSummary(sensor, metric, len(points), points[0][0], points[-1][0], points[-1][1],
                                      slope_per_day(points)))
        return found

    def prune(self, now_s: float | None = None) -> int:
        cutoff = (time.time() if now_s is None else now_s) - self.max_age_s
        with self._write() as db:
            removed = db.execute("DELETE FROM trends WHERE ts < ?", (cutoff,)).rowcount
        if removed:
            log.info("trends retention removed %d point(s) older than %.0f days", removed, self.max_age_s / DAY_S)
        return int(removed)
