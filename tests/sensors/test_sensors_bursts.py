"""Wide-band burst readers: a real ``arecord`` capturing through ALSA (its file plugin stands in for
the sound card), a real Mosquitto broker carrying bursts from a wireless node, real subprocesses
printing npy/WAV, and register-level fakes of the SPI chips (no hardware is attached). A gapped,
overrun, clipped or short burst becomes sensor-health evidence with the reason, never analysis."""

from __future__ import annotations

import base64
import io
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.io import wavfile

from edge.errors import SensorError
from edge.evidence import EvidenceKind
from edge.sensors import health
from edge.sensors.analysis import SensorAnalyzer
from edge.sensors.base import Reading
from edge.sensors.plugins import build_reader
from edge.sensors.soundcard import capture_defect
from edge.sensors.spi import SpiReader
from tests.sensors_support import sensor_config


def sensor(**fields: Any) -> Any:
    return sensor_config({"name": "de", "quantity": "vibration", "unit": "g"}, **fields)


def judged(config: Any, reading: Reading) -> Any:
    return SensorAnalyzer([config]).analyse(reading)


def tone_g(n: int, fs_hz: float, amplitude_g: float = 0.5) -> np.ndarray:
    return amplitude_g * np.sin(2 * np.pi * 1000.0 * np.arange(n) / fs_hz)


# --- sound card through ALSA -------------------------------------------------------------------


