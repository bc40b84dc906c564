"""Run a program (no shell) whose stdout is one number or JSON: the escape hatch for any sensor."""

from __future__ import annotations

import subprocess

from edge.errors import SensorError
from edge.sensors.base import Reading, parse_value, scalar
from edge.sensors.config import CommandSensor


class CommandReader:
    def __init__(self, config: CommandSensor) -> None:
        self.config = config

    def read(self) -> Reading:
        what = f"sensor {self.config.name} ({self.config.command[0]})"
        try:
            done = subprocess.run(self.config.command, capture_output=True, text=True,
                                  timeout=self.config.timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise SensorError(f"{what} did not finish within {self.config.timeout_s:g} s") from exc
        except OSError as exc:
            raise SensorError(f"{what} cannot run: {exc.strerror or exc}") from exc
        if done.returncode != 0:
            raise SensorError(f"{what} exited with {done.returncode}: {done.stderr.strip()[:200]}")
        return scalar(self.config, parse_value(done.stdout, self.config.json_path, what))

    def close(self) -> None:
        pass
