"""Defect lines located between bins before the shaft/supply mask: a line 1-2 bins off a shaft
harmonic is the bearing's, a line on the harmonic stays the shaft's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from edge.analytics import bearings

FS_HZ = 2000.0
SHAFT_HZ = 24.36  # 1462 rpm: a 6203's BPFI (4.947 x) is 120.5 Hz, 1.3 Hz off 5 x shaft (121.8 Hz)
SEGMENT = 1333  # a 2 s burst's envelope: five half-overlapping segments, 1.5 Hz bins


def _spectrum(lines_hz: list[float], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An envelope-like amplitude spectrum: lines of equal height over white noise, Welch-averaged."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(2 * FS_HZ)) / FS_HZ
    x = rng.normal(0.0, 1.0, t.size) + sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) for f in lines_hz)
    freqs_hz, power = signal.welch(x, fs=FS_HZ, window="hann", nperseg=SEGMENT, scaling="spectrum")
    return freqs_hz, np.sqrt(power)


@pytest.mark.parametrize("true_hz", [120.53, 121.27, 121.7, 240.9])
def test_a_clean_line_is_located_within_a_tenth_of_a_bin(true_hz: float) -> None:
    freqs_hz, amplitude = _spectrum([true_hz])
    df_hz = freqs_hz[1]
    near = np.flatnonzero(np.abs(freqs_hz - true_hz) <= df_hz)
    index = int(near[np.argmax(amplitude[near])])
    assert abs(freqs_hz[index] - true_hz) > 0.1 * df_hz  # the bin alone is further off
    assert bearings.peak_hz(freqs_hz, amplitude, index) == pytest.approx(true_hz, abs=0.1 * df_hz)


def test_a_bin_that_is_no_peak_is_taken_as_it_is() -> None:
    freqs_hz = np.arange(10) * 1.5
    amplitude = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 5.0, 4.0, 3.0, 2.0])
    assert bearings.peak_hz(freqs_hz, amplitude, 3) == freqs_hz[3]  # on a slope
    assert bearings.peak_hz(freqs_hz, amplitude, 0) == freqs_hz[0]  # at the edge
    assert bearings.peak_hz(freqs_hz, amplitude, 5) == pytest.approx(freqs_hz[5])  # a symmetric peak


def _inner_race(lines_hz: list[float]) -> bearings.DefectMatch:
    freqs_hz, amplitude = _spectrum(lines_hz)
    matches = bearings.match_defects(freqs_hz, amplitude, SHAFT_HZ, bearings.bearing("6203"),
                                     speed_uncertainty=0.002, mains_hz=(50.0,))
    return next(m for m in matches if m.fault_type == bearings.INNER_RACE)


def test_an_inner_race_line_beside_a_shaft_harmonic_is_the_bearings() -> None:
    bpfi_hz = bearings.bearing("6203").bpfi * SHAFT_HZ
    assert abs(bpfi_hz - 5 * SHAFT_HZ) < 1.5 * 1.5  # inside a bin-centre mask of 1.5 bins
    match = _inner_race([bpfi_hz, 2 * bpfi_hz, 3 * bpfi_hz])
    first = match.fundamental
    assert not first.masked and first.present
    assert first.freq_hz == pytest.approx(bpfi_hz, abs=0.3)
    assert match.family_lines >= 3


def test_shaft_harmonics_alone_stay_masked() -> None:
    match = _inner_race([5 * SHAFT_HZ, 10 * SHAFT_HZ, 15 * SHAFT_HZ])
    assert match.fundamental.masked
    assert match.score_db == 0.0
