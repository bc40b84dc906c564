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
# A sample within 1 % of the rail is clipped or about to be; a few are enough to flatten the
# impacts the envelope analysis looks for, and to put false harmonics in the spectrum.
CLIP_FRACTION = 0.99
MIN_CLIPPED = 3


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
    if reading.defect is not None:
        return f"burst unusable: {reading.defect}"
    samples = np.asarray(reading.samples, dtype=np.float64)
    if reading.rate_hz is None or not math.isfinite(reading.rate_hz) or reading.rate_hz <= 0:
        return f"burst has no usable sample rate ({reading.rate_hz!r})"
    if samples.ndim != 1 or samples.size < MIN_BURST_SAMPLES:
        return f"burst has {samples.size} samples, fewer than the {MIN_BURST_SAMPLES} needed"
    wanted = getattr(config, "burst_samples", None)
    if wanted is not None and samples.size < wanted:
        return f"short burst: {samples.size} of the {wanted} samples configured"
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:
        return f"burst holds {bad} NaN/inf sample(s) of {samples.size}"
    if float(np.ptp(samples)) == 0.0:
        return f"burst is flat at {samples[0]:g} {config.unit}: sensor stuck or disconnected"
    if reading.full_scale is not None:
        at_rail = int(np.count_nonzero(np.abs(samples) >= CLIP_FRACTION * reading.full_scale))
        if at_rail >= MIN_CLIPPED:
            return (f"burst is clipped: {at_rail} sample(s) at the +-{reading.full_scale:g} {config.unit} full scale "
                    "(choose a wider range or a less sensitive sensor)")
    if config.min_valid is not None and samples.min() < config.min_valid:
        return f"burst reaches {samples.min():g} {config.unit}, below the physical minimum {config.min_valid:g}"
    if config.max_valid is not None and samples.max() > config.max_valid:
        return f"burst reaches {samples.max():g} {config.unit}, above the physical maximum {config.max_valid:g}"
    return None
