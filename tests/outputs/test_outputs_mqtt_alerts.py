"""Alerts over MQTT against a real Mosquitto broker: the retained alert topic, the commands Home
Assistant's acknowledge button, snooze button and maintenance switch send, and their discovery."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from bench.samples import asset, verdict
from edge.alerts import mqtt_commands
from edge.alerts.config import AlertsSettings
from edge.alerts.lifecycle import AlertBook
from edge.evidence import Condition
from edge.outputs.config import MqttSettings
from edge.outputs.mqtt import MqttSink
from edge.store.alerts import AlertStore
from tests.alerts_support import Clock, bearing_fault
from tests.outputs_support import Listener

ASSETS = [asset("press-1", "Hydraulic press 1"), asset("pump-2", "Coolant pump")]


@pytest.fixture()
def prefix(request: pytest.FixtureRequest) -> str:
    return f"ewa-{request.node.name.replace('_', '-')[:40]}"


@pytest.fixture()
def wired(mqtt_broker: tuple[str, int], prefix: str, tmp_path: Path) -> Iterator[tuple[MqttSink, AlertBook, Clock]]:
    clock = Clock()
    book = AlertBook(AlertStore(tmp_path / "alerts.sqlite3"), AlertsSettings(), {a.id: a.name for a in ASSETS},
                     clock=clock)
    settings = MqttSettings.model_validate({"host": mqtt_broker[0], "port": mqtt_broker[1], "topic_prefix": prefix,
                                            "discovery_prefix": f"{prefix}-ha", "reconnect_min_s": 0.1,
                                            "reconnect_max_s": 0.5,
                                            "commands": ["check", "escalate", "acknowledge", "snooze", "maintenance"]})
    sink = MqttSink(settings, ASSETS, lambda asset, command: None, site="test site",
                    on_alert=functools.partial(mqtt_commands.apply, book))
    book.listeners.append(sink.publish_alert)
    book.refresh()  # as build_outputs does: every asset's alert topic exists from the start
    sink.start()
    assert sink.wait_connected(5)
    yield sink, book, clock
    sink.close()
    book.store.close()


def wait_for(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)
    assert condition(), "the command did not arrive"  # type: ignore[operator]


def test_each_transition_through_mqtt(mqtt_broker: tuple[str, int], wired, prefix: str) -> None:
    _, book, clock = wired
    listener = Listener(*mqtt_broker, f"{prefix}/press-1/alert")
    assert listener.wait_json(f"{prefix}/press-1/alert")["state"] == "none"  # retained from the start
    book.observe(bearing_fault("press-1", clock.now), 12)
    raised = listener.wait_json(f"{prefix}/press-1/alert")
    assert raised["state"] == "raised" and raised["headline"].startswith("Outer-race bearing defect, drive end")

    listener.publish(f"{prefix}/press-1/acknowledge/set", json.dumps({"by": "anna", "note": "ordered"}).encode())
    acked = listener.wait_json(f"{prefix}/press-1/alert")
    assert acked["state"] == "acknowledged" and acked["alert"]["acknowledged_by"] == "anna"

    listener.publish(f"{prefix}/press-1/snooze/set", b"3600")  # what the HA snooze button sends
    snoozed = listener.wait_json(f"{prefix}/press-1/alert")
    assert snoozed["mode"] == "snoozed" and snoozed["snoozed_until"] == clock.now + 3600

    clock.now += 3601
    book.refresh()  # what the service runs every 30 s: the snooze ran out
    assert listener.wait_json(f"{prefix}/press-1/alert")["mode"] == "normal"

    listener.publish(f"{prefix}/press-1/maintenance/set", b"ON")  # the HA switch
    on = listener.wait_json(f"{prefix}/press-1/alert")
    assert on["maintenance_on"] == "ON" and on["maintenance"]["by"] == "mqtt"
    assert book.quiet("press-1")
    listener.publish(f"{prefix}/press-1/maintenance/set", b"OFF")
    assert listener.wait_json(f"{prefix}/press-1/alert")["maintenance_on"] == "OFF"

    book.observe(verdict("press-1", Condition.OK, 0.95, clock.now), 13)
    cleared = listener.wait_json(f"{prefix}/press-1/alert")
    assert cleared["state"] == "none" and cleared["alert"] is None
    listener.publish(f"{prefix}/press-1/acknowledge/set", b"PRESS")  # nothing to acknowledge: logged, no change
    listener.close()
    late = Listener(*mqtt_broker, f"{prefix}/press-1/alert")  # retained for whoever subscribes later
    payload, retained = late.wait(f"{prefix}/press-1/alert")
    assert retained and json.loads(payload)["state"] == "none"
    late.close()
    actions = [e.action for e in reversed(book.store.events("press-1"))]
    assert actions == ["raised", "acknowledged", "snoozed", "maintenance_started", "maintenance_stopped", "cleared"]


def test_home_assistant_gets_an_acknowledge_button_and_a_maintenance_switch(
        mqtt_broker: tuple[str, int], wired, prefix: str) -> None:
    _, book, clock = wired
    book.start_maintenance("pump-2", "ben", "seal change")
    listener = Listener(*mqtt_broker, f"{prefix}-ha/#", f"{prefix}/+/alert")
    found = listener.collect()
    configs = {t: json.loads(p) for t, p in found.items() if t.startswith(f"{prefix}-ha/")}
    assert len(configs) == 2 * 10  # 6 verdict entities + alert, acknowledge, snooze, maintenance per asset
    switch = next(c for t, c in configs.items() if "/switch/" in t and "pump-2" in t)
    assert switch["command_topic"] == f"{prefix}/pump-2/maintenance/set"
    assert (switch["payload_on"], switch["payload_off"]) == ("ON", "OFF")
    state = json.loads(found[switch["state_topic"]])
    assert jinja2.Template(switch["value_template"]).render(value_json=state) == "ON"
    button = next(c for t, c in configs.items() if t.endswith("/acknowledge/config") and "press-1" in t)
    assert button["command_topic"] == f"{prefix}/press-1/acknowledge/set"
    alert = next(c for t, c in configs.items() if t.endswith("/alert/config") and "press-1" in t)
    assert jinja2.Template(alert["value_template"]).render(value_json=json.loads(found[alert["state_topic"]])) \
        == "none" and "expire_after" not in alert

    listener.publish(button["command_topic"], button["payload_press"].encode())
    book.observe(bearing_fault("press-1", clock.now), 1)  # raised after the press: the press found nothing
    listener.publish(button["command_topic"], button["payload_press"].encode())
    wait_for(lambda: book.store.open_alert("press-1").state == "acknowledged")  # type: ignore[union-attr]
    assert book.store.open_alert("press-1").acknowledged_by == "mqtt"  # type: ignore[union-attr]
    listener.close()
