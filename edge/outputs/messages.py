"""What a verdict becomes on MQTT: topics and JSON payloads (pure; the I/O is in ``mqtt.py``).

Topics under ``<prefix>/<asset>/``::

    verdict           every verdict, Verdict.to_dict() JSON            not retained
    state             compact current state (verdict, confidence...)   retained
    sensors/<name>    latest features of one sensor, units in names    retained
    check/set         command in: check now                             (empty or PRESS)
    escalate/set      command in: ask the cloud on the next check       (empty or PRESS)
    alert             the asset's alert, snooze and maintenance         retained
    acknowledge/set   command in: acknowledge the alert   (a name, or JSON {"by", "note"})
    snooze/set        command in: snooze for N seconds    (N, OFF, or JSON {"duration_s", "by", "note", "off"})
    maintenance/set   command in: planned maintenance     (ON/OFF, or JSON {"on", "by", "note", "duration_s"})

Commands are obeyed only when ``outputs.mqtt.commands`` lists them; their payload schema is in
``edge/alerts/mqtt_commands.py``.

and one availability topic per board, ``<prefix>/_boards/<client_id>/availability``
(``online``/``offline``; ``offline`` is the last will). Asset ids cannot start with '_', so the
board topics never collide with an asset.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge.evidence import Condition, EvidenceKind, Verdict, dumps, iso_time

COMMANDS = ("check", "escalate")
ALERT_COMMANDS = ("acknowledge", "snooze", "maintenance")
# Evidence from these kinds is published per sensor (an unhealthy sensor as healthy: false);
# vision and camera health stay in the verdict.
SENSOR_KINDS = frozenset({EvidenceKind.VIBRATION, EvidenceKind.THERMAL, EvidenceKind.SENSOR,
                          EvidenceKind.SENSOR_HEALTH})


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True)
class Topics:
    """Every topic name, in one place, so the sink, discovery and docs agree."""

    prefix: str
    client_id: str

    def base(self, asset_id: str) -> str:
        return f"{self.prefix}/{asset_id}"

    def verdict(self, asset_id: str) -> str:
        return f"{self.base(asset_id)}/verdict"

    def state(self, asset_id: str) -> str:
        return f"{self.base(asset_id)}/state"

    def sensor(self, asset_id: str, sensor: str) -> str:
        return f"{self.base(asset_id)}/sensors/{sensor}"

    def alert(self, asset_id: str) -> str:
        return f"{self.base(asset_id)}/alert"

    def command(self, asset_id: str, command: str) -> str:
        return f"{self.base(asset_id)}/{command}/set"

    @property
    def availability(self) -> str:
        return f"{self.prefix}/_boards/{self.client_id}/availability"

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """'<prefix>/<asset>/check/set' -> ('<asset>', 'check'); None for any other topic."""
        head = f"{self.prefix}/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head):].split("/")
        if len(parts) != 3 or parts[2] != "set" or parts[1] not in COMMANDS + ALERT_COMMANDS:
            return None
        return parts[0], parts[1]


def state_payload(verdict: Verdict) -> dict[str, Any]:
    """The retained summary Home Assistant entities read; ``needs_attention`` = not ok."""
    return {
        "verdict": verdict.condition.value,
        "confidence": round(verdict.confidence, 4),
        "needs_attention": verdict.condition is not Condition.OK,
        "reasons": list(verdict.reasons),
        "escalated": verdict.escalated,
        "timestamp": verdict.timestamp,
        "checked_at": iso_time(verdict.timestamp),
    }


def sensor_features(verdict: Verdict) -> dict[str, dict[str, Any]]:
    """sensor name -> its numeric features, condition and health, from the verdict's evidence."""
    sensors: dict[str, dict[str, Any]] = {}
    for item in verdict.evidence:
        if item.kind not in SENSOR_KINDS:
            continue
        name = item.source.split(":", 1)[-1]
        features = {
            key: value for key, value in item.values.items()
            if isinstance(value, numbers.Real) and not isinstance(value, bool)
        }
        sensors.setdefault(name, {}).update(
            features,
            condition=None if item.condition is None else item.condition.value,
            healthy=item.kind is not EvidenceKind.SENSOR_HEALTH,
            timestamp=item.timestamp or verdict.timestamp,
        )
    return sensors


def verdict_messages(verdict: Verdict, topics: Topics) -> list[Message]:
    """The messages one verdict produces: the verdict itself, the retained state and sensors."""
    asset = verdict.asset_id
    messages = [
        Message(topics.verdict(asset), dumps(verdict.to_dict()), retain=False),
        Message(topics.state(asset), dumps(state_payload(verdict)), retain=True),
    ]
    for name, features in sensor_features(verdict).items():
        messages.append(Message(topics.sensor(asset, name), dumps(features), retain=True))
    return messages


def alert_message(status: Mapping[str, Any], topics: Topics) -> Message:
    """The retained alert topic: ``AlertBook.status`` plus the flat fields Home Assistant templates read."""
    alert = status.get("alert") or {}
    payload = {**status, "state": alert.get("state", "none"), "headline": alert.get("headline"),
               "maintenance_on": "ON" if status.get("mode") == "maintenance" else "OFF"}
    return Message(topics.alert(str(status["asset"])), dumps(payload), retain=True)
