"""Vibration analytics on signals with known answers, plus invariants under hostile input."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.io import wavfile

from edge.analytics import bearings, diagnosis, envelope, iso, series, vibration
from edge.cli.main import main
from edge.evidence import Condition

G = vibration.STANDARD_GRAVITY_M_S2


def tone_g(freq_hz: float, velocity_rms_mm_s: float, fs_hz: float, seconds: float) -> np.ndarray:
    """Acceleration (g) of a sine whose velocity RMS is known: a = v_peak * 2*pi*f."""
    t = np.arange(int(fs_hz * seconds)) / fs_hz
    accel_peak_m_s2 = velocity_rms_mm_s / 1000.0 * math.sqrt(2) * 2 * math.pi * freq_hz
    return accel_peak_m_s2 / G * np.sin(2 * math.pi * freq_hz * t)


@pytest.mark.parametrize(("freq_hz", "fs_hz"), [(25.0, 5000.0), (159.2, 12000.0), (800.0, 25600.0)])
def test_pure_tone_velocity_rms(freq_hz: float, fs_hz: float) -> None:
    accel = tone_g(freq_hz, 4.0, fs_hz, 4.0)
    assert vibration.velocity_rms_mm_s(accel, fs_hz) == pytest.approx(4.0, rel=0.02)


def test_tone_outside_the_iso_band_is_not_counted() -> None:
    fs_hz = 12000.0
    assert vibration.velocity_rms_mm_s(tone_g(3000.0, 4.0, fs_hz, 2.0), fs_hz) < 0.1
    assert vibration.velocity_rms_mm_s(tone_g(4.0, 4.0, fs_hz, 4.0), fs_hz) < 0.4


def test_severity_features_of_a_sine() -> None:
    result = vibration.severity(tone_g(100.0, 2.0, 10000.0, 2.0), 10000.0)
    assert result.crest_factor == pytest.approx(math.sqrt(2), rel=0.01)
    assert result.kurtosis == pytest.approx(1.5, rel=0.02)  # a sine's kurtosis


def test_bearing_band_level_counts_only_its_band() -> None:
    """1-10 kHz acceleration RMS: a 3 kHz tone of 0.5 g peak reads 0.354 g, a 100 Hz tone nothing;
    the band is capped at 0.45 x the sample rate and absent when the rate cannot reach it."""
    fs_hz = 12000.0
    t = np.arange(int(2 * fs_hz)) / fs_hz
    inside, below = 0.5 * np.sin(2 * math.pi * 3000.0 * t), 2.0 * np.sin(2 * math.pi * 100.0 * t)
    assert vibration.bearing_band_rms_g(inside + below, fs_hz) == pytest.approx(0.5 / math.sqrt(2), rel=0.01)
    assert vibration.bearing_band_rms_g(below, fs_hz) < 1e-3
    assert vibration.bearing_band_rms_g(0.5 * np.sin(2 * math.pi * 5800.0 * t), fs_hz) < 0.05  # above 0.45 fs
    assert vibration.bearing_band_rms_g(below, 3200.0) is None  # ADXL345 at 3.2 kHz: 1-1.44 kHz only
    assert vibration.severity(below, 3200.0).bearing_band_rms_g is None


def test_resampling_keeps_velocity() -> None:
    accel = tone_g(120.0, 3.0, 48000.0, 2.0)
    down = vibration.resample(accel, 48000.0, 12000.0)
    assert down.size == accel.size // 4
    assert vibration.velocity_rms_mm_s(down, 12000.0) == pytest.approx(3.0, rel=0.02)


@pytest.mark.parametrize(
    ("velocity", "group", "foundation", "zone"),
    [(1.0, 2, "rigid", "A"), (2.0, 2, "rigid", "B"), (3.0, 2, "rigid", "C"), (5.0, 2, "rigid", "D"),
     (5.0, 1, "flexible", "B"), (12.0, 1, "flexible", "D")],
)
def test_iso_zones(velocity: float, group: int, foundation: str, zone: str) -> None:
    assert iso.zone(velocity, iso.ZoneLimits.for_machine(group, foundation)) == zone


def test_zone_limits_are_validated_and_nan_refused() -> None:
    with pytest.raises(ValueError, match="rise strictly"):
        iso.ZoneLimits(2.0, 1.0, 3.0)
    with pytest.raises(ValueError, match="non-negative"):
        iso.zone(float("nan"), iso.ZoneLimits.for_machine())


def test_6205_geometry_matches_cwru_multiples() -> None:
    # SKF 6205: 9 balls of 7.94 mm on a 39.04 mm pitch circle
    geometric = bearings.DefectOrders.from_geometry(9, 7.94, 39.04)
    published = bearings.bearing("SKF 6205")
    assert 2 * published.bsf == pytest.approx(4.7135)  # CWRU's ball-defect multiple
    for name in ("bpfo", "bpfi", "bsf", "ftf"):
        assert getattr(geometric, name) == pytest.approx(getattr(published, name), rel=0.005)


@pytest.mark.parametrize("name", bearings.list_bearings())
def test_catalogue_entries_are_consistent(name: str) -> None:
    orders = bearings.bearing(name)
    assert orders.bpfo + orders.bpfi == pytest.approx(round(orders.bpfo + orders.bpfi), abs=0.01)  # = n balls
    assert 0.3 < orders.ftf < 0.5 and orders.bpfo < orders.bpfi


def test_unknown_bearing_names_the_catalogue() -> None:
    with pytest.raises(ValueError, match="6205"):
        bearings.bearing("7309")


def bearing_signal(defect_hz: float, shaft_hz: float, fs_hz: float, seconds: float, snr_amplitude: float,
                   modulate: bool, seed: int = 0, shaft_g: float = 0.0) -> np.ndarray:
    """Decaying 3 kHz ringing at each impact, in white noise; inner race: shaft-rate modulation;
    ``shaft_g``: 1x .. 4x shaft lines (residual imbalance and misalignment) that show the speed."""
    rng = np.random.default_rng(seed)
    n = int(fs_hz * seconds)
    t = np.arange(n) / fs_hz
    impulses = np.zeros(n)
    times = np.arange(0.0, seconds, 1.0 / defect_hz)
    times += rng.normal(0, 0.002 / defect_hz, times.size)  # slip jitter
    index = np.clip((times * fs_hz).astype(int), 0, n - 1)
    impulses[index] = 1.0 + (0.8 * np.cos(2 * np.pi * shaft_hz * t[index]) if modulate else 0.0)
    ring_t = np.arange(int(0.004 * fs_hz)) / fs_hz
    ring = np.exp(-ring_t * 1500.0) * np.sin(2 * np.pi * 3000.0 * ring_t)
    shaft = sum(shaft_g / k * np.sin(2 * np.pi * k * shaft_hz * t + k) for k in range(1, 5))
    return snr_amplitude * np.convolve(impulses, ring)[:n] + rng.normal(0, 0.05, n) + shaft


@pytest.mark.parametrize(
    ("fault", "multiple", "modulate"), [("outer_race", 3.5848, False), ("inner_race", 5.4152, True)]
)
def test_impulse_train_at_a_defect_frequency_is_named(fault: str, multiple: float, modulate: bool) -> None:
    shaft_hz, fs_hz = 25.0, 12000.0
    accel = bearing_signal(multiple * shaft_hz, shaft_hz, fs_hz, 4.0, 0.3, modulate, shaft_g=0.02)
    # the rpm given is 5 % off, as slip and VFDs make it: the speed is read from the shaft lines
    result = diagnosis.diagnose(accel, fs_hz, shaft_hz * 1.05, bearings.bearing("6205"), iso.ZoneLimits.for_machine())
    assert result.values["speed_source"] == "signal"
    assert result.values["shaft_hz"] == pytest.approx(shaft_hz, rel=0.005)
    assert result.fault_type == fault, result.reasons
    assert result.condition is Condition.FAULT
    assert any("dB above floor" in reason for reason in result.reasons)
    # every check a fault passed says by how much, in dB or in kurtosis
    assert any("dB above the envelope floor on average: +" in reason for reason in result.reasons), result.reasons
    assert any("spectral kurtosis" in reason for reason in result.reasons)


def test_impacts_at_no_defect_frequency_are_an_unsure_warning() -> None:
    """A periodic impact train that no bearing frequency explains: say so, with low confidence."""
    shaft_hz, fs_hz = 30.0, 12000.0
    accel = bearing_signal(4.28 * shaft_hz, shaft_hz, fs_hz, 10.0, 0.3, modulate=False, shaft_g=0.02)
    result = diagnosis.diagnose(accel, fs_hz, shaft_hz, bearings.bearing("6205"), iso.ZoneLimits.for_machine())
    assert (result.condition, result.fault_type) == (Condition.WARNING, None), result.reasons
    assert result.confidence < 0.5
    assert result.values["unexplained_series_hz"] == pytest.approx(4.28 * shaft_hz, abs=1.5)
    assert "unexplained impulsive envelope series" in result.reasons[-1]


def test_strongest_series_ignores_shaft_harmonics() -> None:
    freqs_hz = np.arange(0.0, 1000.0, 1.0)
    amplitude = np.ones_like(freqs_hz)
    amplitude[[30, 60, 90, 120]] = 10.0  # 1x..4x of a 30 Hz shaft
    assert series.strongest_series(freqs_hz, amplitude, 30.0, (9.0, 210.0)) is None
    amplitude[[77, 154, 231]] = 5.0  # a series at 2.57 x shaft
    found = series.strongest_series(freqs_hz, amplitude, 30.0, (9.0, 210.0))
    assert found is not None and found.fundamental.freq_hz == 77.0
    assert found.score_db == pytest.approx(3 * 20 * math.log10(5.0), rel=0.01)


def test_noise_alone_is_ok() -> None:
    accel = np.random.default_rng(3).normal(0, 0.05, 48000)
    result = diagnosis.diagnose(accel, 12000.0, 25.0, bearings.bearing("6205"), iso.ZoneLimits.for_machine())
    assert (result.condition, result.fault_type) == (Condition.OK, None)


def test_noise_is_ok_at_every_rate_length_and_speed() -> None:
    """Narrow kurtogram bands and lines next to 0 Hz once read noise as defects: 10 of 150 random
    bursts (3.2-48 kHz, shafts 10-60 Hz) alarmed, 3 of them `fault`. A band narrower than the lines
    sought is now skipped, its envelope read only up to its width, and a line within 4 bins of 0 Hz
    is not counted. What is left is chance: a short burst's envelope spectrum averages only about
    five segments, so a noise bin stands 6 dB above its floor about once in a thousand; over 60
    bursts at most one may reach a `warning`, none a `fault`."""
    alarms = []
    for fs_hz in (3200.0, 5000.0, 6400.0, 12000.0, 25600.0):
        rng = np.random.default_rng(int(fs_hz))
        for samples in (4096, 16384, 32768):
            for shaft_hz in (10.0, 25.0, 40.0, 55.0):
                result = diagnosis.diagnose(rng.normal(0, 0.05, samples), fs_hz, shaft_hz, bearings.bearing("6205"),
                                            iso.ZoneLimits.for_machine())
                if result.condition is not Condition.OK:
                    alarms.append((fs_hz, samples, shaft_hz, result.condition, result.reasons[-1]))
    assert len(alarms) <= 1 and all(condition is Condition.WARNING for *_, condition, _ in alarms), alarms


def test_band_envelope_reaches_only_its_width() -> None:
    accel = bearing_signal(90.0, 25.0, 12000.0, 4.0, 0.5, False)
    spectrum = envelope.envelope_spectrum(accel, 12000.0, band=envelope.Band(2800.0, 3200.0, 0.0))
    assert spectrum.freqs_hz[-1] <= 400.0 and spectrum.freqs_hz.size == spectrum.amplitude.size
    assert envelope.select_band(accel, 12000.0, min_low_hz=500.0, min_width_hz=700.0).high_hz - \
        envelope.select_band(accel, 12000.0, min_low_hz=500.0, min_width_hz=700.0).low_hz >= 700.0


def test_high_level_one_x_is_imbalance() -> None:
    fs_hz, shaft_hz = 5000.0, 25.0
    accel = tone_g(shaft_hz, 6.0, fs_hz, 4.0) + np.random.default_rng(1).normal(0, 0.002, 20000)
    result = diagnosis.diagnose(accel, fs_hz, shaft_hz, None, iso.ZoneLimits.for_machine())
    assert result.zone == "D" and result.condition is Condition.FAULT
    assert result.fault_type == diagnosis.IMBALANCE


def test_many_shaft_harmonics_at_a_high_level_are_looseness() -> None:
    fs_hz, shaft_hz = 5000.0, 25.0
    accel = sum(tone_g(k * shaft_hz, 3.0, fs_hz, 4.0) for k in range(1, 6))
    result = diagnosis.diagnose(accel, fs_hz, shaft_hz, None, iso.ZoneLimits.for_machine())
    assert result.zone == "D" and result.fault_type == diagnosis.LOOSENESS
    assert "2x, 3x, 4x, 5x" in result.reasons[-1]


def test_low_level_shaft_lines_name_nothing() -> None:
    fs_hz, shaft_hz = 5000.0, 25.0
    result = diagnosis.diagnose(tone_g(shaft_hz, 0.5, fs_hz, 4.0), fs_hz, shaft_hz, None, iso.ZoneLimits.for_machine())
    assert (result.condition, result.fault_type) == (Condition.OK, None)


def test_kurtogram_finds_the_resonance_band() -> None:
    accel = bearing_signal(90.0, 25.0, 12000.0, 4.0, 0.5, False)
    band = envelope.select_band(accel, 12000.0, min_low_hz=500.0)
    assert band.low_hz <= 3000.0 <= band.high_hz


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
hostile = st.one_of(st.floats(allow_nan=True, allow_infinity=True), finite)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples=st.lists(hostile, min_size=0, max_size=600), fs_hz=st.sampled_from([100.0, 3200.0, 12000.0]),
       rpm=st.floats(1.0, 10000.0))
def test_diagnose_never_crashes_on_hostile_input(samples: list[float], fs_hz: float, rpm: float) -> None:
    try:
        result = diagnosis.diagnose(np.array(samples), fs_hz, rpm / 60.0, bearings.bearing("6205"),
                                    iso.ZoneLimits.for_machine())
    except ValueError as exc:
        assert str(exc)  # a clear sentence, never a bare crash
        return
    json.dumps(result.to_dict())  # always serialisable
    assert 0.0 <= result.confidence <= 1.0
    assert math.isfinite(result.severity.velocity_rms_mm_s)


@settings(max_examples=40, deadline=None)
@given(samples=st.lists(hostile, min_size=0, max_size=300))
def test_velocity_rms_rejects_or_answers_finitely(samples: list[float]) -> None:
    try:
        value = vibration.velocity_rms_mm_s(np.array(samples), 1000.0)
    except ValueError:
        assert len(samples) < vibration.MIN_SAMPLES or not np.all(np.isfinite(samples))
        return
    assert math.isfinite(value) and value >= 0


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".wav"])
def test_cli_reads_npy_csv_and_wav(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    fs_hz = 12000
    accel = bearing_signal(3.5848 * 25.0, 25.0, fs_hz, 3.0, 0.3, False, shaft_g=0.02).astype(np.float32)
    path = tmp_path / f"burst{suffix}"
    if suffix == ".npy":
        np.save(path, accel)
    elif suffix == ".csv":
        path.write_text("accel_g\n" + "\n".join(f"{v:.6f}" for v in accel))
    else:
        wavfile.write(path, fs_hz, accel)
    argv = ["vibration", "analyze", str(path), "--rpm", "1500", "--bearing", "6205", "--json"]
    assert main([*argv, "--fs", str(fs_hz)] if suffix != ".wav" else argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fault_type"] == "outer_race" and out["condition"] == "fault"


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.npy"
    np.save(path, np.full(4096, np.nan))
    assert main(["vibration", "analyze", str(path), "--fs", "1000", "--rpm", "1500"]) == 1
    assert "NaN/inf" in capsys.readouterr().err
    assert main(["vibration", "analyze", str(path), "--rpm", "1500"]) == 2
    assert "--fs" in capsys.readouterr().err
    assert main(["vibration", "analyze", str(tmp_path / "missing.npy"), "--fs", "1000", "--rpm", "1"]) == 1
    assert main(["vibration", "analyze", str(path), "--fs", "1000", "--rpm", "1500", "--multiples", "1,2"]) == 2
    assert "BPFO,BPFI,BSF,FTF" in capsys.readouterr().err


def test_cli_refuses_text_complex_and_ragged_recordings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--fs", "12000", "--rpm", "1500"]
    np.save(tmp_path / "text.npy", np.array(["0.1", "abc"] * 300))
    np.save(tmp_path / "complex.npy", np.exp(1j * np.arange(4096.0)))
    (tmp_path / "ragged.csv").write_text("time,accel_g\n0,0.1\n1\n2,0.3\n")
    (tmp_path / "words.csv").write_text("accel_g\n0.1\nloud\n")
    expected = {"text.npy": r"holds <U3 values", "complex.npy": "holds complex values",
                "ragged.csv": r"ragged\.csv:3: row has 1 column", "words.csv": r"words\.csv:3: 'loud' is not a number"}
    for name, message in expected.items():
        assert main(["vibration", "analyze", str(tmp_path / name), *argv]) == 1
        err = capsys.readouterr().err
        assert re.search(message, err) and "Traceback" not in err, err


def test_complex_samples_are_refused_by_the_analytics() -> None:
    with pytest.raises(ValueError, match="complex"):
        vibration.check_burst(np.exp(1j * np.arange(4096.0)), 12000.0)


@pytest.mark.parametrize("fs_hz", [1e-9, 1.0, 100.0, 199.0])
def test_a_rate_that_cannot_carry_the_iso_band_is_an_error(tmp_path: Path, fs_hz: float,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "burst.npy", np.random.default_rng(0).normal(0, 0.05, 12000))
    assert main(["vibration", "analyze", str(tmp_path / "burst.npy"), "--fs", str(fs_hz), "--rpm", "1500"]) == 1
    assert "cannot carry the 10-1000 Hz vibration band: give at least 200 Hz" in capsys.readouterr().err


def test_a_partial_band_says_so_and_an_ok_is_less_sure() -> None:
    noise = np.random.default_rng(1).normal(0, 0.002, 12000)  # zone A at any rate
    limits = iso.ZoneLimits.for_machine()
    full = diagnosis.diagnose(noise, 12000.0, None, None, limits)
    partial = diagnosis.diagnose(noise, 500.0, None, None, limits)
    assert full.condition is partial.condition is Condition.OK
    assert "iso_band_coverage" not in full.values and partial.values["iso_band_coverage"] == pytest.approx(0.699, 1e-3)
    assert any("carries only 10-250 Hz of the 10-1000 Hz band" in reason for reason in partial.reasons)
    assert partial.confidence < full.confidence


def test_bearing_lines_above_the_rate_are_not_analysed_and_say_why() -> None:
    noise = np.random.default_rng(2).normal(0, 0.002, 4096)
    result = diagnosis.diagnose(noise, 1000.0, 25.0, bearings.bearing("6205"), iso.ZoneLimits.for_machine())
    assert not result.matches and "bearing_scores_db" not in result.values
    assert any(reason.startswith("bearing lines not analysed: the inner_race line at 135.4 Hz needs a sample rate "
                                 "of at least 1083 Hz") for reason in result.reasons)
    assert result.confidence <= 0.5


def test_cli_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``edgewatch vibration analyze --json | head -c 10``: the reader is gone before the output."""
    path = tmp_path / "burst.npy"
    np.save(path, bearing_signal(3.5848 * 25.0, 25.0, 12000, 1.0, 0.3, False).astype(np.float32))
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, whatever the timing
    try:
        done = subprocess.run(
            [sys.executable, "-m", "edge", "vibration", "analyze", str(path), "--fs", "12000", "--rpm", "1500",
             "--json"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr
