"""I2C chips through smbus2: ADXL345 accelerometer bursts (FIFO), TMP117 and BME280 temperature.

The bus object is injectable so tests can drive the register protocol without hardware.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import numpy as np

from edge.errors import SensorError
from edge.sensors.base import Reading, require, scalar
from edge.sensors.config import I2cSensor

_DEFAULT_ADDRESS = {"adxl345": 0x53, "bme280": 0x76, "tmp117": 0x48}

# ADXL345 registers and codes (datasheet rev. G)
ADXL345_DEVID, ADXL345_ID = 0x00, 0xE5
ADXL345_BW_RATE, ADXL345_POWER_CTL, ADXL345_DATA_FORMAT = 0x2C, 0x2D, 0x31
ADXL345_DATAX0, ADXL345_FIFO_CTL, ADXL345_FIFO_STATUS = 0x32, 0x38, 0x39
ADXL345_INT_SOURCE, ADXL345_OVERRUN = 0x30, 0x01
ADXL345_FIFO_DEPTH = 32  # a full FIFO in stream mode overwrites its oldest sample with the next
ADXL345_RATE_CODES_HZ = {3200.0: 0x0F, 1600.0: 0x0E, 800.0: 0x0D, 400.0: 0x0C, 200.0: 0x0B, 100.0: 0x0A}
ADXL345_G_PER_LSB = 0.0039  # full-resolution mode, every range
ADXL345_RANGE_BITS = {2: 0, 4: 1, 8: 2, 16: 3}

TMP117_TEMP, TMP117_DEVICE_ID, TMP117_ID, TMP117_C_PER_LSB = 0x00, 0x0F, 0x0117, 0.0078125

BME280_ID_REG, BME280_ID, BME280_CALIB = 0xD0, 0x60, 0x88
BME280_CTRL_MEAS, BME280_STATUS, BME280_TEMP = 0xF4, 0xF3, 0xFA


class I2cReader:
    def __init__(self, config: I2cSensor, bus: Any | None = None) -> None:
        self.config = config
        self.address = config.address if config.address is not None else _DEFAULT_ADDRESS[config.chip]
        self.what = f"sensor {config.name} ({config.chip} at 0x{self.address:02x} on i2c-{config.bus})"
        # The bus opens at the first read: a bus the service may not open (a device sandbox, i2c not
        # enabled) is one unhealthy sensor, not a service that cannot start. A missing extra fails now.
        self._smbus: Any = require("smbus2", "i2c") if bus is None else None
        self.bus: Any = bus
        self._configured = False
        self._calibration: tuple[int, int, int] | None = None

    def read(self) -> Reading:
        if self.bus is None:
            try:
                self.bus = self._smbus.SMBus(self.config.bus)
            except OSError as exc:
                raise SensorError(f"{self.what}: cannot open /dev/i2c-{self.config.bus}: {exc}") from exc
        try:
            if not self._configured:
                self._configure()
                self._configured = True
            if self.config.chip == "adxl345":
                return self._adxl345_burst()
            if self.config.chip == "tmp117":
                return scalar(self.config, self._tmp117())
            return scalar(self.config, self._bme280_temperature())
        except OSError as exc:  # smbus2 reports NACKs and bus errors as OSError
            self._configured = False
            raise SensorError(f"{self.what}: bus error: {exc.strerror or exc}") from exc

    def _configure(self) -> None:
        chip = self.config.chip
        if chip == "adxl345":
            self._expect(self.bus.read_byte_data(self.address, ADXL345_DEVID), ADXL345_ID)
            rate = min(ADXL345_RATE_CODES_HZ, key=lambda hz: abs(hz - self.config.rate_hz))
            self.rate_hz = rate
            self.bus.write_byte_data(self.address, ADXL345_BW_RATE, ADXL345_RATE_CODES_HZ[rate])
            self.bus.write_byte_data(self.address, ADXL345_DATA_FORMAT, 0x08 | ADXL345_RANGE_BITS[self.config.range_g])
            self.bus.write_byte_data(self.address, ADXL345_FIFO_CTL, 0x80)  # stream mode
            self.bus.write_byte_data(self.address, ADXL345_POWER_CTL, 0x08)  # measure
        elif chip == "tmp117":
            word = self.bus.read_i2c_block_data(self.address, TMP117_DEVICE_ID, 2)
            self._expect(((word[0] << 8) | word[1]) & 0x0FFF, TMP117_ID)
        else:
            self._expect(self.bus.read_byte_data(self.address, BME280_ID_REG), BME280_ID)
            t1, t2, t3 = struct.unpack("<Hhh", bytes(self.bus.read_i2c_block_data(self.address, BME280_CALIB, 6)))
            self._calibration = (t1, t2, t3)

    def _expect(self, found: int, wanted: int) -> None:
        if found != wanted:
            raise SensorError(f"{self.what}: chip id 0x{found:02x}, expected 0x{wanted:02x} (wrong chip or address?)")

    def _adxl345_burst(self) -> Reading:
        """Drain the 32-entry FIFO until ``burst_samples`` are collected: the chip sets the rate.

        At 3200 Hz the FIFO fills in 10 ms; a reader that falls behind (a busy bus, a slow
        host) loses samples, which would put a gap in the burst. A full FIFO or the chip's
        overrun flag ends the burst as defective instead of passing the gap to analysis.
        """
        axis = "xyz".index(self.config.axis)
        wanted = self.config.burst_samples
        samples = np.empty(wanted)  # (N,) acceleration in g
        count = 0
        self._adxl345_flush()
        started = time.monotonic()
        deadline = started + self.config.timeout_s + wanted / self.rate_hz
        while count < wanted:
            entries = self.bus.read_byte_data(self.address, ADXL345_FIFO_STATUS) & 0x3F
            overrun = self.bus.read_byte_data(self.address, ADXL345_INT_SOURCE) & ADXL345_OVERRUN
            if overrun or entries >= ADXL345_FIFO_DEPTH:
                defect = (f"FIFO overrun after {count} of {wanted} samples: samples were lost (the I2C reads cannot "
                          f"keep up with {self.rate_hz:g} Hz; use 400 kHz I2C or a lower rate)")
                return Reading(self.config.name, time.time(), self.config.unit or "g", samples=samples[:count],
                               rate_hz=self.rate_hz, full_scale=float(self.config.range_g), defect=defect)
            if entries == 0:
                if time.monotonic() > deadline:
                    raise SensorError(f"{self.what}: FIFO stalled after {count} of {wanted} samples")
                time.sleep(4.0 / self.rate_hz)
                continue
            for _ in range(min(entries, wanted - count)):
                raw = struct.unpack("<hhh", bytes(self.bus.read_i2c_block_data(self.address, ADXL345_DATAX0, 6)))
                samples[count] = raw[axis] * ADXL345_G_PER_LSB
                count += 1
        return Reading(self.config.name, time.time(), self.config.unit or "g", samples=samples, rate_hz=self.rate_hz,
                       full_scale=float(self.config.range_g))

    def _adxl345_flush(self) -> None:
        """Discard what the FIFO held before this burst: old samples, and a gap before them."""
        entries = self.bus.read_byte_data(self.address, ADXL345_FIFO_STATUS) & 0x3F
        for _ in range(entries):
            self.bus.read_i2c_block_data(self.address, ADXL345_DATAX0, 6)
        self.bus.read_byte_data(self.address, ADXL345_INT_SOURCE)  # the flag of that old overrun

    def _tmp117(self) -> float:
        msb, lsb = self.bus.read_i2c_block_data(self.address, TMP117_TEMP, 2)
        raw = struct.unpack(">h", bytes((msb, lsb)))[0]
        if raw == -32768:  # 0x8000: no conversion since reset
            raise SensorError(f"{self.what}: no conversion result yet")
        return raw * TMP117_C_PER_LSB

    def _bme280_temperature(self) -> float:
        """Forced-mode conversion and the datasheet's floating-point compensation (section 8.1)."""
        assert self._calibration is not None
        self.bus.write_byte_data(self.address, BME280_CTRL_MEAS, 0x21)  # temp x1, forced
        deadline = time.monotonic() + self.config.timeout_s
        while self.bus.read_byte_data(self.address, BME280_STATUS) & 0x08:
            if time.monotonic() > deadline:
                raise SensorError(f"{self.what}: conversion did not finish")
            time.sleep(0.002)
        msb, lsb, xlsb = self.bus.read_i2c_block_data(self.address, BME280_TEMP, 3)
        adc = (msb << 12) | (lsb << 4) | (xlsb >> 4)
        if adc == 0x80000:  # the "skipped" pattern
            raise SensorError(f"{self.what}: temperature measurement skipped")
        t1, t2, t3 = self._calibration
        var1 = (adc / 16384.0 - t1 / 1024.0) * t2
        var2 = (adc / 131072.0 - t1 / 8192.0) ** 2 * t3
        return (var1 + var2) / 5120.0

    def close(self) -> None:
        close = getattr(self.bus, "close", None)
        if close is not None:
            close()
