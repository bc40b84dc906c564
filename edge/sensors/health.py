"""Health rules: is a reading believable? A problem is a sentence; None means healthy.

Never repair a reading (no clamping, no zero-filling): a rejected reading becomes
"sensor unhealthy" evidence so fusion lowers its confidence instead of trusting a made-up value.
"""

from __future__ import annotations

import math

import numpy as np

from edge.sensors.base import Reading
from edge.sensors.config import SensorBase

MIN_BURST_SAMPLES = 256


def problem(config: SensorBase, reading: Reading, previous_value: float | None = None) -> str | None:
    if reading.is_burst:
        return _burst_problem(config, reading)
    value = reading.value
    if value is None or not math.isfinite(value):
        return f"reading is {value!r}, not a number"
    if config.min_valid is not None and value < config.min_valid:
        return f"reading {value:g} {config.unit} is below the physical minimum {config.min_valid:g}"
    if config.max_valid is not None and value > config.max_valid:
        return f"reading {value:g} {config.unit} is above the physical maximum {config.max_valid:g}"
    if config.max_jump is not None and previous_value is not None and abs(value - previous_value) > config.max_jump:
        return (f"reading jumped from {previous_value:g} to {value:g} {config.unit}, more than the "
                f"believable {config.max_jump:g}")
    return None


def _burst_problem(config: SensorBase, reading: Reading) -> str | None:
    samples = np.asarray(reading.samples, dtype=np.float64)
    if reading.rate_hz is None or not math.isfinite(reading.rate_hz) or reading.rate_hz <= 0:
        return f"burst has no usable sample rate ({reading.rate_hz!r})"
    if samples.ndim != 1 or samples.size < MIN_BURST_SAMPLES:
        return f"burst has {samples.size} samples, fewer than the {MIN_BURST_SAMPLES} needed"
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:
        return f"burst holds {bad} NaN/inf sample(s) of {samples.size}"
    if float(np.ptp(samples)) == 0.0:
        return f"burst is flat at {samples[0]:g} {config.unit}: sensor stuck or disconnected"
    if config.min_valid is not None and samples.min() < config.min_valid:
        return f"burst reaches {samples.min():g} {config.unit}, below the physical minimum {config.min_valid:g}"
    if config.max_valid is not None and samples.max() > config.max_valid:
        return f"burst reaches {samples.max():g} {config.unit}, above the physical maximum {config.max_valid:g}"
    return None