@pytest.fixture
def alsa_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ALSA capture PCM named 'rig' whose samples come from a raw file (ALSA's file plugin)."""
    if shutil.which("arecord") is None:
        pytest.fail("arecord is not installed (Debian package alsa-utils; scripts/test.sh installs it)")
    infile = tmp_path / "capture.raw"
    (tmp_path / ".asoundrc").write_text(
        f'pcm.rig {{\n type file\n slave.pcm null\n file "/dev/null"\n infile "{infile}"\n format raw\n}}\n')
    monkeypatch.setenv("HOME", str(tmp_path))
    return infile


def test_soundcard_burst_in_g_from_a_real_alsa_capture(alsa_device: Path) -> None:
    fs_hz, n = 48000, 8192
    left = np.round(tone_g(n, fs_hz, 0.25) * 32767).astype("<i2")  # 0.25 of full scale
    right = np.zeros(n, dtype="<i2")
    alsa_device.write_bytes(np.column_stack([right, left]).tobytes())  # the accelerometer is on channel 1
    config = sensor(type="soundcard", device="rig", rate_hz=fs_hz, burst_samples=n, channels=2, channel=1,
                    full_scale_v=5.0, sensitivity_mv_per_g=100.0)
    reading = build_reader(config).read()
    # 5 V full scale / 100 mV/g = 50 g at full scale: a quarter of it is 12.5 g
    assert reading.rate_hz == fs_hz and reading.samples.shape == (n,)
    assert reading.samples.max() == pytest.approx(12.5, rel=0.001)
    assert reading.full_scale == pytest.approx(50.0) and reading.defect is None
    assert health.problem(config, reading) is None


def test_soundcard_clipped_capture_never_reaches_analysis(alsa_device: Path) -> None:
    n = 4096
    alsa_device.write_bytes(np.clip(np.round(tone_g(n, 48000, 2.0) * 32767), -32768, 32767).astype("<i2").tobytes())
    config = sensor(type="soundcard", device="rig", burst_samples=n, full_scale_v=1.0, sensitivity_mv_per_g=100.0)
    evidence = judged(config, build_reader(config).read())
    assert evidence.kind is EvidenceKind.SENSOR_HEALTH and "burst is clipped" in evidence.reasons[0]


def test_soundcard_unknown_device_is_a_clear_error(alsa_device: Path) -> None:
    config = sensor(type="soundcard", device="nosuchcard", burst_samples=1024, full_scale_v=1.0)
    with pytest.raises(SensorError, match=r"ALSA nosuchcard.*arecord exited"):
        build_reader(config).read()


def test_alsa_overrun_is_a_defect() -> None:
    assert "samples were lost" in capture_defect("overrun!!! (at least 12.345 ms long)")
    assert capture_defect("") is None


# --- SPI FIFO accelerometers (register-level fakes) ----------------------------------------------


class FakeIis3dwb:
    """IIS3DWB on SPI: a 0.5 g 1 kHz sine on z at 26.667 kHz, 100 words per FIFO poll; from word
    ``overrun_at`` on the FIFO flags overrun."""

    def __init__(self, overrun_at: int | None = None) -> None:
        self.registers: dict[int, int] = {0x0F: 0x7B}
        self.index, self.overrun_at, self.queued = 0, overrun_at, 0

    def xfer2(self, data: list[int]) -> list[int]:
        register = data[0] & 0x7F
        if not data[0] & 0x80:
            self.registers[register] = data[1]
            return [0, 0]
        if register == 0x3A:
            overrun = self.overrun_at is not None and self.index >= self.overrun_at
            self.queued = 100
            return [0, self.queued & 0xFF, (0x40 if overrun else 0) | self.queued >> 8]
        if register == 0x78:
            assert self.registers.get(0x0A) == 0x06 and self.registers.get(0x10, 0) & 0xA0 == 0xA0
            z = round(0.5 * np.sin(2 * np.pi * 1000.0 * self.index / 26667.0) / 0.000488)
            self.index += 1
            return [0, 0x02 << 3, *(0).to_bytes(2, "little"), *(0).to_bytes(2, "little"),
                    *z.to_bytes(2, "little", signed=True)]
        return [0] + [self.registers.get(register, 0)] * (len(data) - 1)


class FakeAdxl355:
    """ADXL355 on SPI: a 0.2 g sine on x at 4 kHz, 30 sets per poll; overrun from set ``overrun_at``."""

    def __init__(self, overrun_at: int | None = None) -> None:
        self.registers: dict[int, int] = {0x00: 0xAD}
        self.index, self.overrun_at = 0, overrun_at

    def xfer2(self, data: list[int]) -> list[int]:
        register, reading = data[0] >> 1, data[0] & 1
        if not reading:
            self.registers[register] = data[1]
            return [0, 0]
        if register == 0x04:
            return [0, 0x04 if self.overrun_at is not None and self.index >= self.overrun_at else 0x01]
        if register == 0x05:
            return [0, 90]
        if register == 0x11:
            assert self.registers.get(0x2D) == 0x00  # measuring
            raw = round(0.2 * np.sin(2 * np.pi * 50.0 * self.index / 4000.0) * 256_000) & 0xFFFFF
            self.index += 1
            x = [raw >> 12, (raw >> 4) & 0xFF, (raw & 0x0F) << 4 | 0x01]
            return [0, *x, 0, 0, 0, 0, 0, 0]
        return [0, self.registers.get(register, 0)]


def test_iis3dwb_fifo_burst() -> None:
    bus = FakeIis3dwb()
    config = sensor(type="spi", chip="iis3dwb", range_g=16, burst_samples=2048)
    reading = SpiReader(config, bus).read()
    assert bus.registers[0x10] == 0xA4 and bus.registers[0x09] == 0x0A  # 26.7 kHz, +-16 g
    assert reading.rate_hz == 26667.0 and reading.samples.shape == (2048,)
    assert reading.samples.max() == pytest.approx(0.5, abs=0.002)
    assert health.problem(config, reading) is None


def test_adxl355_fifo_burst_decodes_20_bit_samples() -> None:
    config = sensor(type="spi", chip="adxl355", range_g=2, axis="x", burst_samples=1024)
    reading = SpiReader(config, FakeAdxl355()).read()
    assert reading.rate_hz == 4000.0 and reading.samples.shape == (1024,)
    assert reading.samples.min() == pytest.approx(-0.2, abs=1e-4)
    assert reading.samples.max() == pytest.approx(0.2, abs=1e-4)


@pytest.mark.parametrize(("chip", "bus"), [("iis3dwb", FakeIis3dwb(overrun_at=500)),
                                           ("adxl355", FakeAdxl355(overrun_at=300))])
def test_spi_fifo_overrun_becomes_sensor_health(chip: str, bus: Any) -> None:
    config = sensor(type="spi", chip=chip, range_g=8, burst_samples=2048)
    reading = SpiReader(config, bus).read()
    evidence = judged(config, reading)
    assert evidence.kind is EvidenceKind.SENSOR_HEALTH and evidence.condition is None
    assert "burst unusable: FIFO overrun after" in evidence.reasons[0]


def test_spi_config_knows_the_chips_limits() -> None:
    with pytest.raises(ValueError, match="adxl355 ranges"):
        sensor(type="spi", chip="adxl355", range_g=16)
    with pytest.raises(ValueError, match="26667 Hz only"):
        sensor(type="spi", chip="iis3dwb", rate_hz=10000)


# --- a command printing a burst ----------------------------------------------------------------


def _printer(tmp_path: Path, payload: bytes) -> list[str]:
    path = tmp_path / "burst.bin"
    path.write_bytes(payload)
    return [sys.executable, "-c", f"import sys; sys.stdout.buffer.write(open({str(path)!r}, 'rb').read())"]


def test_command_prints_an_npy_burst(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, tone_g(4096, 12000).astype(np.float32))
    config = sensor(type="command", command=_printer(tmp_path, buffer.getvalue()), output="npy", rate_hz=12000,
                    burst_samples=4096)
    reading = build_reader(config).read()
    assert reading.rate_hz == 12000 and reading.samples.shape == (4096,) and health.problem(config, reading) is None


def test_command_prints_a_wav_burst_in_counts(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    wavfile.write(buffer, 25600, np.round(tone_g(4096, 25600, 0.5) * 1000).astype(np.int16))  # 1 mg per count
    config = sensor(type="command", command=_printer(tmp_path, buffer.getvalue()), output="wav", scale=0.001)
    reading = build_reader(config).read()
    assert reading.rate_hz == 25600 and reading.samples.max() == pytest.approx(0.5, abs=0.001)
    assert reading.full_scale == pytest.approx(32.767)


def test_command_short_or_garbage_bursts(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, tone_g(1000, 12000))
    config = sensor(type="command", command=_printer(tmp_path, buffer.getvalue()), output="npy", rate_hz=12000,
                    burst_samples=4096)
    evidence = judged(config, build_reader(config).read())
    assert evidence.kind is EvidenceKind.SENSOR_HEALTH and "short burst: 1000 of the 4096" in evidence.reasons[0]
    garbage = sensor(type="command", command=_printer(tmp_path, b"12.5\n"), output="npy", rate_hz=12000)
    with pytest.raises(SensorError, match=r"not a \.npy array"):
        build_reader(garbage).read()
    with pytest.raises(ValueError, match="needs rate_hz"):
        sensor(type="command", command=["x"], output="npy")


# --- bursts from a wireless node over a real Mosquitto broker -----------------------------------


def node_payload(samples_g: np.ndarray, **fields: Any) -> bytes:
    counts = np.round(samples_g / 0.001).astype("<i2")
    message = {"rate_hz": 25600, "dtype": "int16", "scale": 0.001, "timestamp": 1767225600.25,
               "samples": base64.b64encode(counts.tobytes()).decode(), **fields}
    return json.dumps(message).encode()


def test_mqtt_bursts_from_a_wireless_node(mqtt_broker: tuple[str, int]) -> None:
    import paho.mqtt.publish as publish

    host, port = mqtt_broker
    topic = "plant/press-1/node-7/burst"
    config = sensor(type="mqtt", host=host, port=port, topic=topic, payload="burst", burst_samples=4096,
                    timeout_s=3, max_payload_bytes=65536)
    reader = build_reader(config)
    try:
        assert reader.wait_connected(5)
        time.sleep(0.05)  # subscription settles
        publish.single(topic, node_payload(tone_g(4096, 25600)), hostname=host, port=port, qos=1)
        reading = reader.read()
        assert (reading.rate_hz, reading.timestamp, reading.samples.shape) == (25600.0, 1767225600.25, (4096,))
        assert reading.samples.max() == pytest.approx(0.5, abs=0.001) and health.problem(config, reading) is None

        publish.single(topic, node_payload(tone_g(4096, 25600), dropped=12), hostname=host, port=port, qos=1)
        gapped = judged(config, reader.read())
        assert gapped.kind is EvidenceKind.SENSOR_HEALTH and "lost 12 sample(s)" in gapped.reasons[0]

        publish.single(topic, node_payload(tone_g(40000, 25600)), hostname=host, port=port, qos=1)
        with pytest.raises(SensorError, match="exceeds max_payload_bytes 65536"):
            reader.read()

        publish.single(topic, b'{"rate_hz": 25600, "dtype": "int8", "samples": ""}', hostname=host, port=port, qos=1)
        with pytest.raises(SensorError, match="dtype 'int8' is not one of int16, float32"):
            reader.read()
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("payload", "message"),
    [(b"not json", "not JSON"), (b"[1, 2]", "must be a JSON object"), (b'{"samples": ""}', "has no 'rate_hz'"),
     (b'{"rate_hz": 100, "dtype": "float32", "samples": "@@"}', "not valid base64"),
     (b'{"rate_hz": 100, "dtype": "float32", "samples": "AAA="}', "not a whole number"),
     (b'{"rate_hz": -1, "samples": ""}', "must be a positive number")],
)
def test_malformed_burst_payloads_name_what_is_wrong(payload: bytes, message: str) -> None:
    from edge.sensors.bursts import decode_mqtt_burst

    with pytest.raises(SensorError, match=message):
        decode_mqtt_burst(payload, "node", max_samples=1000)


def test_missing_spidev_or_arecord_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.errors import ConfigError

    monkeypatch.setitem(sys.modules, "spidev", None)
    with pytest.raises(ConfigError, match=r"pip install 'edgewatch\[spi\]'"):
        build_reader(sensor(type="spi", chip="iis3dwb"))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="apt install alsa-utils"):
        build_reader(sensor(type="soundcard", full_scale_v=1.0))
