"""DS18B20 and other 1-Wire thermometers through the Linux w1-therm sysfs driver."""

from __future__ import annotations

from edge.errors import SensorError
from edge.sensors.base import Reading, scalar
from edge.sensors.config import OneWireSensor

# 85.000 degC is the DS18B20 power-on reset value: a read before a conversion finished.
_POWER_ON_VALUE_MILLI_C = 85000


class OneWireReader:
    def __init__(self, config: OneWireSensor) -> None:
        self.config = config
        self.path = config.sysfs_root / config.device_id / "w1_slave"

    def read(self) -> Reading:
        what = f"sensor {self.config.name} ({self.config.device_id})"
        try:
            lines = self.path.read_text(encoding="ascii", errors="replace").splitlines()
        except FileNotFoundError as exc:
            raise SensorError(f"{what} is not on the 1-Wire bus ({self.path} missing)") from exc
        except OSError as exc:
            raise SensorError(f"{what} cannot be read: {exc.strerror or exc}") from exc
        # line 1: "... crc=xx YES" (CRC ok), line 2: "... t=23125" (milli degC)
        if len(lines) < 2 or not lines[0].strip().endswith("YES"):
            raise SensorError(f"{what}: CRC check failed or reply incomplete: {' | '.join(lines)[:120]!r}")
        _, sep, raw = lines[1].rpartition("t=")
        try:
            milli_c = int(raw)
        except ValueError as exc:
            raise SensorError(f"{what}: no temperature in reply {lines[1]!r}") from exc
        if not sep:
            raise SensorError(f"{what}: no temperature in reply {lines[1]!r}")
        if milli_c == _POWER_ON_VALUE_MILLI_C:
            raise SensorError(f"{what} returned its power-on value 85.0 degC (conversion not finished)")
        return scalar(self.config, milli_c / 1000.0)

    def close(self) -> None:
        pass
