"""Rigs never tuned for: healthy and loose machines left alone, race faults named, and the checks a
fault must pass (clearance in dB, sidebands, impulsiveness), each on its own.

The rigs are drawn by ``bench.healthy_signals.draw_rig``: five bearings, 600-3600 rpm configured
5 % off or right, 8-48 kHz, one to three structural resonances, noise 0.005-0.05 g, gear mesh,
50 or 60 Hz mains, looseness (1x harmonics with half orders, a landing impact per turn).
``benchmarks/vibration_rigs.py`` runs the same over 100 rigs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.healthy_signals import draw_rig, impacts_burst, rig_burst
from edge.analytics import bearings, confirm, diagnosis, envelope, iso, mains
from edge.evidence import Condition

BEARING_FAULTS = (bearings.OUTER_RACE, bearings.INNER_RACE, bearings.ROLLING_ELEMENT, bearings.CAGE)
RIGS = range(200, 220)


def _diagnose(rig: object, burst: np.ndarray) -> diagnosis.VibrationDiagnosis:
    assert isinstance(rig, type(draw_rig(0)))
    return diagnosis.diagnose(burst, rig.fs_hz, rig.nominal_shaft_hz, bearings.bearing(rig.bearing),
                              iso.ZoneLimits.for_machine())


def test_healthy_and_loose_rigs_get_no_fault_and_at_most_one_warning_in_ten() -> None:
    verdicts = []
    for seed in RIGS:
        for loose in (False, True):
            rig = draw_rig(seed, looseness=loose)
            result = _diagnose(rig, rig_burst(rig, seed=seed))
            verdicts.append((seed, loose, result.condition, result.reasons[-1]))
    assert not [v for v in verdicts if v[2] is Condition.FAULT], verdicts
    warnings = [v for v in verdicts if v[2] is Condition.WARNING]
    assert len(warnings) <= len(verdicts) / 10, warnings


def test_race_faults_on_varied_rigs_are_named() -> None:
    """Impacts 6-12 x the RMS of everything else in the band they ring. Measured on these 20 rigs:
    39 of 40 named (and all 40 healthy and loose bursts above `ok`); on the benchmark's 100 rigs
    95.5 % (seeds 0-99), 93 % on seeds 1000-1099. The misses are defect lines within a bin and a
    half of a shaft or half-order harmonic in every harmonic, and impacts buried under a
    structural resonance."""
    named = []
    for seed in RIGS:
        rig = draw_rig(seed)
        severity = float(np.random.default_rng(seed).uniform(6.0, 12.0))
        for fault in (bearings.OUTER_RACE, bearings.INNER_RACE):
            result = _diagnose(rig, rig_burst(rig, fault=fault, severity=severity, seed=seed))
            named.append(result.fault_type == fault)
    assert sum(named) >= 0.95 * len(named), named


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), looseness=st.floats(0.0, 10.0), mode_hz=st.floats(300.0, 20_000.0),
       mode_gain=st.floats(1.0, 40.0), damping=st.floats(0.005, 0.08))
def test_a_healthy_machine_with_added_resonance_or_looseness_never_becomes_a_bearing_fault(
    seed: int, looseness: float, mode_hz: float, mode_gain: float, damping: float
) -> None:
    rig = draw_rig(seed, looseness=False)
    worse = dataclasses.replace(rig, looseness=looseness, modes_hz=(*rig.modes_hz, min(mode_hz, 0.45 * rig.fs_hz)),
                                mode_gain=mode_gain, damping=damping)
    result = _diagnose(worse, rig_burst(worse, seed=seed))
    assert not (result.condition is Condition.FAULT and result.fault_type in BEARING_FAULTS), result.reasons


def _spectrum(shaft_hz: float, orders: list[float], df_hz: float = 0.5, shaft_lines: tuple[float, ...] = ()
              ) -> tuple[np.ndarray, np.ndarray]:
    """A flat floor with 20 dB lines at ``orders`` x shaft and 10 dB ones at ``shaft_lines``."""
    freqs_hz = np.arange(0.0, 1000.0, df_hz)
    amplitude = np.ones_like(freqs_hz)
    for order in shaft_lines:
        amplitude[np.argmin(np.abs(freqs_hz - order * shaft_hz))] = 10 ** 0.5
    for order in orders:
        amplitude[np.argmin(np.abs(freqs_hz - order * shaft_hz))] = 10.0
    return freqs_hz, amplitude


def _outer(freqs_hz: np.ndarray, amplitude: np.ndarray, shaft_hz: float,
           orders: bearings.DefectOrders) -> bearings.DefectMatch:
    matches = bearings.match_defects(freqs_hz, amplitude, shaft_hz, orders)
    return next(match for match in matches if match.fault_type == bearings.OUTER_RACE)


def test_half_orders_of_a_loose_machine_are_not_bearing_lines() -> None:
    """A 9-ball bearing's BPFO is 3.57 x shaft: the 3.5 x line of a loose machine sits within its
    tolerance, with 10.5 x and 17.5 x as its '3rd' and '5th' harmonics."""
    shaft_hz, orders = 20.0, bearings.bearing("6206")
    freqs_hz, amplitude = _spectrum(shaft_hz, [k / 2 for k in range(1, 30)])
    assert bearings.half_order_comb(freqs_hz, 20 * np.log10(amplitude), shaft_hz)
    matches = bearings.match_defects(freqs_hz, amplitude, shaft_hz, orders)
    assert all(match.score_db == 0.0 for match in matches), matches
    # a defect series alone is no comb, and is found
    freqs_hz, amplitude = _spectrum(shaft_hz, [k * orders.bpfo for k in (1, 2, 3)])
    assert not bearings.half_order_comb(freqs_hz, 20 * np.log10(amplitude), shaft_hz)
    outer = _outer(freqs_hz, amplitude, shaft_hz, orders)
    assert outer.family_lines == 3


def test_a_defect_whose_first_line_sits_on_a_shaft_harmonic_is_named_by_its_others() -> None:
    """The 6204's BPFO is 3.05 x shaft: in the 3 Hz bins of a short burst at 15 Hz its 1st line
    falls in the bin of 3 x shaft (one peak, located on the shaft's multiple), its 2nd to 5th
    1.6-3.8 Hz off 6-15 x."""
    shaft_hz, orders = 15.0, bearings.bearing("6204")
    freqs_hz, amplitude = _spectrum(shaft_hz, [k * orders.bpfo for k in range(1, 6)], 3.0, (3.0, 6.0, 9.0, 12.0))
    outer = _outer(freqs_hz, amplitude, shaft_hz, orders)
    assert outer.harmonics[0].masked and not outer.family[0].masked
    assert outer.family_lines >= 3


def test_a_defect_line_located_off_the_shaft_harmonic_is_its_own() -> None:
    """In the 1.5 Hz bins of a 2 s burst the same BPFO (45.8 Hz) has a bin of its own beside 3 x
    shaft (45 Hz): located between the bins it lies 0.8 bins off, more than the half bin a shaft
    line's location may stray, so it is the bearing's first line (a bin-centre mask of 1.5 bins
    took it for the shaft's)."""
    shaft_hz, orders = 15.0, bearings.bearing("6204")
    freqs_hz, amplitude = _spectrum(shaft_hz, [k * orders.bpfo for k in range(1, 6)], 1.5, (3.0, 6.0, 9.0, 12.0))
    outer = _outer(freqs_hz, amplitude, shaft_hz, orders)
    assert not outer.fundamental.masked and outer.family[0] is outer.fundamental
    assert abs(outer.fundamental.freq_hz - 3 * shaft_hz) > 0.5 * 1.5
    assert outer.family_lines >= 3


@given(line_hz=st.sampled_from(bearings.MAINS_HZ), k=st.integers(1, 12))
def test_supply_lines_are_masked_at_multiples_of_twice_the_line_frequency(line_hz: float, k: int) -> None:
    """The magnetic pull goes as the current squared: 2 x line and its multiples are electrical,
    odd multiples of the line frequency stay open to a defect (the shaft here is above them all)."""
    shaft_hz, df_hz = 997.0, 0.5
    masked = bearings.not_bearing_line(np.array([k * line_hz, k * line_hz + 0.6]), shaft_hz, df_hz, (line_hz,))
    assert list(masked) == [k % 2 == 0] * 2


def test_an_inner_race_whose_line_sits_on_a_supply_line_is_named_from_its_sidebands() -> None:
    """Each rig's speed set so that BPFI falls on 2 x line: its lines are the supply's, but its +-1x
    sidebands are not. Named so on 4 of these 6 rigs, each a warning at most; the healthy rigs at
    that speed stay ok."""
    named = 0
    for seed in range(200, 206):
        rig = draw_rig(seed, looseness=False)
        rig = dataclasses.replace(rig, shaft_hz=2 * rig.mains_hz / bearings.bearing(rig.bearing).bpfi, rpm_error=0.0)
        result = _diagnose(rig, rig_burst(rig, fault=bearings.INNER_RACE, severity=9.0, seed=seed))
        assert result.condition is not Condition.FAULT, result.reasons
        if result.fault_type == bearings.INNER_RACE:
            named += 1
            assert any("no harmonic clears it: the pattern shows only in its sidebands" in r for r in result.reasons)
            assert any("is hidden under a shaft or supply line" in r for r in result.reasons)
        assert _diagnose(rig, rig_burst(rig, seed=seed)).condition is Condition.OK
    assert named >= 4


def _match(fault_type: str, family_db: tuple[float, ...], sidebands_db: tuple[float, float]) -> bearings.DefectMatch:
    family = tuple(bearings.Line(f"{k}x", 100.0 * k, 3.6 * k, db) for k, db in enumerate(family_db, 1))
    sidebands = tuple(bearings.Line(f"X{sign}1x", 100.0 + 28.0 * s, 0.0, db)
                      for (s, sign), db in zip(((-1, "-"), (1, "+")), sidebands_db, strict=True))
    return bearings.DefectMatch(fault_type, sum(family_db), family, sidebands, "test", family)


IMPULSIVE = confirm.Impulsiveness(5.0, 12.0, envelope.Band(2000.0, 3000.0, 5.0))


def test_a_fault_needs_its_family_clear_of_the_floor_and_says_by_how_much() -> None:
    passed, *_ = confirm.checks(_match("outer_race", (14.0, 12.0, 11.0), (0.0, 0.0)), IMPULSIVE)
    assert passed.passed and "stands 12.3 dB above the envelope floor on average: +2.3 dB" in passed.reason
    failed, *_ = confirm.checks(_match("outer_race", (9.0, 8.0, 7.0), (0.0, 0.0)), IMPULSIVE)
    assert not failed.passed and "-2.0 dB against the 10 dB a fault needs" in failed.reason


def test_outer_race_lines_flanked_by_shaft_sidebands_as_strong_are_a_comb() -> None:
    """A stationary outer race has no +-1x sidebands, or (a load turning with the shaft) weaker ones."""
    _, weak, _ = confirm.checks(_match("outer_race", (17.0, 17.0, 14.0), (14.8, 14.6)), IMPULSIVE)
    assert weak.passed  # CWRU's OR021: both sidebands 2 dB under BPFO
    _, comb, _ = confirm.checks(_match("outer_race", (12.0, 11.0, 10.0), (12.5, 11.0)), IMPULSIVE)
    assert not comb.passed and "shaft-spaced comb" in comb.reason


def test_a_fault_needs_an_impulsive_band_on_both_counts() -> None:
    rng = np.random.default_rng(0)
    fs_hz = 12000.0
    white = envelope.prewhiten(rng.normal(0.0, 1.0, 24000))
    noise = confirm.impulsiveness(white, fs_hz, envelope.Band(2000.0, 3000.0, 0.1))
    assert not noise.impulsive and noise.kurtosis == pytest.approx(3.0, abs=0.5)
    *_, check = confirm.checks(_match("outer_race", (15.0, 14.0, 13.0), (0.0, 0.0)), noise)
    assert not check.passed and "not impulsive on both counts" in check.reason
    burst = impacts_burst(25.0, 3.5848 * 25.0, fs_hz, 4.0)  # a 6205's outer race at 1500 rpm
    result = diagnosis.diagnose(burst, fs_hz, 25.0, bearings.bearing("6205"), iso.ZoneLimits.for_machine())
    assert (result.condition, result.fault_type) == (Condition.FAULT, bearings.OUTER_RACE), result.reasons
    assert result.values["spectral_kurtosis"] >= confirm.MIN_SPECTRAL_KURTOSIS
    assert result.values["band_kurtosis"] >= confirm.MIN_KURTOSIS


@pytest.mark.parametrize("line_hz", [50.0, 60.0])
def test_only_the_supply_a_burst_shows_is_masked(line_hz: float) -> None:
    fs_hz, shaft_hz = 12000.0, 23.3
    t = np.arange(int(2 * fs_hz)) / fs_hz
    noise = np.random.default_rng(1).normal(0.0, 0.01, t.size)
    assert mains.supply_hz(noise, fs_hz, shaft_hz) == bearings.MAINS_HZ  # neither shows: both masked
    supply = sum(0.01 / k * np.sin(2 * np.pi * k * line_hz * t) for k in (1, 2, 3))
    assert mains.supply_hz(noise + supply, fs_hz, shaft_hz) == (line_hz,)
