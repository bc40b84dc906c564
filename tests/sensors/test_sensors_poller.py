"""The poller (threads, timeouts, retries, stale) and the analyzer (reading -> Evidence):
bad data becomes SENSOR_HEALTH evidence, never a crash and never a false ok."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import SensorError
from edge.evidence import Condition, EvidenceKind
from edge.sensors.analysis import SensorAnalyzer
from edge.sensors.base import Reading
from edge.sensors.poller import SensorPoller, SensorStatus
from tests.conftest import CwruRecords
from tests.sensors_support import burst_sensor, sensor_config
from tests.waiting import wait_until

TEMPERATURE = {"name": "temp", "quantity": "temperature", "unit": "degC", "type": "command", "command": ["true"]}


def sensor(**fields: Any) -> Any:
    return sensor_config(TEMPERATURE, **fields)


class ScriptedReader:
    """Returns (or raises) the scripted items in turn; the last one repeats."""

    def __init__(self, name: str, items: list[Any], hold: threading.Event | None = None) -> None:
        self.name, self.items, self.hold, self.calls, self.closed = name, list(items), hold, 0, False

    def read(self) -> Reading:
        self.calls += 1
        if self.hold is not None:  # a driver wedged until the test lets go
            self.hold.wait()
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        if isinstance(item, Exception):
            raise item
        return Reading(self.name, time.time(), "degC", value=item)

    def close(self) -> None:
        self.closed = True


def no_wait(stop: threading.Event, seconds: float) -> bool:
    """The poller's wait, for tests that call ``poll`` directly: back-off costs no time."""
    return stop.is_set()


def test_a_hung_sensor_never_blocks_the_others() -> None:
    release = threading.Event()
    slow = ScriptedReader("slow", [20.0], hold=release)
    fast = ScriptedReader("fast", [21.0])
    configs = [sensor(name="slow", interval_s=0.05, timeout_s=0.05, retries=0), sensor(name="fast", interval_s=0.01)]
    try:
        with SensorPoller([(configs[0], slow), (configs[1], fast)]) as poller:
            assert wait_until(lambda: fast.calls >= 5 and poller.status("slow").problem != "no reading yet")
            snapshot = poller.snapshot()
    finally:
        release.set()
    assert snapshot["fast"].healthy and snapshot["fast"].reading.value == 21.0
    assert not snapshot["slow"].healthy
    assert "timed out after 0.05 s" in snapshot["slow"].problem or "still hanging" in snapshot["slow"].problem
    assert slow.closed and fast.closed
    hung = [t for t in threading.enumerate() if t.name == "read-slow"]
    assert hung and all(t.daemon for t in hung)  # a wedged read cannot hold up the process exiting


def test_retries_with_backoff_then_recovery() -> None:
    reader = ScriptedReader("temp", [SensorError("bus busy"), SensorError("bus busy"), 22.5])
    waits: list[float] = []
    poller = SensorPoller([(sensor(retries=2, interval_s=5), reader)], wait=lambda _, s: bool(waits.append(s)))
    status = poller.poll("temp")
    assert status.healthy and status.reading.value == 22.5 and reader.calls == 3
    assert waits == [0.5, 1.0]  # doubling back-off between the tries
    poller.close()


def test_failure_after_all_retries_is_unhealthy_with_the_reason() -> None:
    reader = ScriptedReader("temp", [SensorError("no ACK")])
    poller = SensorPoller([(sensor(retries=1, interval_s=0.1), reader)], wait=no_wait)
    status = poller.poll("temp")
    assert not status.healthy and status.problem == "no ACK" and status.consecutive_failures == 2
    poller.close()


def test_stale_after_silence() -> None:
    now = [1000.0]
    poller = SensorPoller([(sensor(stale_after_s=60), ScriptedReader("temp", [20.0]))], clock=lambda: now[0])
    assert poller.poll("temp").healthy
    now[0] += 61
    status = poller.status("temp")
    assert not status.healthy and status.problem.startswith("stale: no good reading for 61 s")
    assert status.reading.value == 20.0  # the last good value is kept, but marked stale
    poller.close()


@pytest.mark.parametrize(
    ("fields", "values", "message"),
    [
        ({}, [float("nan")], "not a number"),
        ({}, [float("inf")], "not a number"),
        ({"min_valid": -40, "max_valid": 150}, [900.0], "above the physical maximum 150"),
        ({"min_valid": -40, "max_valid": 150}, [-273.0], "below the physical minimum -40"),
        ({"max_jump": 5}, [20.0, 60.0], "jumped from 20 to 60"),
    ],
)
def test_bad_readings_are_rejected_not_repaired(fields: dict, values: list[float], message: str) -> None:
    poller = SensorPoller([(sensor(retries=0, **fields), ScriptedReader("temp", values))])
    for _ in values:
        status = poller.poll("temp")
    assert not status.healthy and message in status.problem
    evidence = SensorAnalyzer([poller.channels["temp"].config]).evaluate({"temp": status})
    assert evidence[0].kind is EvidenceKind.SENSOR_HEALTH and evidence[0].condition is None
    assert message in evidence[0].reasons[0] and evidence[0].reasons[0].startswith("sensor unhealthy")
    poller.close()


