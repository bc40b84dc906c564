"""Weekly maintenance windows -> is an asset in planned downtime now (pure)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

from edge.alerts.config import DAYS, MaintenanceWindow


@dataclass(frozen=True)
class Window:
    start_s: float  # unix seconds
    end_s: float


def scheduled_window(windows: Sequence[MaintenanceWindow], asset: str, now_s: float,
                     timezone: str | None = None) -> Window | None:
    """The scheduled window covering ``now_s`` for ``asset`` (the one ending last), or None."""
    zone = zoneinfo.ZoneInfo(timezone) if timezone else None
    local = dt.datetime.fromtimestamp(now_s, zone) if zone else dt.datetime.fromtimestamp(now_s).astimezone()
    found: Window | None = None
    for window in windows:
        if window.assets and asset not in window.assets:
            continue
        for back_days in range(8):  # a window of up to a week may have started on any of the last 7 days
            day = (local - dt.timedelta(days=back_days)).date()
            if DAYS[day.weekday()] not in window.days:
                continue
            start = dt.datetime.combine(day, dt.time(window.start_min // 60, window.start_min % 60), local.tzinfo)
            start_s = start.timestamp()
            end_s = start_s + window.duration_min * 60.0
            if start_s <= now_s < end_s and (found is None or end_s > found.end_s):
                found = Window(start_s, end_s)
    return found
