"""Sensor triggers (pure): spikes and jumps on scalar readings and vibration bursts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from edge.sensors.base import Reading
from edge.sensors.config import TriggerRule
from edge.sensors.triggers import TriggerWatch, level


def scalar(value: float, timestamp: float) -> Reading:
    return Reading("motor", timestamp, "degC", value=value)


def test_jump_fires_once_per_new_reading() -> None:
    watch = TriggerWatch([TriggerRule(sensor="motor", jump=5.0)])
    assert watch.update({"motor": scalar(40.0, 1.0)}) == []
    assert watch.update({"motor": scalar(50.0, 2.0)}) == ["sensor motor jumped from 40 to 50"]
    assert watch.update({"motor": scalar(50.0, 2.0)}) == []  # the same reading is judged once
    assert watch.update({"motor": scalar(52.0, 3.0)}) == []
    assert watch.update({"motor": scalar(45.0, 4.0)}) == ["sensor motor jumped from 52 to 45"]  # drops count too


def test_above_uses_burst_rms_about_the_mean() -> None:
    watch = TriggerWatch([TriggerRule(sensor="drive_end", above=0.5)])
    t = np.arange(12000) / 12000.0
    quiet = Reading("drive_end", 1.0, "g", samples=1.0 + 0.1 * np.sin(2 * math.pi * 30 * t), rate_hz=12000.0)
    loud = Reading("drive_end", 2.0, "g", samples=1.0 + 1.0 * np.sin(2 * math.pi * 30 * t), rate_hz=12000.0)
    assert watch.update({"drive_end": quiet}) == []  # a 1 g offset (gravity) is not vibration
    assert watch.update({"drive_end": loud})[0].startswith("sensor drive_end read 0.7071, above 0.5")


def test_missing_and_non_finite_readings_never_fire() -> None:
    watch = TriggerWatch([TriggerRule(sensor="motor", above=10.0, jump=1.0)])
    assert watch.update({}) == [] and watch.update({"motor": None}) == []
    assert watch.update({"motor": scalar(math.nan, 1.0)}) == []
    assert level(Reading("motor", 0.0, "g", samples=np.array([]), rate_hz=1.0)) is None


def test_a_rule_needs_a_test() -> None:
    with pytest.raises(ValidationError, match="'above' or 'jump'"):
        TriggerRule(sensor="motor")


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=30), st.floats(0.1, 100.0))
def test_jump_fires_exactly_when_consecutive_readings_differ_enough(values: list[float], jump: float) -> None:
    watch = TriggerWatch([TriggerRule(sensor="motor", jump=jump)])
    fired = [bool(watch.update({"motor": scalar(value, float(i))})) for i, value in enumerate(values)]
    expected = [False] + [abs(b - a) > jump for a, b in itertools.pairwise(values)]
    assert fired == expected
