"""Healthy machines must not alarm: a sweep over speeds of everything that is not a bearing defect.

Each burst holds shaft harmonics, a constant-frequency cyclostationary line at 72 Hz that does not
follow the shaft (at 1200 rpm it sits on BPFO = 3.58 x shaft, at 900 rpm on 2 x BSF = 4.71 x), mains
at 50 or 60 Hz with harmonics and its 2 x line modulation, a gear mesh with shaft sidebands and
broadband noise; the configured rpm is 5 % low, right or 5 % high. Done when: no ``fault``, at most
1 % ``warning``.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from bench.healthy_signals import healthy_burst, impacts_burst
from edge.analytics import bearings, diagnosis, envelope, iso
from edge.evidence import Condition
from edge.sensors.analysis import SensorAnalyzer
from edge.sensors.base import Reading
from tests.sensors_support import burst_sensor

SPEEDS_RPM = [*np.arange(600.0, 3601.0, 100.0), 900.0, 1200.0]
OFFSETS = (-0.05, 0.0, 0.05)


def test_the_fixed_line_is_a_real_coincidence() -> None:
    """The 72 Hz line stands far above the envelope floor with a 2nd harmonic: the sweep tests
    rejecting it, not failing to see it."""
    fs_hz = 12000.0
    spectrum = envelope.full_band_envelope_spectrum(envelope.prewhiten(healthy_burst(20.0, fs_hz, 2.0)), fs_hz)
    floor = bearings.local_floor(spectrum.amplitude, 41)
    prominence_db = 20 * np.log10(spectrum.amplitude / floor)
    at = np.argmin(np.abs(spectrum.freqs_hz - 72.0))
    assert prominence_db[at - 1 : at + 2].max() >= 15.0


def test_healthy_sweep_over_speeds_has_no_fault_and_at_most_one_percent_warning() -> None:
    verdicts: collections.Counter[Condition] = collections.Counter()
    warnings = []
    for i, rpm in enumerate(SPEEDS_RPM):
        for fs_hz in (12000.0, 25600.0):
            for j, offset in enumerate(OFFSETS):
                burst = healthy_burst(rpm / 60.0, fs_hz, 2.0, mains_hz=(50.0, 60.0)[(i + j) % 2], seed=7 * i + j)
                result = diagnosis.diagnose(burst, fs_hz, rpm * (1 + offset) / 60.0, bearings.bearing("6205"),
                                            iso.ZoneLimits.for_machine())
                verdicts[result.condition] += 1
                assert result.condition is not Condition.FAULT, (rpm, fs_hz, offset, result.reasons)
                if result.condition is Condition.WARNING:
                    warnings.append((rpm, fs_hz, offset, result.reasons[-1]))
    total = sum(verdicts.values())
    assert len(warnings) <= 0.01 * total, warnings


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_mains_family_in_the_envelope_is_not_a_bearing_line(mains_hz: float) -> None:
    """A shaft speed that puts BPFO on 2 x mains: the electrical line does not count."""
    shaft_hz = 2 * mains_hz / 3.5848
    burst = healthy_burst(shaft_hz, 12000.0, 2.0, mains_hz=mains_hz, fixed_depth=0.0)
    result = diagnosis.diagnose(burst, 12000.0, shaft_hz, bearings.bearing("6205"), iso.ZoneLimits.for_machine())
    assert (result.condition, result.fault_type) == (Condition.OK, None), result.reasons


def _analyzer() -> SensorAnalyzer:
    config = burst_sensor(vibration={"rpm": 1200, "bearing": "6205"})
    return SensorAnalyzer([config])


@pytest.mark.parametrize(("source", "fixed"), [("a fixed source nearby", True), ("a bearing defect", False)])
def test_a_line_that_does_not_follow_the_shaft_is_no_bearing_line(source: str, fixed: bool) -> None:
    """Impacts at 77.7 Hz are BPFO at 1300 rpm. Seen before at 1100 rpm at the same 77.7 Hz, they are
    a fixed source and the 1300 rpm burst is not a fault; impacts that follow the shaft stay one, and
    the memory survives a restart through the saved state."""
    analyzer = _analyzer()
    for step, rpm in enumerate((1100.0, 1100.0, 1300.0)):
        impact_hz = 3.5848 * (1300.0 if fixed else rpm) / 60.0
        burst = impacts_burst(rpm / 60.0, impact_hz, 12000.0, 2.0, seed=step)
        if step == 2:
            analyzer = SensorAnalyzer(list(analyzer.configs.values()), state=analyzer.state_dict())
        evidence = analyzer.analyse(Reading("de", float(step), "g", samples=burst, rate_hz=12000.0))
    fresh = _analyzer().analyse(Reading("de", 9.0, "g", samples=burst, rate_hz=12000.0))
    assert (fresh.condition, fresh.fault_type) == (Condition.FAULT, "outer_race"), fresh.reasons  # one burst alone
    if fixed:
        assert (evidence.condition, evidence.fault_type) == (Condition.OK, None), evidence.reasons
        assert "was there too at 110" in evidence.reasons[-1] and "no bearing line" in evidence.reasons[-1]
    else:
        assert (evidence.condition, evidence.fault_type) == (Condition.FAULT, "outer_race"), evidence.reasons


def test_saved_line_memory_that_is_garbage_is_relearned() -> None:
    config = next(iter(_analyzer().configs.values()))
    analyzer = SensorAnalyzer([config], state={"de/envelope_lines": {"entries": "x"}})
    assert analyzer.lines["de"].entries == []
