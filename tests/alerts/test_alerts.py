"""Alert lifecycle per asset on a real SQLite store, with an injected clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bench.samples import verdict
from edge.alerts.config import AlertsSettings, MaintenanceWindow
from edge.alerts.headline import headline
from edge.alerts.lifecycle import AlertBook
from edge.alerts.schedule import scheduled_window
from edge.errors import ActionRefused, StorageError
from edge.evidence import Condition, Evidence, EvidenceKind, Verdict
from edge.store.alerts import AlertStore
from edge.store.notifications import NotificationQueue


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def book(path: Path, clock: Clock, **settings: object) -> AlertBook:
    return AlertBook(AlertStore(path / "alerts.sqlite3"), AlertsSettings.model_validate(settings),
                     {"press-1": "Hydraulic press 1", "pump-2": "Coolant pump"}, ["mail", "hook"], clock=clock)


def bearing_verdict(condition: Condition = Condition.FAULT) -> Verdict:
    evidence = (Evidence("vibration:drive_end", EvidenceKind.VIBRATION, condition, 0.9,
                         ("envelope peak at 108.0 Hz = 3.61 x shaft",), {"velocity_rms_mm_s": 7.1},
                         fault_type="outer_race"),
                Evidence("temperature:motor", EvidenceKind.THERMAL, Condition.WARNING, 0.95, ("hot",), {}))
    return Verdict("press-1", condition, 0.9, ("envelope peak ...",), evidence, 1_790_000_000.0)


def test_headline_names_the_fault_the_place_and_the_action() -> None:
    line = headline(bearing_verdict())
    assert line.text == "Outer-race bearing defect, drive end - plan a bearing replacement"
    custom = headline(bearing_verdict(), {"outer_race": "order bearing SKF 6205 and book a stop"})
    assert custom.action == "order bearing SKF 6205 and book a stop"
    # no fault type: the kind of evidence and the condition decide
    assert headline(verdict("press-1", Condition.WARNING)).text.startswith("High vibration, drive end - inspect")
    assert headline(verdict("press-1", Condition.OK)).text == "Running normally"
    # a vision label is shown as written
    seen = Verdict("press-1", Condition.FAULT, 0.8, (), (Evidence("vision:top", EvidenceKind.VISION, Condition.FAULT,
                                                                   0.8, (), {}, fault_type="oil_leak"),), 0.0)
    assert headline(seen).text == "Oil leak, top - inspect the machine now"


def test_raise_acknowledge_clear_with_audit_and_notifications(tmp_path: Path) -> None:
    clock = Clock()
    alerts = book(tmp_path, clock)
    changes: list[tuple[str, str]] = []
    alerts.listeners.append(lambda asset, status: changes.append((asset, status["alert"]["state"]
                                                                  if status["alert"] else "none")))
    raised = alerts.observe(bearing_verdict(Condition.WARNING), 7)
    assert raised is not None and (raised.state, raised.condition, raised.verdict_id) == ("raised", "warning", 7)
    assert alerts.observe(bearing_verdict(Condition.WARNING), 8) == raised  # same condition: no transition
    clock.now += 60
    with pytest.raises(ActionRefused, match="no raised alert"):
        alerts.acknowledge("pump-2", "anna")
    acked = alerts.acknowledge("press-1", "anna", "bearing ordered")
    assert (acked.state, acked.acknowledged_by, acked.note) == ("acknowledged", "anna", "bearing ordered")
    with pytest.raises(ActionRefused, match="acknowledged by anna"):
        alerts.acknowledge("press-1", "ben")
    clock.now += 60
    worse = alerts.observe(bearing_verdict(Condition.FAULT), 9)
    assert worse is not None and (worse.state, worse.condition, worse.id) == ("raised", "fault", raised.id)
    clock.now += 60
    cleared = alerts.observe(verdict("press-1", Condition.OK), 10)
    assert cleared is not None and cleared.state == "cleared" and cleared.cleared_at == clock.now
    assert alerts.store.open_alert("press-1") is None
    assert [e.action for e in reversed(alerts.store.events("press-1"))] == [
        "raised", "acknowledged", "worsened", "cleared"]
    assert changes == [("press-1", "raised"), ("press-1", "acknowledged"), ("press-1", "raised"), ("press-1", "none")]
    queue = NotificationQueue(alerts.store)
    due = queue.due(clock.now, limit=100)
    assert len(due) == 8 and {item.target for item in due} == {"mail", "hook"}  # one per transition per target
    assert len({item.key for item in due}) == 8
    assert "Outer-race bearing defect, drive end" in due[0].body
    # worst news first (the fault, then the warning), then the rest in the order it happened
    assert [item.title.split(": ", 1)[1] for item in due[::2]] == [
        "worse: fault", "warning", "acknowledged by anna", "cleared"]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    alerts = book(tmp_path, clock)
    alerts.observe(bearing_verdict(), 1)
    alerts.acknowledge("press-1", "anna", "on it")
    alerts.snooze("pump-2", "ben", 600)
    alerts.start_maintenance("pump-2", "ben", "seal change")
    alerts.store.close()
    again = book(tmp_path, clock)
    assert again.status("press-1")["alert"]["acknowledged_by"] == "anna"
    status = again.status("pump-2")
    assert status["mode"] == "maintenance" and status["maintenance"]["note"] == "seal change"
    assert status["snoozed_until"] == clock.now + 600


def test_maintenance_means_no_alerts_and_quiet(tmp_path: Path) -> None:
    clock = Clock()
    alerts = book(tmp_path, clock)
    alerts.start_maintenance("press-1", "anna", "bearing swap", duration_s=3600)
    assert alerts.quiet("press-1") and not alerts.quiet("pump-2")
    assert alerts.observe(bearing_verdict(), 1) is None and alerts.store.open_alert("press-1") is None
    clock.now += 3601  # the window ran out by itself
    assert not alerts.quiet("press-1")
    assert alerts.observe(bearing_verdict(), 2) is not None
    alerts.start_maintenance("press-1", "anna")
    alerts.stop_maintenance("press-1", "anna")
    with pytest.raises(ActionRefused, match="not in maintenance"):
        alerts.stop_maintenance("press-1", "anna")


def test_snooze_mutes_verdict_notifications_but_not_people(tmp_path: Path) -> None:
    clock = Clock()
    alerts = book(tmp_path, clock)
    queue = NotificationQueue(alerts.store)
    alerts.snooze("press-1", "anna", 600, "known, waiting for parts")
    assert len(queue.due(clock.now, 100)) == 2  # the snooze itself, to both targets
    alerts.observe(bearing_verdict(), 1)
    assert alerts.store.open_alert("press-1") is not None and len(queue.due(clock.now, 100)) == 2
    clock.now += 601
    alerts.observe(verdict("press-1", Condition.OK), 2)
    assert len(queue.due(clock.now, 100)) == 4  # snooze over: the clear is told
    with pytest.raises(ActionRefused, match="at most"):
        alerts.snooze("press-1", "anna", 30 * 86400)


def test_scheduled_maintenance_window(tmp_path: Path) -> None:
    window = MaintenanceWindow(days=["sat"], start="22:00", duration_min=240, assets=["press-1"])
    saturday_23h = dt.datetime(2026, 11, 28, 23, 0, tzinfo=dt.timezone.utc).timestamp()
    found = scheduled_window([window], "press-1", saturday_23h, "UTC")
    assert found is not None and found.end_s - saturday_23h == 3 * 3600
    assert scheduled_window([window], "press-1", saturday_23h + 3 * 3600 - 1, "UTC") is not None  # past midnight
    assert scheduled_window([window], "press-1", saturday_23h + 3 * 3600, "UTC") is None
    assert scheduled_window([window], "pump-2", saturday_23h, "UTC") is None
    berlin = scheduled_window([window], "press-1", saturday_23h, "Europe/Berlin")  # 00:00 Sunday there
    assert berlin is not None
    alerts = book(tmp_path, Clock(saturday_23h), timezone="UTC", maintenance_schedule=[window.model_dump()])
    assert alerts.quiet("press-1") and alerts.status("press-1")["maintenance"]["scheduled"] is True
    with pytest.raises(ActionRefused, match="ends by itself"):
        alerts.stop_maintenance("press-1", "anna")


def test_config_refuses_bad_alert_settings() -> None:
    with pytest.raises(ValueError, match="24-hour"):
        MaintenanceWindow(days=["mon"], start="25:00", duration_min=60)
    with pytest.raises(ValueError, match="IANA"):
        AlertsSettings(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match=r"notify\[0\] is not an apprise URL .*an unset \$\{ENV\}"):
        AlertsSettings.model_validate({"notify": [""]})


def test_a_change_made_meanwhile_by_another_process_is_refused_whole(tmp_path: Path) -> None:
    clock = Clock()
    alerts = book(tmp_path, clock)
    raised = alerts.observe(bearing_verdict(), 1)
    assert raised is not None
    other = AlertStore(tmp_path / "alerts.sqlite3")  # e.g. `edgewatch alerts ack` beside the service
    other.acknowledge(raised, "ben", None, clock.now, None)
    events = len(alerts.store.events())
    with pytest.raises(StorageError, match="changed meanwhile"):
        alerts.store.acknowledge(raised, "anna", None, clock.now, None)  # decided on the stale row
    assert len(alerts.store.events()) == events  # rolled back: no audit entry, no notification
    assert alerts.store.open_alert("press-1").acknowledged_by == "ben"  # type: ignore[union-attr]
    other.close()
