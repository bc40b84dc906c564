"""Run a program (no shell) whose stdout is one number or JSON, or a burst (.npy / WAV): the escape
hatch for any sensor, a wide-band capture tool included."""

from __future__ import annotations

import subprocess
import time

from edge.errors import SensorError
from edge.sensors.base import Reading, parse_value, scalar
from edge.sensors.bursts import decode_npy, decode_wav
from edge.sensors.config import CommandSensor


class CommandReader:
    def __init__(self, config: CommandSensor) -> None:
        self.config = config

    def read(self) -> Reading:
        what = f"sensor {self.config.name} ({self.config.command[0]})"
        started_s = time.time()
        try:
            done = subprocess.run(self.config.command, capture_output=True, timeout=self.config.timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise SensorError(f"{what} did not finish within {self.config.timeout_s:g} s") from exc
        except OSError as exc:
            raise SensorError(f"{what} cannot run: {exc.strerror or exc}") from exc
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", errors="replace").strip()
            raise SensorError(f"{what} exited with {done.returncode}: {stderr[:200]}")
        if self.config.output == "value":
            return scalar(self.config, parse_value(done.stdout, self.config.json_path, what))
        burst = (decode_npy(done.stdout, what) if self.config.output == "npy"
                 else decode_wav(done.stdout, what, self.config.scale))
        return Reading(self.config.name, started_s, self.config.unit, samples=burst.samples,
                       rate_hz=burst.rate_hz or self.config.rate_hz, full_scale=burst.full_scale)

    def close(self) -> None:
        pass
