"""Sensor config: a discriminated union on ``type``; physical limits make bad readings visible.

Each reader type reads only its own fields; the analytics settings (``vibration`` for
accelerometer bursts, ``analytics`` for scalar channels) are shared by every type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge.config.section import ConfigPath, Section

Quantity = Literal["temperature", "vibration", "current", "pressure", "humidity", "speed", "generic"]


class VibrationAnalytics(Section):
    rpm: float = Field(gt=0, description="Nominal (nameplate) shaft speed in rpm; the true one is measured.")
    speed_range: float = Field(
        0.08, ge=0, le=0.3,
        description="Search the true speed within this fraction of rpm (slip, VFDs); 0 takes rpm as exact.",
    )
    speed_sensor: str | None = Field(
        None, description="Sensor on the same asset giving the shaft speed (rpm, or Hz if its unit is 'Hz')."
    )
    bearing: str | None = Field(None, description="Bearing from the built-in catalogue, e.g. '6205'.")
    multiples: tuple[float, float, float, float] | None = Field(
        None, description="Defect frequencies as multiples of shaft speed: BPFO, BPFI, BSF, FTF."
    )
    machine_group: Literal[1, 2] = Field(2, description="ISO 10816-3 machine group (1: >300 kW, 2: 15-300 kW).")
    foundation: Literal["rigid", "flexible"] = Field("rigid", description="ISO 10816-3 foundation class.")
    zone_limits_mm_s: tuple[float, float, float] | None = Field(
        None, description="Override of the A/B, B/C, C/D boundaries in mm/s (default from ISO 10816-3)."
    )

    @model_validator(mode="after")
    def _one_bearing_source(self) -> VibrationAnalytics:
        if self.bearing is not None and self.multiples is not None:
            raise ValueError("give either 'bearing' or 'multiples', not both")
        limits = self.zone_limits_mm_s
        if limits is not None and not 0 < limits[0] < limits[1] < limits[2]:
            raise ValueError("zone_limits_mm_s must be three rising positive numbers (A/B, B/C, C/D)")
        if self.bearing is not None:
            from edge.analytics.bearings import bearing

            bearing(self.bearing)  # raises ValueError naming the catalogue
        return self


class BaselineSettings(Section):
    enabled: bool = Field(True, description="Learn this channel's normal level and flag departures.")
    alpha: float = Field(0.01, gt=0, le=1, description="EWMA weight of a new reading (0.01 = ~100 readings memory).")
    warmup: int = Field(30, ge=2, description="Readings to learn from before z-scores count.")
    z_warn: float = Field(4.0, gt=0, description="|z| above this: warning.")
    z_fault: float = Field(6.0, gt=0, description="|z| above this: fault.")


class ScalarAnalytics(Section):
    rise_warn_per_min: float | None = Field(None, gt=0, description="Rate of rise (unit per minute) for a warning.")
    rise_fault_per_min: float | None = Field(None, gt=0, description="Rate of rise (unit per minute) for a fault.")
    rise_window_s: float = Field(300.0, gt=0, description="Rate of rise is the slope over this window.")
    ambient_sensor: str | None = Field(None, description="Name of a sensor on the same asset giving ambient.")
    ambient_warn_delta: float | None = Field(None, gt=0, description="Value minus ambient above this: warning.")
    ambient_fault_delta: float | None = Field(None, gt=0, description="Value minus ambient above this: fault.")
    baseline: BaselineSettings = Field(
        default_factory=lambda: BaselineSettings.model_validate({}), description="Learned-normal baseline."
    )


class SensorBase(Section):
    name: str = Field(description="Sensor name, unique within its asset.", min_length=1)
    quantity: Quantity = Field(description="What is measured; picks the analytics applied.")
    unit: str = Field("", description="Unit of the values, e.g. 'degC', 'g', 'A', 'bar'.")
    interval_s: float = Field(10.0, gt=0, description="How often to read.")
    timeout_s: float = Field(5.0, gt=0, description="A read slower than this counts as failed.")
    retries: int = Field(2, ge=0, description="Retries after a failed read, with doubling back-off.")
    stale_after_s: float = Field(60.0, gt=0, description="No good reading for this long: sensor unhealthy.")
    min_valid: float | None = Field(None, description="Physical lower limit; below it the reading is rejected.")
    max_valid: float | None = Field(None, description="Physical upper limit; above it the reading is rejected.")
    max_jump: float | None = Field(
        None, gt=0, description="Largest believable change between consecutive readings; bigger is rejected."
    )
    warn_above: float | None = Field(None, description="Absolute warning limit.")
    fault_above: float | None = Field(None, description="Absolute fault limit.")
    vibration: VibrationAnalytics | None = Field(None, description="Vibration analytics (quantity: vibration).")
    analytics: ScalarAnalytics = Field(
        default_factory=lambda: ScalarAnalytics.model_validate({}), description="Scalar-channel analytics."
    )

    @model_validator(mode="after")
    def _limits_ordered(self) -> SensorBase:
        if self.min_valid is not None and self.max_valid is not None and self.min_valid >= self.max_valid:
            raise ValueError("min_valid must be below max_valid")
        if self.warn_above is not None and self.fault_above is not None and self.warn_above > self.fault_above:
            raise ValueError("warn_above must not exceed fault_above")
        if self.vibration is not None and self.quantity != "vibration":
            raise ValueError("'vibration' settings need quantity: vibration")
        return self


class ReplaySensor(SensorBase):
    type: Literal["replay"] = Field(description="Replay a recording (CSV, JSONL or NPY).")
    path: ConfigPath = Field(description="Recording file (relative to the config file).")
    column: str | None = Field(None, description="CSV/JSONL column holding the value.")
    rate_hz: float | None = Field(None, gt=0, description="Sample rate of a vibration burst recording.")
    burst_samples: int | None = Field(
        None, ge=64, description="Samples per vibration burst; default one second at rate_hz."
    )
    loop: bool = Field(True, description="Start again at the end of the recording.")


class CommandSensor(SensorBase):
    type: Literal["command"] = Field(description="Run a command; its stdout is one number (or JSON), or a burst.")
    command: list[str] = Field(min_length=1, description="Program and arguments, no shell.")
    json_path: str | None = Field(None, description="Dotted path to the value when stdout is JSON, e.g. 'temp.c'.")
    output: Literal["value", "npy", "wav"] = Field(
        "value", description="stdout is a number/JSON ('value'), or a burst as a .npy array or a WAV file."
    )
    rate_hz: float | None = Field(None, gt=0, description="Sample rate of an npy burst (a WAV carries its own).")
    scale: float = Field(1.0, gt=0, description="Unit per count of integer PCM in a WAV burst (e.g. g per count).")
    burst_samples: int | None = Field(None, ge=256, description="Samples a burst must hold; fewer is a short burst.")

    @model_validator(mode="after")
    def _npy_needs_a_rate(self) -> CommandSensor:
        if self.output == "npy" and self.rate_hz is None:
            raise ValueError("a command with output 'npy' needs rate_hz (an .npy array does not carry its rate)")
        return self


class I2cSensor(SensorBase):
    type: Literal["i2c"] = Field(description="I2C chip through smbus2 (needs the 'i2c' extra).")
    chip: Literal["adxl345", "bme280", "tmp117"] = Field(description="Which chip is on the bus.")
    bus: int = Field(1, ge=0, description="I2C bus number (/dev/i2c-N).")
    address: int | None = Field(None, ge=0x03, le=0x77, description="7-bit address; default the chip's usual one.")
    rate_hz: float = Field(3200.0, gt=0, description="Accelerometer output data rate for bursts.")
    burst_samples: int = Field(2048, ge=64, description="Accelerometer samples per burst.")
    range_g: Literal[2, 4, 8, 16] = Field(16, description="Accelerometer full-scale range in g.")
    axis: Literal["x", "y", "z"] = Field("z", description="Accelerometer axis analysed (mount it radial).")


class SoundCardSensor(SensorBase):
    type: Literal["soundcard"] = Field(
        description="USB audio interface / sound-card input (ALSA, through arecord) with an IEPE accelerometer."
    )
    device: str = Field("default", description="ALSA capture device, e.g. 'hw:1,0' or 'plughw:CARD=Device'.")
    rate_hz: int = Field(48000, ge=8000, le=192000, description="Sample rate (48000-96000 for bearing envelopes).")
    burst_samples: int = Field(65536, ge=256, description="Samples per burst (per channel).")
    channels: int = Field(1, ge=1, le=8, description="Channels the device captures.")
    channel: int = Field(0, ge=0, description="Channel the accelerometer is wired to (0-based).")
    sample_format: Literal["S16_LE", "S32_LE"] = Field("S16_LE", description="PCM sample format.")
    full_scale_v: float = Field(
        gt=0, description="Input voltage (peak) at digital full scale, from the interface's spec or a calibrator."
    )
    sensitivity_mv_per_g: float = Field(100.0, gt=0, description="Accelerometer sensitivity in mV/g (IEPE: 10-500).")

    @model_validator(mode="after")
    def _channel_exists(self) -> SoundCardSensor:
        if self.channel >= self.channels:
            raise ValueError(f"channel {self.channel} does not exist on a {self.channels}-channel capture")
        return self


class SpiSensor(SensorBase):
    type: Literal["spi"] = Field(description="SPI MEMS accelerometer read through its FIFO with spidev ('spi' extra).")
    chip: Literal["iis3dwb", "adxl355"] = Field(
        description="iis3dwb: 26.7 kHz, flat to 6 kHz (bearing envelopes); adxl355: low noise, at most 4 kHz."
    )
    bus: int = Field(0, ge=0, description="SPI bus number (/dev/spidevB.D).")
    device: int = Field(0, ge=0, description="Chip select (/dev/spidevB.D).")
    max_speed_hz: int = Field(8_000_000, gt=0, description="SPI clock; the FIFO must be drained faster than it fills.")
    rate_hz: float | None = Field(None, gt=0, description="adxl355 output rate (4000, 2000, 1000 ...); iis3dwb: 26667.")
    range_g: Literal[2, 4, 8, 16] = Field(16, description="Full-scale range in g (adxl355: 2, 4 or 8).")
    burst_samples: int = Field(32768, ge=256, description="Samples per burst.")
    axis: Literal["x", "y", "z"] = Field("z", description="Axis analysed (mount it radial).")

    @model_validator(mode="after")
    def _chip_limits(self) -> SpiSensor:
        if self.chip == "adxl355" and self.range_g == 16:
            raise ValueError("the adxl355 ranges are 2, 4 and 8 g")
        if self.chip == "iis3dwb" and self.rate_hz not in (None, 26667.0):
            raise ValueError("the iis3dwb samples at 26667 Hz only; leave rate_hz out")
        return self


class OneWireSensor(SensorBase):
    type: Literal["onewire"] = Field(description="DS18B20 (or similar) through the Linux w1 sysfs driver.")
    device_id: str = Field(pattern=r"^[0-9a-f]{2}-[0-9a-f]{12}$", description="w1 device id, e.g. 28-0316a2795fff.")
    sysfs_root: Path = Field(Path("/sys/bus/w1/devices"), description="w1 devices folder (changed only for tests).")


class ModbusSensor(SensorBase):
    type: Literal["modbus"] = Field(description="Modbus TCP or RTU register through pymodbus ('modbus' extra).")
    transport: Literal["tcp", "rtu"] = Field("tcp", description="Modbus TCP (network) or RTU (serial).")
    host: str | None = Field(None, description="TCP: device host name or address.")
    port: int = Field(502, ge=1, le=65535, description="TCP port.")
    serial_port: str | None = Field(None, description="RTU: serial device, e.g. /dev/ttyUSB0.")
    baudrate: int = Field(9600, gt=0, description="RTU: baud rate.")
    parity: Literal["N", "E", "O"] = Field("N", description="RTU: parity.")
    unit_id: int = Field(1, ge=0, le=247, description="Modbus unit (slave) id.")
    address: int = Field(ge=0, le=65535, description="Address of the first register (0-based).")
    register_type: Literal["holding", "input"] = Field("holding", description="Holding or input registers.")
    data_type: Literal["int16", "uint16", "int32", "uint32", "float32"] = Field("uint16", description="Value type.")
    word_order: Literal["big", "little"] = Field("big", description="Order of 16-bit words in 32-bit values.")
    scale: float = Field(1.0, description="value = raw * scale + offset.")
    offset: float = Field(0.0, description="value = raw * scale + offset.")

    @model_validator(mode="after")
    def _transport_fields(self) -> ModbusSensor:
        if self.transport == "tcp" and not self.host:
            raise ValueError("modbus transport 'tcp' needs 'host'")
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("modbus transport 'rtu' needs 'serial_port'")
        return self


class MqttSensor(SensorBase):
    type: Literal["mqtt"] = Field(description="Subscribe to readings another device publishes ('mqtt' extra).")
    host: str = Field(description="Broker host.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port.")
    topic: str = Field(min_length=1, description="Topic to subscribe to (wildcards allowed).")
    json_path: str | None = Field(None, description="Dotted path to the value in a JSON payload, e.g. 'sensor.temp'.")
    username: str | None = Field(None, description="Broker user.")
    password: str | None = Field(None, description="Broker password; use ${ENV} substitution.")
    qos: Literal[0, 1] = Field(1, description="Subscription QoS.")
    payload: Literal["value", "burst"] = Field(
        "value", description="A number/JSON value, or a vibration burst (JSON with base64 samples, see sensors.md)."
    )
    max_payload_bytes: int = Field(
        1_048_576, ge=1024, le=16_777_216, description="Larger messages are rejected unread (memory on a Pi)."
    )
    burst_samples: int | None = Field(None, ge=256, description="Samples a burst must hold; fewer is a short burst.")


SensorConfig = Annotated[
    ReplaySensor | CommandSensor | I2cSensor | OneWireSensor | ModbusSensor | MqttSensor | SoundCardSensor
    | SpiSensor,
    Field(discriminator="type"),
]


class TriggerRule(Section):
    """'Check this asset now' when a sensor reading spikes or jumps (a frame is grabbed at once)."""

    sensor: str = Field(min_length=1, description="Name of a sensor of this asset.")
    above: float | None = Field(
        None, description="Trigger when the reading (RMS for a vibration burst) is above this."
    )
    jump: float | None = Field(
        None, gt=0, description="Trigger when the reading changed by more than this since the previous one."
    )

    @model_validator(mode="after")
    def _has_a_test(self) -> TriggerRule:
        if self.above is None and self.jump is None:
            raise ValueError("a trigger needs 'above' or 'jump'")
        return self
