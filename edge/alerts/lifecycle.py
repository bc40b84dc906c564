"""Alert lifecycle per asset: verdicts raise, worsen and clear alerts; people acknowledge, snooze and
declare maintenance. Decisions live here; ``edge.store.alerts`` keeps them (one transaction each,
with the audit entry and the queued notifications).

Maintenance (on demand, or a scheduled window) means no alerts, no escalations and no learning:
``quiet(asset)`` is what the check loop asks before escalating. A snooze mutes the notifications
of verdict-driven transitions for a while; what people do is always notified.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar, cast

from edge.alerts.config import AlertsSettings
from edge.alerts.headline import headline
from edge.alerts.schedule import scheduled_window
from edge.errors import ActionRefused
from edge.evidence import Condition, Verdict, iso_time
from edge.store.alerts import Alert, AlertStore, Mode, Notice

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]  # (asset id, status) after every change


F = TypeVar("F", bound=Callable[..., Any])


def _serialised(method: F) -> F:
    """Run the method under the book's lock (see ``AlertBook.__init__``)."""

    @functools.wraps(method)
    def run(self: AlertBook, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return cast(F, run)


def _priority(condition: Condition) -> int:
    """Notification order: a fault (2) before a warning (1) before the rest, cleared and what people did (0)."""
    return condition.rank


class AlertBook:
    """``AlertBook(store, settings, {asset_id: name}, targets)``; thread-safe through the store."""

    def __init__(self, store: AlertStore, settings: AlertsSettings, assets: Mapping[str, str],
                 targets: Sequence[str] = (), *, site: str = "edgewatch",
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.names = dict(assets)
        self.targets = tuple(targets)
        self.site = site
        self.clock = clock
        self.listeners: list[Listener] = []
        self._told: dict[str, dict[str, Any]] = {}  # asset -> the status listeners last heard
        # a check (worker thread) and a person (HTTP, MQTT thread) may change one asset at once:
        # each read-decide-write runs alone; another process (the CLI) is caught by the store
        self._lock = threading.RLock()

    # -- what the check loop asks and tells --------------------------------------------------------

    def quiet(self, asset: str) -> bool:
        """In planned maintenance now: no alerts, no escalations, no learning."""
        return self._maintenance(asset, self.clock()) is not None

    @_serialised
    def observe(self, verdict: Verdict, verdict_id: int | None) -> Alert | None:
        """Raise, worsen or clear ``verdict.asset_id``'s alert; nothing during maintenance."""
        asset, now = verdict.asset_id, self.clock()
        if self._maintenance(asset, now) is not None:
            return None
        current = self.store.open_alert(asset)
        muted = self.store.mode(asset).snoozed(now)
        if verdict.condition is Condition.OK:
            if current is None:
                return None
            changed = self.store.clear(current, now, self._notice(asset, "cleared", "back to normal", muted))
        else:
            line = headline(verdict, self.settings.actions).text
            if current is None:
                changed = self.store.raise_alert(asset, verdict.condition.value, line, verdict_id, now,
                                                 self._notice(asset, verdict.condition.value, line, muted,
                                                              priority=_priority(verdict.condition)))
            elif verdict.condition.rank > Condition(current.condition).rank:
                changed = self.store.worsen(current, verdict.condition.value, line, verdict_id, now,
                                            self._notice(asset, f"worse: {verdict.condition.value}", line, muted,
                                                         priority=_priority(verdict.condition)))
            else:
                return current
        self._changed(asset)
        return changed

    # -- what people do ----------------------------------------------------------------------------

    @_serialised
    def acknowledge(self, asset: str, by: str, note: str | None = None) -> Alert:
        self._known(asset)
        current = self.store.open_alert(asset)
        if current is None or current.state != "raised":
            raise ActionRefused(f"{asset} has no raised alert to acknowledge"
                                + ("" if current is None else f" (it is {current.state} by {current.acknowledged_by})"))
        done = self.store.acknowledge(current, by, note, self.clock(),
                                      self._notice(asset, f"acknowledged by {by}", note or current.headline))
        self._changed(asset)
        return done

    @_serialised
    def snooze(self, asset: str, by: str, duration_s: float | None = None, note: str | None = None) -> Mode:
        self._known(asset)
        duration_s = self.settings.snooze_default_s if duration_s is None else duration_s
        if not 0 < duration_s <= self.settings.snooze_max_s:
            raise ActionRefused(f"a snooze lasts more than 0 s and at most {self.settings.snooze_max_s:.0f} s "
                                f"(alerts.snooze_max_s), not {duration_s:g} s")
        until = self.clock() + duration_s
        return self._set_mode(asset, "snoozed", by, note, f"snoozed by {by} until {iso_time(until)}",
                              snoozed_until=until, snoozed_by=by)

    @_serialised
    def unsnooze(self, asset: str, by: str) -> Mode:
        self._known(asset)
        if not self.store.mode(asset).snoozed(self.clock()):
            raise ActionRefused(f"{asset} is not snoozed")
        return self._set_mode(asset, "unsnoozed", by, None, f"snooze ended by {by}", snoozed_until=None,
                              snoozed_by=None)

    @_serialised
    def start_maintenance(self, asset: str, by: str, note: str | None = None,
                          duration_s: float | None = None) -> Mode:
        """Planned downtime from now, until stopped (or for ``duration_s``)."""
        self._known(asset)
        longest = self.settings.maintenance_max_s
        if duration_s is not None and not 0 < duration_s <= longest:
            raise ActionRefused(f"a maintenance window lasts more than 0 s and at most {longest:.0f} s "
                                f"(alerts.maintenance_max_s), not {duration_s:g} s")
        now = self.clock()
        until = None if duration_s is None else now + duration_s
        ends = "until stopped" if until is None else f"until {iso_time(until)}"
        return self._set_mode(asset, "maintenance_started", by, note, f"maintenance started by {by}, {ends}",
                              maintenance_since=now, maintenance_until=until, maintenance_by=by,
                              maintenance_note=note)

    @_serialised
    def stop_maintenance(self, asset: str, by: str) -> Mode:
        self._known(asset)
        now = self.clock()
        if not self.store.mode(asset).in_maintenance(now):
            scheduled = self._maintenance(asset, now)
            raise ActionRefused(f"{asset} is not in maintenance started on demand"
                                + ("" if scheduled is None else " (a scheduled window ends by itself)"))
        return self._set_mode(asset, "maintenance_stopped", by, None, f"maintenance stopped by {by}",
                              maintenance_since=None, maintenance_until=None, maintenance_by=None,
                              maintenance_note=None)

    def _set_mode(self, asset: str, action: str, by: str, note: str | None, what: str, **changes: Any) -> Mode:
        """Store the asset's new snooze/maintenance with its audit entry and notification."""
        new = replace(self.store.mode(asset), **changes)
        detail = {key: value for key, value in changes.items() if key.endswith("_until")}
        # a repeat of the same action replaces its unsent notice: the newest one says it all
        notice = self._notice(asset, what, note or "", collapse_key=f"{action}:{asset}")
        self.store.set_mode(asset, new, action, by, note, self.clock(), notice, detail)
        self._changed(asset)
        return new

    # -- reading -----------------------------------------------------------------------------------

    def status(self, asset: str) -> dict[str, Any]:
        """The asset's alert and modes, as the API, the page and MQTT show them."""
        now = self.clock()
        alert = self.store.open_alert(asset)
        mode = self.store.mode(asset)
        maintenance = self._maintenance(asset, now)
        return {
            "asset": asset,
            "alert": None if alert is None else alert.to_dict(),
            "snoozed_until": mode.snoozed_until if mode.snoozed(now) else None,
            "maintenance": maintenance,
            "mode": "maintenance" if maintenance else "snoozed" if mode.snoozed(now) else "normal",
        }

    def _maintenance(self, asset: str, now: float) -> dict[str, Any] | None:
        mode = self.store.mode(asset)
        if mode.in_maintenance(now):
            return {"since": mode.maintenance_since, "until": mode.maintenance_until, "by": mode.maintenance_by,
                    "note": mode.maintenance_note, "scheduled": False}
        window = scheduled_window(self.settings.maintenance_schedule, asset, now, self.settings.timezone)
        if window is None:
            return None
        return {"since": window.start_s, "until": window.end_s, "by": None, "note": "scheduled", "scheduled": True}

    def _known(self, asset: str) -> None:
        if asset not in self.names:
            raise ActionRefused(f"no asset {asset!r}; known: {', '.join(sorted(self.names))}")

    def _notice(self, asset: str, what: str, detail: str, muted: bool = False, priority: int = 0,
                collapse_key: str | None = None) -> Notice | None:
        if muted or not self.targets:
            return None
        name = self.names.get(asset) or asset
        title = f"{name}: {what}" if self.site == "edgewatch" else f"{self.site} · {name}: {what}"
        return Notice(title, f"{detail}\n{iso_time(self.clock())}".strip(), self.targets, priority, collapse_key)

    @_serialised
    def refresh(self) -> None:
        """Tell listeners about changes no transition announces: a snooze or a maintenance window
        running out, a scheduled window starting (the service runs this periodically)."""
        for asset in self.names:
            status = self.status(asset)
            if status != self._told.get(asset):
                self._tell(asset, status)

    def _changed(self, asset: str) -> None:
        self._tell(asset, self.status(asset))

    def _tell(self, asset: str, status: dict[str, Any]) -> None:
        self._told[asset] = status
        for listener in self.listeners:
            try:
                listener(asset, status)
            except Exception:  # an output failing must not undo or block a stored transition
                log.exception("alert listener failed for %s", asset)
