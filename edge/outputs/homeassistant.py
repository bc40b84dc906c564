"""Home Assistant MQTT discovery: each asset's entities declared as data, turned into payloads.

One HA device per asset. Its entities read the retained ``state`` topic (verdict, confidence,
needs attention, last check) or a ``sensors/<name>`` topic (one entity per feature whose name
ends in a unit we know, e.g. ``velocity_rms_mm_s`` or ``temp_c``); two buttons send the
``check/set`` and ``escalate/set`` commands. With alerts on, an alert sensor, acknowledge and
snooze buttons and a maintenance switch work on the retained ``alert`` topic and its commands.
Buttons and switches are declared only for the commands the board obeys (``outputs.mqtt.commands``).
Every entity shares the board's availability topic, so HA greys them out when the board's last will says ``offline``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from edge import __version__
from edge.evidence import dumps
from edge.outputs.assets import DescribedAsset
from edge.outputs.messages import Message, Topics

HA_STATUS_SUFFIX = "status"  # <discovery_prefix>/status carries 'online' when HA (re)starts


@dataclass(frozen=True)
class EntityDescription:
    """One entity of an asset. ``sensor`` None: reads the asset's state topic; else that sensor's topic."""

    key: str
    component: str  # sensor | binary_sensor | button
    name: str
    value_template: str | None = None
    command: str | None = None  # buttons and switches: the command topic they send to
    sensor: str | None = None
    alert: bool = False  # reads the asset's alert topic instead of its state topic
    payload_press: str = "PRESS"
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    icon: str | None = None
    entity_category: str | None = None
    options: tuple[str, ...] = ()
    attributes: bool = False  # expose the whole state JSON (reasons, ...) as attributes


ASSET_ENTITIES: tuple[EntityDescription, ...] = (
    EntityDescription("verdict", "sensor", "Verdict", "{{ value_json.verdict }}", device_class="enum",
                      options=("ok", "warning", "fault"), icon="mdi:factory", attributes=True),
    EntityDescription("confidence", "sensor", "Confidence", "{{ (value_json.confidence * 100) | round(1) }}",
                      unit="%", state_class="measurement", icon="mdi:gauge"),
    EntityDescription("needs_attention", "binary_sensor", "Needs attention",
                      "{{ 'ON' if value_json.needs_attention else 'OFF' }}", device_class="problem"),
    EntityDescription("last_check", "sensor", "Last check", "{{ value_json.checked_at }}",
                      device_class="timestamp", entity_category="diagnostic"),
    EntityDescription("check", "button", "Check now", command="check", icon="mdi:magnify-scan"),
    EntityDescription("escalate", "button", "Escalate", command="escalate", icon="mdi:cloud-upload"),
)
# with alerts on (the sink is given an alert command handler)
ALERT_ENTITIES: tuple[EntityDescription, ...] = (
    EntityDescription("alert", "sensor", "Alert", "{{ value_json.state }}", alert=True, device_class="enum",
                      options=("none", "raised", "acknowledged"), icon="mdi:alert", attributes=True),
    EntityDescription("acknowledge", "button", "Acknowledge alert", command="acknowledge", icon="mdi:check-circle"),
    EntityDescription("snooze", "button", "Snooze alerts 1 h", command="snooze", icon="mdi:bell-sleep",
                      payload_press="3600"),
    EntityDescription("maintenance", "switch", "Maintenance", "{{ value_json.maintenance_on }}", command="maintenance",
                      alert=True, icon="mdi:wrench"),
)


@dataclass(frozen=True)
class UnitSuffix:
    """A feature-name ending (house style: units in names) and what HA should show for it."""

    suffix: str
    unit: str
    device_class: str | None = None


# Longest suffixes first: '_mm_s' must win over a shorter ending.
UNIT_SUFFIXES: tuple[UnitSuffix, ...] = (
    UnitSuffix("_mm_s", "mm/s"),  # vibration velocity: not a "speed" to HA
    UnitSuffix("_rpm", "rpm"),
    UnitSuffix("_bar", "bar", "pressure"),
    UnitSuffix("_kpa", "kPa", "pressure"),
    UnitSuffix("_pct", "%"),
    UnitSuffix("_hz", "Hz", "frequency"),
    UnitSuffix("_c", "°C", "temperature"),
    UnitSuffix("_f", "°F", "temperature"),
    UnitSuffix("_a", "A", "current"),
    UnitSuffix("_v", "V", "voltage"),
    UnitSuffix("_w", "W", "power"),
    UnitSuffix("_g", "g"),
)


def feature_entity(sensor: str, feature: str) -> EntityDescription | None:
    """The entity for one sensor feature, or None when its name carries no unit we know."""
    for item in UNIT_SUFFIXES:
        if feature.endswith(item.suffix) and len(feature) > len(item.suffix):
            words = feature[: -len(item.suffix)].replace("_", " ")
            return EntityDescription(
                key=f"{sensor}_{feature}", component="sensor", name=f"{sensor.replace('_', ' ')} {words}",
                value_template=f"{{{{ value_json['{feature}'] }}}}", sensor=sensor, unit=item.unit,
                device_class=item.device_class, state_class="measurement",
            )
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


@dataclass(frozen=True)
class Discovery:
    """Builds the retained discovery messages of each asset under ``discovery_prefix``."""

    discovery_prefix: str
    topics: Topics

    @property
    def status_topic(self) -> str:
        return f"{self.discovery_prefix}/{HA_STATUS_SUFFIX}"

    def node_id(self, asset: DescribedAsset) -> str:
        # Unique exactly when the asset's topics are: two boards sharing prefix and asset id collide anyway.
        return _slug(f"{self.topics.prefix}_{asset.id}")

    def topic(self, asset: DescribedAsset, entity: EntityDescription) -> str:
        return f"{self.discovery_prefix}/{entity.component}/{self.node_id(asset)}/{_slug(entity.key)}/config"

    def config(self, asset: DescribedAsset, entity: EntityDescription) -> dict[str, Any]:
        """The discovery payload of one entity (full key names, not HA's abbreviations)."""
        node = self.node_id(asset)
        payload: dict[str, Any] = {
            "name": entity.name,
            "unique_id": f"{node}_{_slug(entity.key)}",
            "availability": [{"topic": self.topics.availability}],
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": {
                "identifiers": [node],
                "name": asset.name or asset.id,
                "manufacturer": "edgewatch",
                "model": "edgewatch machine monitor",
                "sw_version": __version__,
            },
            "origin": {"name": "edgewatch", "sw_version": __version__},
        }
        if entity.command is not None:
            payload["command_topic"] = self.topics.command(asset.id, entity.command)
            if entity.component == "button":
                payload["payload_press"] = entity.payload_press
            else:
                payload.update(payload_on="ON", payload_off="OFF", state_on="ON", state_off="OFF")
        if entity.value_template is not None:
            state_topic = (self.topics.alert(asset.id) if entity.alert else self.topics.state(asset.id)
                           if entity.sensor is None else self.topics.sensor(asset.id, entity.sensor))
            payload["state_topic"] = state_topic
            payload["value_template"] = entity.value_template
            if not entity.alert:  # a board that stops checking turns its entities unavailable; alerts change rarely
                payload["expire_after"] = int(3 * asset.check_interval_s + 60)
            if entity.attributes:
                payload["json_attributes_topic"] = state_topic
        optional = {
            "unit_of_measurement": entity.unit, "device_class": entity.device_class,
            "state_class": entity.state_class, "icon": entity.icon, "entity_category": entity.entity_category,
            "options": list(entity.options) or None,
        }
        payload.update({key: value for key, value in optional.items() if value is not None})
        return payload

    def messages(self, asset: DescribedAsset, features: Iterable[tuple[str, str]] = (),
                 alerts: bool = False, commands: Collection[str] = ()) -> list[Message]:
        """Retained discovery messages for the asset's fixed entities (and its alert ones) and the
        given (sensor, feature)s; buttons and switches only for the ``commands`` the board obeys."""
        entities = [e for e in ASSET_ENTITIES + (ALERT_ENTITIES if alerts else ())
                    if e.command is None or e.command in commands]
        entities += [e for e in (feature_entity(s, f) for s, f in sorted(features)) if e is not None]
        return [Message(self.topic(asset, e), dumps(self.config(asset, e)), retain=True) for e in entities]
