"""The check loop with the alert lifecycle: planned maintenance means no alert, no escalation and
no learning; outside it each verdict raises or clears the asset's alert. Real sensors (replayed),
real vision (the demo bundle), real SQLite; the cloud is the only stand-in."""

from __future__ import annotations

from pathlib import Path

from edge.alerts.config import AlertsSettings
from edge.alerts.lifecycle import AlertBook
from edge.service.loop import Service
from edge.store.alerts import AlertStore
from edge.store.history import History
from edge.vision.encoder import ImageEncoder
from tests.service_support import (
    INTERVAL_S,
    FakeClock,
    InlineExecutor,
    RecordingEscalator,
    polled,
    press,
    replay_temperature,
)


def test_maintenance_silences_alerts_and_escalation_then_verdicts_raise_and_clear(
        tmp_path: Path, encoder: ImageEncoder) -> None:
    clock = FakeClock()
    escalator = RecordingEscalator()
    alerts = AlertBook(AlertStore(tmp_path / "alerts.sqlite3"), AlertsSettings(), {"press-1": "Press 1"},
                       clock=clock.time)
    alerts.start_maintenance("press-1", "ben", "hydraulic oil change", duration_s=1.5 * INTERVAL_S)
    with History(tmp_path / "h.sqlite3") as history:
        # frames: normal x3, red-hot, normal; the motor overheats during the maintenance window
        asset = press(encoder, replay_temperature(tmp_path, [95.0, 96.0, 41.0, 42.0, 43.0]), clock)
        Service([asset], history, escalator=escalator, clock=clock, executor=InlineExecutor(), max_checks=5,
                alerts=alerts).run()
        stored = list(reversed(history.verdicts(limit=None)))
    assert [s.verdict.condition.value for s in stored] == ["fault", "fault", "ok", "fault", "ok"]
    assert [item[0] for item in escalator.submitted] == [s.id for s in stored[2:]]  # none in maintenance
    events = [(e.action, e.alert_id is not None) for e in reversed(alerts.store.events("press-1"))]
    assert events == [("maintenance_started", False), ("raised", True), ("cleared", True)]
    raised = alerts.store.alerts("press-1")[0]
    assert raised.verdict_id == stored[3].id and raised.headline == "Red-hot panel, panel - inspect the machine now"
    alerts.store.close()


def test_sensors_do_not_learn_during_maintenance(tmp_path: Path) -> None:
    clock = FakeClock()
    sensors = polled(replay_temperature(tmp_path, [40.0, 41.0, 42.0]), clock)
    before = sensors.analyzer.state_dict()
    assert [e.condition.value for e in sensors.evidence(learn=False) if e.condition] == ["ok"]
    assert sensors.analyzer.state_dict() == before  # judged, not learned from
    clock.now_s += INTERVAL_S  # the next reading, judged outside maintenance, is learned from
    sensors.poller.poll("motor")
    sensors.evidence()
    assert sensors.analyzer.state_dict() != before
    sensors.close()
