"""A named bearing fault against the machine's own learned normal: the same defect lines, then and now.

Rig 200 (``bench.healthy_signals.draw_rig``: a 6206 at 8 kHz) reads `fault` for its outer-race
defect in one 2 s burst. Against a normal learned from the healthy rig the family stands well
clear, with the margin in dB in the reasons; against a normal that already held the family at
the same level (the machine always struck there) it is no new fault.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.healthy_signals import draw_rig, rig_burst
from edge.analytics import bearings, diagnosis, family_normal, iso
from edge.analytics.family_normal import NEW_FAULT_DB, SAME_AS_NORMAL_DB, FamilyNormal
from edge.cli.main import main
from edge.evidence import Condition
from edge.sensors.analysis import SensorAnalyzer
from edge.sensors.base import Reading
from tests.sensors_support import BURST, sensor_config

RIG = draw_rig(200, looseness=False)
SEVERITY = 9.0


def _diagnose(burst: np.ndarray) -> diagnosis.VibrationDiagnosis:
    return diagnosis.diagnose(burst, RIG.fs_hz, RIG.nominal_shaft_hz, bearings.bearing(RIG.bearing),
                              iso.ZoneLimits.for_machine())


def _learned(*bursts: np.ndarray) -> FamilyNormal:
    normal = FamilyNormal(warmup=len(bursts))
    for burst in bursts:
        normal.learn(_diagnose(burst))
    return normal


@pytest.fixture(scope="module")
def outer_race() -> diagnosis.VibrationDiagnosis:
    found = _diagnose(rig_burst(RIG, fault=bearings.OUTER_RACE, severity=SEVERITY, seed=200))
    assert (found.condition, found.fault_type, found.zone) == (Condition.FAULT, bearings.OUTER_RACE, "A")
    return found


def test_a_fault_stands_clear_of_the_healthy_normal_and_says_by_how_much(
    outer_race: diagnosis.VibrationDiagnosis,
) -> None:
    normal = _learned(*(rig_burst(RIG, seed=seed) for seed in (1, 2, 3)))
    judged = family_normal.against_normal(outer_race, normal)
    assert (judged.condition, judged.fault_type) == (Condition.FAULT, bearings.OUTER_RACE)
    margin_db = judged.values["family_over_normal_db"]
    assert margin_db >= NEW_FAULT_DB
    assert f"stands {margin_db:+.1f} dB above the same lines in this machine's learned normal" in judged.reasons[-1]
    assert "1x BPFO" in judged.reasons[-1] and "(normal " in judged.reasons[-1]


def test_a_family_as_strong_in_the_normal_is_no_new_fault(outer_race: diagnosis.VibrationDiagnosis) -> None:
    """The normal recorded while the same strikes were there (other bursts, same level)."""
    normal = _learned(*(rig_burst(RIG, fault=bearings.OUTER_RACE, severity=SEVERITY, seed=s) for s in (11, 12)))
    judged = family_normal.against_normal(outer_race, normal)
    assert abs(judged.values["family_over_normal_db"]) < SAME_AS_NORMAL_DB
    assert (judged.condition, judged.fault_type) == (Condition.OK, None), judged.reasons
    assert judged.reasons[-1] == "the family is as strong as in the machine's normal: no new bearing fault"


@settings(max_examples=25, deadline=None)
@given(grown_db=st.floats(-6.0, 20.0))
def test_the_verdict_follows_the_margin_over_the_normal(outer_race: diagnosis.VibrationDiagnosis,
                                                        grown_db: float) -> None:
    """A normal holding the family's lines ``grown_db`` lower: the margin reads back as that, and
    decides no finding (< 3 dB), a warning (< 6 dB) or the fault."""
    match = next(m for m in outer_race.matches if m.fault_type == bearings.OUTER_RACE)
    heights = {f"{match.fault_type}/{line.label}": line.above_floor_db - grown_db for line in match.family}
    judged = family_normal.against_normal(outer_race, FamilyNormal(heights, count=1))
    assert judged.values["family_over_normal_db"] == pytest.approx(grown_db, abs=0.051)
    expected = (Condition.OK if grown_db < SAME_AS_NORMAL_DB else
                Condition.WARNING if grown_db < NEW_FAULT_DB else Condition.FAULT)
    assert judged.condition is expected
    assert judged.fault_type == (None if expected is Condition.OK else bearings.OUTER_RACE)


def test_a_normal_still_learning_or_nothing_named_changes_nothing(outer_race: diagnosis.VibrationDiagnosis) -> None:
    learning = FamilyNormal({"outer_race/1x BPFO": 50.0}, count=1, warmup=2)
    assert family_normal.against_normal(outer_race, learning) is outer_race
    healthy = _diagnose(rig_burst(RIG, seed=4))
    assert healthy.fault_type is None
    assert family_normal.against_normal(healthy, FamilyNormal({"outer_race/1x BPFO": 50.0}, count=5)) is healthy
    unanalysed = dataclasses.replace(healthy, matches=())
    normal = FamilyNormal()
    normal.learn(unanalysed)  # no bearing analysis ran: nothing learned
    assert (normal.count, normal.heights_db) == (0, {})


def test_the_normal_round_trips_and_a_malformed_one_is_named() -> None:
    normal = _learned(rig_burst(RIG, seed=5))
    assert normal.count == 1 and "outer_race/1x BPFO" in normal.heights_db and "inner_race/BPFI+1x" in normal.heights_db
    assert FamilyNormal.from_dict(normal.to_dict()) == normal
    with pytest.raises(ValueError, match="defect-line normal is incomplete or malformed"):
        FamilyNormal.from_dict({"heights_db": {}, "count": 1})
    with pytest.raises(ValueError, match="non-finite heights"):
        FamilyNormal.from_dict({"heights_db": {"outer_race/1x BPFO": float("nan")}, "count": 1, "warmup": 1,
                                "alpha": 0.01})


def _sensor() -> Any:
    return sensor_config(BURST, rate_hz=int(RIG.fs_hz), analytics={"baseline": {"warmup": 3}},
                         vibration={"rpm": RIG.nominal_shaft_hz * 60.0, "bearing": RIG.bearing})


def _reading(burst: np.ndarray, timestamp: float) -> Reading:
    return Reading("de", timestamp, "g", samples=burst, rate_hz=RIG.fs_hz)


def test_the_sensor_learns_the_normal_from_ok_bursts_and_judges_against_it(caplog: pytest.LogCaptureFixture) -> None:
    analyzer = SensorAnalyzer([_sensor()])
    for i in range(3):
        assert analyzer.analyse(_reading(rig_burst(RIG, seed=20 + i), float(i))).condition is Condition.OK
    fault = rig_burst(RIG, fault=bearings.OUTER_RACE, severity=SEVERITY, seed=200)
    evidence = analyzer.analyse(_reading(fault, 10.0))
    assert (evidence.condition, evidence.fault_type) == (Condition.FAULT, bearings.OUTER_RACE)
    assert evidence.values["family_over_normal_db"] >= NEW_FAULT_DB
    state = analyzer.state_dict()
    assert state["de/defect_lines"]["count"] == 3  # the fault was not learned
    # the normal survives a restart; a damaged one is relearned, with a warning
    again = SensorAnalyzer([_sensor()], state=state)
    assert again.analyse(_reading(fault, 11.0)).values["family_over_normal_db"] == evidence.values[
        "family_over_normal_db"]
    with caplog.at_level(logging.WARNING):
        fresh = SensorAnalyzer([_sensor()], state={**state, "de/defect_lines": {"count": "many"}})
    assert "saved defect-line normal unusable" in caplog.text
    assert fresh.state_dict()["de/defect_lines"]["count"] == 0


def test_a_sensor_without_a_baseline_judges_no_family_against_a_normal() -> None:
    config = sensor_config(BURST, rate_hz=int(RIG.fs_hz), analytics={"baseline": {"enabled": False, "warmup": 2}},
                           vibration={"rpm": RIG.nominal_shaft_hz * 60.0, "bearing": RIG.bearing})
    analyzer = SensorAnalyzer([config])
    for i in range(2):
        analyzer.analyse(_reading(rig_burst(RIG, seed=30 + i), float(i)))
    fault = analyzer.analyse(_reading(rig_burst(RIG, fault=bearings.OUTER_RACE, severity=SEVERITY, seed=200), 5.0))
    assert fault.fault_type == bearings.OUTER_RACE and "family_over_normal_db" not in fault.values
    assert analyzer.state_dict()["de/defect_lines"]["count"] == 0


def test_the_command_line_reference_holds_the_normal_defect_lines(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``--reference``: a healthy recording of the rig leaves the fault standing, margin stated; a
    reference that already carried the same strikes makes it no new fault."""
    for name, fault, seed in (("healthy", None, 1), ("struck", bearings.OUTER_RACE, 2),
                              ("now", bearings.OUTER_RACE, 3)):
        np.save(tmp_path / f"{name}.npy", rig_burst(RIG, 4.0, fault=fault, severity=SEVERITY, seed=seed))
    args = ["vibration", "analyze", str(tmp_path / "now.npy"), "--fs", str(RIG.fs_hz), "--rpm",
            str(RIG.nominal_shaft_hz * 60.0), "--bearing", RIG.bearing, "--json"]
    assert main([*args, "--reference", str(tmp_path / "healthy.npy")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["condition"], out["fault_type"]) == ("fault", bearings.OUTER_RACE)
    assert out["family_over_normal_db"] >= NEW_FAULT_DB
    assert any(f"stands {out['family_over_normal_db']:+.1f} dB above the same lines" in r for r in out["reasons"])
    assert main([*args, "--reference", str(tmp_path / "struck.npy")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["family_over_normal_db"]) < SAME_AS_NORMAL_DB
    assert (out["condition"], out["fault_type"]) == ("ok", None), out["reasons"]