@pytest.mark.parametrize(
    ("samples", "message"),
    [(np.full(4096, np.nan), "NaN/inf"), (np.zeros(4096), "flat at 0"), (np.ones(10), "fewer than the 256"),
     (np.r_[np.random.default_rng(0).normal(0, 1, 4095), 200.0], "above the physical maximum 50")],
)
def test_bad_bursts_become_sensor_health(samples: np.ndarray, message: str) -> None:
    config = burst_sensor(max_valid=50)
    evidence = SensorAnalyzer([config]).analyse(Reading("de", 1.0, "g", samples=samples, rate_hz=12000))
    assert evidence.kind is EvidenceKind.SENSOR_HEALTH and evidence.condition is None
    assert message in evidence.reasons[0]


def test_a_real_cwru_burst_through_the_analyzer(cwru_records: CwruRecords) -> None:
    samples = cwru_records["OR007_centered_at_6_0"].samples()[:24000]  # a 2 s burst, as a sensor would send
    evidence = SensorAnalyzer([burst_sensor()]).analyse(Reading("de", 5.0, "g", samples=samples, rate_hz=12000))
    assert evidence.kind is EvidenceKind.VIBRATION and evidence.source == "vibration:de"
    assert evidence.condition is Condition.FAULT and evidence.fault_type == "outer_race"
    values = json.loads(json.dumps(evidence.to_dict()))["values"]
    assert values["zone"] == "A" and values["velocity_rms_mm_s"] > 0
    assert "x shaft" in evidence.reasons[-1] and "outer-race defect" in evidence.reasons[-1]


def test_vibration_baseline_catches_what_iso_zones_and_patterns_miss(cwru_records: CwruRecords) -> None:
    """IR028 shows no BPFI pattern and stays in zone A, but it is far rougher than this
    machine's normal: the learned velocity baseline says so."""
    config = burst_sensor(analytics={"baseline": {"warmup": 4, "z_warn": 4, "z_fault": 6}})
    analyzer = SensorAnalyzer([config])
    normal = cwru_records["normal_0"].samples()
    for i in range(5):
        burst = normal[i * 48000 : (i + 1) * 48000]
        evidence = analyzer.analyse(Reading("de", float(i), "g", samples=burst, rate_hz=48000))
        assert evidence.condition is Condition.OK, evidence.reasons
    assert analyzer.state_dict()["de"]["baseline"]["count"] == 5
    rough = cwru_records["IR028_0"].samples()[:24000]
    evidence = SensorAnalyzer([config], state=analyzer.state_dict()).analyse(
        Reading("de", 10.0, "g", samples=rough, rate_hz=12000))
    assert evidence.condition is Condition.FAULT and evidence.fault_type is None
    assert evidence.values["zone"] == "A" and evidence.values["velocity_baseline_z"] > 6
    assert "sigma from its learned normal" in evidence.reasons[-1]


def test_scalar_evidence_with_ambient_and_persisted_baseline() -> None:
    motor = sensor(name="motor", warn_above=90, analytics={"ambient_sensor": "room", "ambient_warn_delta": 30,
                                                          "baseline": {"warmup": 3, "z_warn": 4, "z_fault": 6}})
    room = sensor(name="room")
    analyzer = SensorAnalyzer([motor, room])

    def status(name: str, value: float, t: float) -> SensorStatus:
        return SensorStatus(name, True, Reading(name, t, "degC", value=value), None, t, 0)

    for i, value in enumerate([40.0, 40.5, 39.5, 40.2]):
        t = i * 10.0
        evidence = analyzer.evaluate({"motor": status("motor", value, t), "room": status("room", 22.0, t)})
    assert [e.condition for e in evidence] == [Condition.OK, Condition.OK]
    assert evidence[0].kind is EvidenceKind.THERMAL and evidence[0].values["value_c"] == 40.2
    assert evidence[0].values["above_ambient_c"] == pytest.approx(18.2)

    saved = json.loads(json.dumps(analyzer.state_dict()))
    restored = SensorAnalyzer([motor, room], state=saved)
    hot = restored.evaluate({"motor": status("motor", 60.0, 50.0), "room": status("room", 22.0, 50.0)})[0]
    assert hot.condition is Condition.FAULT  # learned normal survived the restart: +20 degC is many sigma
    assert any("above ambient" in reason for reason in hot.reasons)
    assert any("sigma from its learned normal" in reason for reason in hot.reasons)


