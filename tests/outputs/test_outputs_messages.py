"""The pure parts of the outputs: topics, payloads, discovery entities, metrics bookkeeping."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.samples import asset, verdict
from edge.evidence import Condition, Evidence, EvidenceKind, dumps
from edge.outputs.homeassistant import ASSET_ENTITIES, UNIT_SUFFIXES, Discovery, feature_entity
from edge.outputs.messages import COMMANDS, Topics, sensor_features, verdict_messages
from edge.outputs.metrics import Metrics

TOPICS = Topics("edgewatch/plant3", "edgewatch-line2")
asset_ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)


@given(asset_ids, st.sampled_from(COMMANDS))
def test_command_topics_parse_back(asset_id: str, command: str) -> None:
    assert TOPICS.parse_command(TOPICS.command(asset_id, command)) == (asset_id, command)


@pytest.mark.parametrize("topic", [
    "edgewatch/plant3/press-1/verdict", "edgewatch/plant3/press-1/reboot/set", "other/press-1/check/set",
    "edgewatch/plant3/press-1/check/set/extra", "edgewatch/plant3/check/set",
])
def test_other_topics_are_not_commands(topic: str) -> None:
    assert TOPICS.parse_command(topic) is None


def test_dumps_is_strict_json() -> None:
    text = dumps({"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": (float("inf"), np.int64(2))})
    assert json.loads(text) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": [None, 2]}


def test_sensor_features_keep_numbers_of_sensor_evidence_only() -> None:
    base = verdict()
    odd = Evidence("pressure:line", EvidenceKind.SENSOR, Condition.OK, 0.8, (),
                   {"value_bar": np.float64(3.2), "stuck": True, "label": "x"})
    stale = Evidence("current:motor_a", EvidenceKind.SENSOR_HEALTH, None, 0.9, ("sensor unhealthy: stale",))
    features = sensor_features(replace(base, evidence=(*base.evidence, odd, stale)))
    assert set(features) == {"drive_end", "motor", "line", "motor_a"}  # no 'top': vision stays in the verdict
    assert features["line"] == {"value_bar": 3.2, "condition": "ok", "healthy": True, "timestamp": base.timestamp}
    assert features["motor_a"]["healthy"] is False and features["motor_a"]["condition"] is None
    assert "iso_zone" not in features["drive_end"]


def test_one_verdict_makes_one_event_and_retained_state() -> None:
    messages = verdict_messages(verdict(), TOPICS)
    assert [(m.topic.removeprefix("edgewatch/plant3/press-1/"), m.retain) for m in messages] == [
        ("verdict", False), ("state", True), ("sensors/drive_end", True), ("sensors/motor", True)]


@pytest.mark.parametrize("unit", UNIT_SUFFIXES, ids=lambda unit: unit.suffix)
def test_every_unit_suffix_makes_a_measurement_entity(unit) -> None:  # type: ignore[no-untyped-def]
    entity = feature_entity("drive_end", f"level{unit.suffix}")
    assert entity is not None and entity.unit == unit.unit and entity.state_class == "measurement"
    assert entity.sensor == "drive_end" and entity.value_template == f"{{{{ value_json['level{unit.suffix}'] }}}}"


@pytest.mark.parametrize("feature", ["kurtosis", "iso_zone", "_c", "crest_factor"])
def test_features_without_a_unit_get_no_entity(feature: str) -> None:
    assert feature_entity("drive_end", feature) is None


def test_longer_suffixes_win() -> None:
    entity = feature_entity("drive_end", "velocity_rms_mm_s")
    assert entity is not None and entity.unit == "mm/s" and entity.name == "drive end velocity rms"


def test_discovery_topics_and_ids_are_unique_per_asset_and_prefix() -> None:
    discovery = Discovery("homeassistant", TOPICS)
    messages = discovery.messages(asset("press-1"), [("motor", "temp_c"), ("drive_end", "kurtosis")],
                                  commands=("check", "escalate"))
    assert len(messages) == len(ASSET_ENTITIES) + 1  # kurtosis has no unit
    no_buttons = discovery.messages(asset("press-1"))  # commands off: nothing to press
    assert len(no_buttons) == len(ASSET_ENTITIES) - 2 and not any("/button/" in m.topic for m in no_buttons)
    other = Discovery("homeassistant", Topics("edgewatch/plant4", "x")).messages(asset("press-1"))
    ids = {json.loads(m.payload)["unique_id"] for m in messages + other}
    assert len(ids) == len(messages) + len(other)
    assert all(m.retain and m.topic.startswith("homeassistant/") for m in messages)


def test_metrics_follow_the_evidence_health() -> None:
    metrics = Metrics({"press-1": 60.0})
    base = verdict(condition=Condition.FAULT, escalated=True)
    dark = Evidence("camera:top", EvidenceKind.CAMERA_HEALTH, None, 0.0, ("frame is black",))
    stale = Evidence("vibration:drive_end", EvidenceKind.SENSOR_HEALTH, None, 0.9, ("sensor unhealthy: stale",))
    metrics.publish(replace(base, evidence=(dark, stale, base.evidence[2])))
    value = metrics.registry.get_sample_value
    assert value("edgewatch_camera_up", {"asset": "press-1", "camera": "top"}) == 0
    assert value("edgewatch_sensor_up", {"asset": "press-1", "sensor": "motor"}) == 1
    assert value("edgewatch_sensor_up", {"asset": "press-1", "sensor": "drive_end"}) == 0
    metrics.publish(base)  # the camera scores a frame again
    assert value("edgewatch_camera_up", {"asset": "press-1", "camera": "top"}) == 1
    assert value("edgewatch_escalations_total", {"asset": "press-1"}) == 2
    assert value("edgewatch_condition", {"asset": "press-1"}) == 2
    metrics.cloud_usage(input_tokens=1200, output_tokens=80, cost_usd=0.0031)
    metrics.set_outbox_depth(3)
    assert value("edgewatch_cloud_tokens_total", {"kind": "input"}) == 1200
    assert value("edgewatch_cloud_cost_usd_total", {}) == pytest.approx(0.0031)
    assert value("edgewatch_outbox_depth", {}) == 3
