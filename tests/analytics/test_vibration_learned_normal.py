"""The service's second line of defence on real CWRU data: each vibration sensor learns its
machine's normal levels (velocity RMS and bearing-band acceleration RMS) and flags departures.

OR014 (record 197) shows no BPFO pattern and IR028 (record 56) no BPFI pattern, so the envelope
analysis alone reads OR014 `ok` and IR028 an unsure `warning` (tests/analytics/test_vibration_cwru.py). A
sensor that has learned the healthy machine flags both in every 1 s burst: OR014's bearing band
rings about 1.5 x its normal, IR028's about 12 x.

The normal record is 48 kHz; a sensor records at one rate, so here it is resampled to the 12 kHz
of the fault records before the sensor learns from it (the bearing band then spans 1-5.4 kHz for
both).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import signal

from edge.cli.main import main
from edge.evidence import Condition
from edge.sensors.analysis import SensorAnalyzer
from edge.sensors.base import Reading
from tests.conftest import CwruRecords, record_npy
from tests.sensors_support import burst_sensor

FS_HZ = 12_000
LEARNING_BURSTS = 4
RACE_RECORDS = ["IR007_0", "IR014_0", "IR021_0", "IR028_0",
                "OR007_centered_at_6_0", "OR014_centered_at_6_0", "OR021_centered_at_6_0"]


def _config() -> Any:
    return burst_sensor(analytics={"baseline": {"warmup": LEARNING_BURSTS}})


def _normal_at_12k(cwru_records: CwruRecords) -> np.ndarray:
    return signal.resample_poly(cwru_records["normal_0"].samples().astype(np.float64), 1, 4)


def _bursts(samples: np.ndarray, step: int = FS_HZ) -> list[np.ndarray]:
    return [samples[start : start + FS_HZ] for start in range(0, samples.size - FS_HZ + 1, step)]


@pytest.fixture(scope="module")
def learned_state(cwru_records: CwruRecords) -> dict[str, Any]:
    """The sensor's state after learning from the first four seconds of the healthy machine."""
    analyzer = SensorAnalyzer([_config()])
    for i, burst in enumerate(_bursts(_normal_at_12k(cwru_records))[:LEARNING_BURSTS]):
        evidence = analyzer.analyse(Reading("de", float(i), "g", samples=burst, rate_hz=FS_HZ))
        assert evidence.condition is Condition.OK, evidence.reasons
    state = analyzer.state_dict()
    assert state["de"]["baseline"]["count"] == state["de/bearing_band"]["baseline"]["count"] == LEARNING_BURSTS
    return json.loads(json.dumps(state))  # persisted as the service does


def _judge(state: dict[str, Any], burst: np.ndarray) -> Any:
    analyzer = SensorAnalyzer([_config()], state=json.loads(json.dumps(state)))
    return analyzer.analyse(Reading("de", 100.0, "g", samples=burst, rate_hz=FS_HZ))


