"""Shaft speed from the signal: found within its stated uncertainty across speeds, rates, mains and
nameplate errors; the nominal speed (and a wide uncertainty) when the signal shows no shaft comb."""

from __future__ import annotations

import numpy as np
import pytest

from bench.healthy_signals import healthy_burst, impacts_burst
from edge.analytics import speed


@pytest.mark.parametrize("fs_hz", [3200.0, 12000.0, 25600.0])
@pytest.mark.parametrize("shaft_hz", [9.7, 14.9, 24.6, 29.9, 49.3, 59.1])
def test_speed_is_found_within_its_uncertainty(fs_hz: float, shaft_hz: float) -> None:
    for offset, mains_hz in ((-0.07, 50.0), (0.0, 60.0), (0.06, 50.0)):
        burst = healthy_burst(shaft_hz, fs_hz, 2.0, mains_hz=mains_hz, fixed_depth=0.0, seed=int(shaft_hz))
        found = speed.estimate(burst, fs_hz, shaft_hz * (1 + offset))
        assert found.source == "signal", (shaft_hz, offset)
        assert abs(found.shaft_hz / shaft_hz - 1) <= found.uncertainty + 0.002, (shaft_hz, offset, found)


def test_no_shaft_comb_keeps_the_nominal_speed_with_the_whole_range() -> None:
    rng = np.random.default_rng(3)
    for burst in (rng.normal(0, 0.05, 24000), impacts_burst(25.0, 107.5, 12000.0, 2.0) - _shaft_lines(25.0)):
        found = speed.estimate(burst, 12000.0, 25.0)
        assert (found.source, found.shaft_hz, found.uncertainty) == ("nominal", 25.0, speed.DEFAULT_RANGE)
        assert "no shaft-harmonic comb" in found.describe()


def _shaft_lines(shaft_hz: float) -> np.ndarray:
    """The shaft lines ``impacts_burst`` adds, to leave only its impacts and noise."""
    t = np.arange(24000) / 12000.0
    return sum(0.02 / k * np.sin(2 * np.pi * k * shaft_hz * t + k) for k in range(1, 5))


def test_a_speed_channel_is_believed_only_inside_the_range() -> None:
    assert speed.from_channel(30.5, 30.0).source == "channel"
    with pytest.raises(ValueError, match="outside \\+-8% of the nominal 1800 rpm"):
        speed.from_channel(40.0, 30.0)
    with pytest.raises(ValueError, match="not a positive number"):
        speed.from_channel(float("nan"), 30.0)