def test_the_same_reading_is_judged_and_learned_once() -> None:
    analyzer = SensorAnalyzer([sensor(analytics={"baseline": {"warmup": 2}})])
    reading = Reading("temp", 10.0, "degC", value=40.0)
    first = analyzer.analyse(reading)
    assert analyzer.analyse(reading) is first
    assert analyzer.state_dict()["temp"]["baseline"]["count"] == 1
    analyzer.analyse(Reading("temp", 20.0, "degC", value=40.0))
    assert analyzer.state_dict()["temp"]["baseline"]["count"] == 2


def test_missing_or_unpolled_sensor_is_sensor_health_not_ok() -> None:
    evidence = SensorAnalyzer([sensor()]).evaluate({})
    assert evidence[0].kind is EvidenceKind.SENSOR_HEALTH and "not polled" in evidence[0].reasons[0]


def test_corrupt_saved_state_is_relearned() -> None:
    analyzer = SensorAnalyzer([sensor()], state={"temp": {"baseline": {"mean": "x"}}})
    assert analyzer.state_dict()["temp"]["baseline"]["count"] == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=400))
def test_analyzer_never_raises_and_never_says_ok_on_garbage(values: list[float]) -> None:
    config = burst_sensor(max_valid=50)
    samples = np.array(values, dtype=np.float64)
    evidence = SensorAnalyzer([config]).analyse(Reading("de", 1.0, "g", samples=samples, rate_hz=12000))
    json.dumps(evidence.to_dict())
    garbage = samples.size < 256 or not np.all(np.isfinite(samples)) or np.ptp(samples) == 0 or samples.max() > 50
    if garbage:
        assert evidence.kind is EvidenceKind.SENSOR_HEALTH and evidence.condition is None


def test_poller_threads_stop_promptly() -> None:
    reader = ScriptedReader("temp", [20.0])
    poller = SensorPoller([(sensor(interval_s=30), reader)])
    poller.start()
    assert wait_until(lambda: reader.calls == 1)  # now in its 30 s wait, which close must cut short
    poller.close()
    assert not any(t.is_alive() for t in threading.enumerate() if t.name == "poll-temp")


def test_vibration_without_settings_is_judged_on_level_alone() -> None:
    config = burst_sensor(name="fan", rate_hz=5000, vibration=None)
    t = np.arange(10000) / 5000
    burst = 0.5 * np.sin(2 * np.pi * 50 * t)  # 0.5 g at 50 Hz: 15.6 mm/s peak, 11.04 mm/s RMS, zone D
    evidence = SensorAnalyzer([config]).analyse(Reading("fan", 1.0, "g", samples=burst, rate_hz=5000))
    assert evidence.kind is EvidenceKind.VIBRATION and evidence.condition is Condition.FAULT
    assert evidence.values["zone"] == "D" and evidence.values["velocity_rms_mm_s"] == pytest.approx(11.04, rel=0.02)


@pytest.mark.parametrize(("sensor_yaml", "message"), [
    ('{name: motor, type: command, command: ["true"], quantity: temperature, analytics: {ambient_sensor: room}}',
     "ambient_sensor 'room' is not another sensor of this asset"),
    ("{name: de, type: replay, path: x.npy, rate_hz: 12000, quantity: vibration, "
     "vibration: {rpm: 1480, speed_sensor: tacho}}", "speed_sensor 'tacho' is not another sensor of this asset"),
])
def test_config_refuses_an_unknown_companion_sensor(tmp_path: Path, sensor_yaml: str, message: str) -> None:
    from edge.errors import ConfigError
    from edge.settings import load_config

    path = tmp_path / "config.yaml"
    path.write_text(f"""
assets:
  - id: press-1
    sensors:
      - {sensor_yaml}
""")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_speed_channel_sets_the_speed_diagnosed_at(cwru_records: CwruRecords) -> None:
    """A tachometer (or a VFD's measured motor speed) on the same asset: the burst is diagnosed at its
    speed; an implausible one is ignored and the speed is read from the burst instead."""
    samples = cwru_records["IR007_0"].samples()[:24000]
    vibration = {"rpm": 1710, "bearing": "6205", "speed_sensor": "tacho"}
    tacho = sensor(name="tacho", quantity="speed", unit="rpm")
    analyzer = SensorAnalyzer([burst_sensor(vibration=vibration), tacho])

    def judged(rpm: float, timestamp: float) -> Any:
        status = {"tacho": SensorStatus("tacho", True, Reading("tacho", timestamp, "rpm", value=rpm), None, 1.0, 0)}
        return analyzer.analyse(Reading("de", timestamp, "g", samples=samples, rate_hz=12000), status)

    measured = judged(1797.0, 1.0)
    assert measured.values["speed_source"] == "channel" and measured.values["rpm"] == pytest.approx(1797.0)
    assert (measured.condition, measured.fault_type) == (Condition.FAULT, "inner_race")
    implausible = judged(3000.0, 2.0)  # far outside the range: a scaling error, not the shaft
    assert implausible.values["speed_source"] == "signal"
    assert implausible.values["rpm"] == pytest.approx(1797.0, rel=0.005)
