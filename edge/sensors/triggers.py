"""Sensor-triggered checks (pure): does a new reading spike or jump enough to check the asset now?

Cheap on purpose (one number per reading: the value, or a burst's RMS) because it runs on every
new reading in the main loop; the full analytics run in the check it triggers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from edge.sensors.base import Reading
from edge.sensors.config import TriggerRule


def level(reading: Reading) -> float | None:
    """The reading as one number: its value, or the RMS about the mean of a burst (None if not finite)."""
    if reading.samples is not None:
        samples = np.asarray(reading.samples, dtype=np.float64)
        value = float(np.sqrt(np.mean((samples - samples.mean()) ** 2))) if samples.size else math.nan
    else:
        value = math.nan if reading.value is None else float(reading.value)
    return value if math.isfinite(value) else None


class TriggerWatch:
    """Remembers the last reading each rule saw, so each new reading is judged once."""

    def __init__(self, rules: Sequence[TriggerRule]) -> None:
        self.rules = tuple(rules)
        self._seen: dict[int, tuple[float, float]] = {}  # rule index -> (reading timestamp, level)

    def update(self, readings: Mapping[str, Reading | None]) -> list[str]:
        """Reasons to check now (empty: none) given each sensor's newest reading."""
        reasons = []
        for index, rule in enumerate(self.rules):
            reading = readings.get(rule.sensor)
            if reading is None:
                continue
            previous = self._seen.get(index)
            if previous is not None and previous[0] == reading.timestamp:
                continue
            value = level(reading)
            if value is None:
                continue
            self._seen[index] = (reading.timestamp, value)
            if rule.above is not None and value > rule.above:
                reasons.append(f"sensor {rule.sensor} read {value:.4g}, above {rule.above:g}")
            elif rule.jump is not None and previous is not None and abs(value - previous[1]) > rule.jump:
                reasons.append(f"sensor {rule.sensor} jumped from {previous[1]:.4g} to {value:.4g}")
        return reasons
