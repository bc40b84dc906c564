"""Sensor configs for tests, validated as the config loader validates them (one adapter, one place)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from edge.sensors.config import SensorConfig

SENSOR = TypeAdapter(SensorConfig)
BURST = {"name": "de", "quantity": "vibration", "unit": "g", "type": "replay", "path": "x.npy", "rate_hz": 12000,
         "vibration": {"rpm": 1797, "bearing": "6205"}}
"""A drive-end accelerometer replaying 12 kHz bursts, on the CWRU test rig's bearing and speed."""


def sensor_config(defaults: Mapping[str, Any], **fields: Any) -> Any:
    """``defaults`` with ``fields`` over them, as one validated sensor config (any type)."""
    return SENSOR.validate_python({**defaults, **fields})


def burst_sensor(**fields: Any) -> Any:
    return sensor_config(BURST, **fields)
