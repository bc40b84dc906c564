"""SPI MEMS accelerometers with a FIFO, through spidev: IIS3DWB (26.7 kHz, flat to 6 kHz: the
Pi's wide-band bearing sensor) and ADXL355 (low noise, up to 4 kHz).

Each burst starts from an emptied FIFO and ends early, as a defective burst, when the chip flags
an overrun: samples were lost because the host read too slowly, and a gap in the burst would
read as impacts. The bus object (``xfer2(list[int]) -> list[int]``) is injectable so tests drive
the register protocol without hardware.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Protocol

import numpy as np

from edge.errors import SensorError
from edge.sensors.base import Reading, require
from edge.sensors.config import SpiSensor


class _Chip(Protocol):
    rate_hz: float

    def configure(self) -> None: ...

    def flush(self) -> None: ...

    def drain(self, limit: int) -> tuple[np.ndarray, bool]:
        """Up to ``limit`` samples of the axis in g waiting in the FIFO, and whether it overran."""
        ...


class Iis3dwb:
    """ST IIS3DWB: 3 kB FIFO of 7-byte words (tag + X/Y/Z int16), continuous mode."""

    WHO_AM_I, ID = 0x0F, 0x7B
    CTRL1_XL, CTRL3_C, FIFO_CTRL3, FIFO_CTRL4 = 0x10, 0x12, 0x09, 0x0A
    FIFO_STATUS1, FIFO_DATA_OUT_TAG = 0x3A, 0x78
    OVERRUN_BIT = 0x40  # FIFO_STATUS2 FIFO_OVR_IA
    TAG_ACCEL = 0x02
    FS_BITS: ClassVar[dict[int, int]] = {2: 0b00, 16: 0b01, 4: 0b10, 8: 0b11}
    MG_PER_LSB: ClassVar[dict[int, float]] = {2: 0.061, 4: 0.122, 8: 0.244, 16: 0.488}

    def __init__(self, spi: _Bus, config: SpiSensor) -> None:
        self.spi, self.config = spi, config
        self.rate_hz = 26667.0
        self.g_per_lsb = self.MG_PER_LSB[config.range_g] / 1000.0
        self.axis = "xyz".index(config.axis)

    def configure(self) -> None:
        self.spi.expect(self.WHO_AM_I, self.ID)
        self.spi.write(self.CTRL3_C, 0x44)  # block data update, address auto-increment
        self.spi.write(self.CTRL1_XL, 0xA0 | self.FS_BITS[self.config.range_g] << 2)  # on, 26.7 kHz
        self.spi.write(self.FIFO_CTRL3, 0x0A)  # accelerometer into the FIFO at 26.7 kHz

    def flush(self) -> None:
        self.spi.write(self.FIFO_CTRL4, 0x00)  # bypass: empties the FIFO and clears its overrun flag
        self.spi.write(self.FIFO_CTRL4, 0x06)  # continuous

    def drain(self, limit: int) -> tuple[np.ndarray, bool]:
        status1, status2 = self.spi.read(self.FIFO_STATUS1, 2)
        if status2 & self.OVERRUN_BIT:
            return np.empty(0), True
        words = min((status2 & 0x03) << 8 | status1, limit)
        values = []
        for _ in range(words):
            word = bytes(self.spi.read(self.FIFO_DATA_OUT_TAG, 7))
            if word[0] >> 3 == self.TAG_ACCEL:
                values.append(int.from_bytes(word[1 + 2 * self.axis : 3 + 2 * self.axis], "little", signed=True))
        return np.asarray(values, dtype=np.float64) * self.g_per_lsb, False


class Adxl355:
    """Analog Devices ADXL355: 96-entry FIFO of 20-bit axis values, 3 entries per X/Y/Z set."""

    DEVID_AD, ID = 0x00, 0xAD
    STATUS, FIFO_ENTRIES, FIFO_DATA = 0x04, 0x05, 0x11
    FILTER, RANGE, POWER_CTL = 0x28, 0x2C, 0x2D
    OVERRUN_BIT = 0x04  # STATUS FIFO_OVR
    RANGE_BITS: ClassVar[dict[int, int]] = {2: 0b01, 4: 0b10, 8: 0b11}
    LSB_PER_G: ClassVar[dict[int, float]] = {2: 256_000.0, 4: 128_000.0, 8: 64_000.0}
    ODR_HZ = (4000.0, 2000.0, 1000.0, 500.0, 250.0, 125.0)

    def __init__(self, spi: _Bus, config: SpiSensor) -> None:
        self.spi, self.config = spi, config
        wanted_hz = config.rate_hz or 4000.0
        self.rate_hz = min(self.ODR_HZ, key=lambda hz: abs(hz - wanted_hz))
        self.axis = "xyz".index(config.axis)

    def configure(self) -> None:
        self.spi.expect(self.DEVID_AD, self.ID)
        self.spi.write(self.POWER_CTL, 0x01)  # standby while configuring
        self.spi.write(self.FILTER, self.ODR_HZ.index(self.rate_hz))
        self.spi.write(self.RANGE, 0x80 | self.RANGE_BITS[self.config.range_g])
        self.spi.write(self.POWER_CTL, 0x00)  # measure

    def flush(self) -> None:
        entries = self.spi.read(self.FIFO_ENTRIES, 1)[0] & 0x7F
        for _ in range(entries // 3):
            self.spi.read(self.FIFO_DATA, 9)
        self.spi.read(self.STATUS, 1)  # reading STATUS clears an old overrun

    def drain(self, limit: int) -> tuple[np.ndarray, bool]:
        if self.spi.read(self.STATUS, 1)[0] & self.OVERRUN_BIT:
            return np.empty(0), True
        sets = min((self.spi.read(self.FIFO_ENTRIES, 1)[0] & 0x7F) // 3, limit)
        values = []
        for _ in range(sets):
            data = self.spi.read(self.FIFO_DATA, 9)
            if not data[2] & 0x01:  # the X marker: out of step with the sets, drop to the next flush
                raise SensorError(f"sensor {self.config.name}: ADXL355 FIFO out of step (no X-axis marker)")
            b0, b1, b2 = data[3 * self.axis : 3 * self.axis + 3]
            raw = (b0 << 12) | (b1 << 4) | (b2 >> 4)
            values.append(raw - (1 << 20) if raw & 0x80000 else raw)
        return np.asarray(values, dtype=np.float64) / self.LSB_PER_G[self.config.range_g], False


class _Bus:
    """Register reads and writes over an spidev-like ``xfer2``; the address byte differs per chip."""

    def __init__(self, device: Any, read_cmd: Any, write_cmd: Any, what: str) -> None:
        self.device, self.read_cmd, self.write_cmd, self.what = device, read_cmd, write_cmd, what

    def read(self, register: int, length: int) -> list[int]:
        return list(self.device.xfer2([self.read_cmd(register)] + [0] * length)[1:])

    def write(self, register: int, value: int) -> None:
        self.device.xfer2([self.write_cmd(register), value])

    def expect(self, register: int, wanted: int) -> None:
        found = self.read(register, 1)[0]
        if found != wanted:
            raise SensorError(f"{self.what}: chip id 0x{found:02x}, expected 0x{wanted:02x} (wrong chip or wiring?)")


_PROTOCOL = {  # (read command, write command) per chip
    "iis3dwb": (lambda reg: 0x80 | reg, lambda reg: reg & 0x7F),
    "adxl355": (lambda reg: (reg << 1) | 1, lambda reg: reg << 1),
}


class SpiReader:
    def __init__(self, config: SpiSensor, device: Any | None = None) -> None:
        self.config = config
        self.what = f"sensor {config.name} ({config.chip} on spidev{config.bus}.{config.device})"
        if device is None:
            device = require("spidev", "spi").SpiDev()
            device.open(config.bus, config.device)
            device.max_speed_hz, device.mode = config.max_speed_hz, 0b11 if config.chip == "iis3dwb" else 0b00
        self.device = device
        read_cmd, write_cmd = _PROTOCOL[config.chip]
        bus = _Bus(device, read_cmd, write_cmd, self.what)
        self.chip: _Chip = Iis3dwb(bus, config) if config.chip == "iis3dwb" else Adxl355(bus, config)
        self._configured = False

    def read(self) -> Reading:
        try:
            if not self._configured:
                self.chip.configure()
                self._configured = True
            return self._burst()
        except OSError as exc:
            self._configured = False
            raise SensorError(f"{self.what}: bus error: {exc.strerror or exc}") from exc

    def _burst(self) -> Reading:
        wanted = self.config.burst_samples
        rate_hz = self.chip.rate_hz
        chunks: list[np.ndarray] = []
        count = 0
        self.chip.flush()
        started_s = time.time()
        deadline = time.monotonic() + self.config.timeout_s + wanted / rate_hz
        while count < wanted:
            values, overrun = self.chip.drain(wanted - count)
            if overrun:
                defect = (f"FIFO overrun after {count} of {wanted} samples: samples were lost (drain faster: a higher "
                          "SPI clock, or a less busy host)")
                return self._reading(started_s, chunks, defect)
            if values.size == 0:
                if time.monotonic() > deadline:
                    raise SensorError(f"{self.what}: FIFO stalled after {count} of {wanted} samples")
                time.sleep(64.0 / rate_hz)
                continue
            chunks.append(values)
            count += values.size
        return self._reading(started_s, chunks, None)

    def _reading(self, started_s: float, chunks: list[np.ndarray], defect: str | None) -> Reading:
        samples = np.concatenate(chunks) if chunks else np.empty(0)  # (N,) g
        return Reading(self.config.name, started_s, self.config.unit or "g", samples=samples,
                       rate_hz=self.chip.rate_hz, full_scale=float(self.config.range_g), defect=defect)

    def close(self) -> None:
        close = getattr(self.device, "close", None)
        if close is not None:
            close()