def test_healthy_bursts_stay_ok_against_the_learned_normal(cwru_records: CwruRecords, learned_state: dict[str, Any],
                                                           ) -> None:
    unseen = _normal_at_12k(cwru_records)[(LEARNING_BURSTS - 1) * FS_HZ :]  # overlaps the last learnt second by half
    bursts = _bursts(unseen, step=FS_HZ // 2)
    assert len(bursts) >= 3
    for burst in bursts:
        evidence = _judge(learned_state, burst)
        assert evidence.condition is Condition.OK, evidence.reasons
        assert abs(evidence.values["bearing_band_baseline_z"]) < 2
        assert abs(evidence.values["velocity_baseline_z"]) < 2


@pytest.mark.parametrize("name", RACE_RECORDS)
def test_every_race_fault_burst_is_flagged_against_the_learned_normal(
    cwru_records: CwruRecords, learned_state: dict[str, Any], name: str
) -> None:
    for burst in _bursts(cwru_records[name].samples()):
        evidence = _judge(learned_state, burst)
        assert evidence.condition is not Condition.OK, evidence.reasons
        assert evidence.values["bearing_band_baseline_z"] > 4


def test_or014_is_a_warning_naming_the_bearing_band(cwru_records: CwruRecords, learned_state: dict[str, Any]) -> None:
    """No defect pattern, so no fault type: the reason says the bearing band rings above normal."""
    for burst in _bursts(cwru_records["OR014_centered_at_6_0"].samples()):
        evidence = _judge(learned_state, burst)
        assert (evidence.condition, evidence.fault_type) == (Condition.WARNING, None), evidence.reasons
        assert evidence.values["zone"] == "A"
        ratio = evidence.values["bearing_band_rms_g"] / evidence.values["bearing_band_baseline_mean"]
        assert 1.3 < ratio < 1.8
        assert any(reason.startswith("bearing-band (1-10 kHz) acceleration RMS") and "learned normal" in reason
                   for reason in evidence.reasons)


def test_a_small_change_is_not_an_alarm_however_steady_the_normal(
    cwru_records: CwruRecords, learned_state: dict[str, Any]
) -> None:
    """The healthy record's levels vary by about 1 % between bursts; a 20 % rise must not read as
    a many-sigma departure (z uses at least 10 % of the learned mean as the spread)."""
    healthy = _bursts(_normal_at_12k(cwru_records))[-1]
    level_g = _judge(learned_state, healthy).values["bearing_band_rms_g"]
    # add band-limited noise so that the 1-5.4 kHz level grows by 20 % (powers add)
    sos = signal.butter(6, [1100, 5300], btype="bandpass", fs=FS_HZ, output="sos")
    extra = signal.sosfiltfilt(sos, np.random.default_rng(3).normal(0.0, 1.0, FS_HZ))
    burst = healthy + extra / extra.std() * level_g * np.sqrt(1.2**2 - 1.0)
    evidence = _judge(learned_state, burst)
    assert evidence.values["bearing_band_rms_g"] / level_g == pytest.approx(1.2, abs=0.03)
    assert evidence.values["bearing_band_baseline_z"] == pytest.approx(2.0, abs=0.4)
    assert evidence.condition is Condition.OK, evidence.reasons


def _analyze(recording: Path, fs_hz: int, *extra: str) -> list[str]:
    return ["vibration", "analyze", str(recording), "--fs", str(fs_hz), "--rpm", "1797", "--bearing", "6205", *extra]


def test_cli_reference_recording_flags_or014(
    cwru_records: CwruRecords, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same judgement from the command line, learning the normal from a healthy recording."""
    healthy, or014 = (record_npy(cwru_records[name], tmp_path) for name in ("normal_0", "OR014_centered_at_6_0"))
    reference = ["--reference", str(healthy), "--reference-fs", "48000", "--json"]
    assert main(_analyze(or014, 12000, *reference)) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["condition"], out["fault_type"]) == ("warning", None)
    assert 4 < out["bearing_band_baseline_z"] < 6 and abs(out["velocity_baseline_z"]) < 2
    assert out["reasons"][-1].endswith("from its learned normal 0.06258 g (1.48 x)")
    assert main(_analyze(or014, 12000, "--json")) == 0  # without: a miss
    assert json.loads(capsys.readouterr().out)["condition"] == "ok"


def test_cli_reference_errors_name_the_problem(
    cwru_records: CwruRecords, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy, or014 = (record_npy(cwru_records[name], tmp_path) for name in ("normal_0", "OR014_centered_at_6_0"))
    slower = ["--reference", str(or014), "--reference-fs", "12000"]
    assert main(_analyze(healthy, 48000, *slower)) == 2
    assert "sampled at 12000 Hz, below the recording's 48000 Hz" in capsys.readouterr().err
    short = tmp_path / "short.npy"
    np.save(short, _normal_at_12k(cwru_records)[: 2 * FS_HZ])
    assert main(_analyze(or014, 12000, "--reference", str(short))) == 1
    assert "holds 2.0 s; give at least 3 s of the healthy machine" in capsys.readouterr().err
    assert main(_analyze(or014, 12000, "--reference", str(tmp_path / "no.npy"))) == 1
    assert "no.npy does not exist" in capsys.readouterr().err


def test_a_sensor_too_slow_for_the_bearing_band_trends_velocity_only() -> None:
    """An ADXL345 at 3.2 kHz cannot see 1-10 kHz: no bearing-band state is used, velocity still is."""
    config = burst_sensor(rate_hz=3200, analytics={"baseline": {"warmup": 3}})
    analyzer = SensorAnalyzer([config])
    rng = np.random.default_rng(5)
    for i in range(4):
        evidence = analyzer.analyse(Reading("de", float(i), "g", samples=rng.normal(0, 0.05, 4096), rate_hz=3200))
        assert evidence.condition is Condition.OK, evidence.reasons
    assert evidence.values["bearing_band_rms_g"] is None and "bearing_band_baseline_z" not in evidence.values
    assert "velocity_baseline_z" in evidence.values
    assert analyzer.state_dict()["de/bearing_band"]["baseline"]["count"] == 0
    assert analyzer.state_dict()["de"]["baseline"]["count"] == 4


@pytest.mark.parametrize("name", ["IR007_0", "OR007_centered_at_6_0", "OR021_centered_at_6_0"])
def test_cli_reference_race_faults_stand_clear_of_the_normal_defect_lines(
    cwru_records: CwruRecords, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """The healthy record's envelope holds the defect lines 0-4 dB above its floor; the race
    faults' families stand 13-18 dB above those same lines, so they stay faults, margin stated."""
    healthy, faulty = (record_npy(cwru_records[record], tmp_path) for record in ("normal_0", name))
    reference = ["--reference", str(healthy), "--reference-fs", "48000", "--json"]
    assert main(_analyze(faulty, 12000, *reference)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["condition"] == "fault" and out["fault_type"] in ("inner_race", "outer_race")
    assert out["family_over_normal_db"] >= 10.0
    stated = [r for r in out["reasons"] if "above the same lines in this machine's learned normal" in r]
    assert stated and f"{out['family_over_normal_db']:+.1f} dB" in stated[0] and "(normal " in stated[0]


