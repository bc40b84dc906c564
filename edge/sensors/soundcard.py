"""Wide-band bursts from a USB audio interface or sound-card input: an IEPE accelerometer behind a
signal conditioner, captured through ALSA's ``arecord`` at 48-96 kHz.

``arecord`` is part of alsa-utils on every Raspberry Pi OS image, so no Python audio library is
needed; it writes raw PCM to stdout and reports ALSA overruns (lost samples) on stderr. Counts
become g through the interface's full-scale voltage and the sensor's sensitivity.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any

import numpy as np

from edge.errors import ConfigError, SensorError
from edge.sensors.base import Reading
from edge.sensors.config import SoundCardSensor

_DTYPES: dict[str, np.dtype[Any]] = {"S16_LE": np.dtype("<i2"), "S32_LE": np.dtype("<i4")}


def capture_defect(stderr: str) -> str | None:
    """What arecord said went wrong while capturing: an overrun means samples were lost."""
    for line in stderr.splitlines():
        if "overrun" in line.lower():
            return f"ALSA capture overrun, samples were lost ({line.strip()[:80]}): the host fell behind"
    return None


class SoundCardReader:
    def __init__(self, config: SoundCardSensor) -> None:
        if shutil.which("arecord") is None:
            raise ConfigError(f"sensor {config.name}: a soundcard sensor needs arecord: apt install alsa-utils")
        self.config = config
        self.dtype = _DTYPES[config.sample_format]
        counts_full_scale = float(np.iinfo(self.dtype).max)
        self.g_per_count = config.full_scale_v * 1000.0 / config.sensitivity_mv_per_g / counts_full_scale
        self.full_scale_g = config.full_scale_v * 1000.0 / config.sensitivity_mv_per_g

    def command(self) -> list[str]:
        c = self.config
        return ["arecord", "-q", "-D", c.device, "-t", "raw", "-f", c.sample_format, "-c", str(c.channels),
                "-r", str(c.rate_hz), "-s", str(c.burst_samples)]

    def read(self) -> Reading:
        c = self.config
        what = f"sensor {c.name} (ALSA {c.device})"
        started_s = time.time()
        try:
            done = subprocess.run(self.command(), capture_output=True, check=False,
                                  timeout=c.timeout_s + c.burst_samples / c.rate_hz)
        except subprocess.TimeoutExpired as exc:
            raise SensorError(f"{what}: capture did not finish within {c.timeout_s:g} s after the burst") from exc
        stderr = done.stderr.decode("utf-8", errors="replace")
        if done.returncode != 0:
            raise SensorError(f"{what}: arecord exited with {done.returncode}: {stderr.strip()[:200]}")
        frame_bytes = self.dtype.itemsize * c.channels
        whole = len(done.stdout) // frame_bytes * frame_bytes
        frames = np.frombuffer(done.stdout[:whole], dtype=self.dtype).reshape(-1, c.channels)  # (N, channels)
        samples = frames[:, c.channel].astype(np.float64) * self.g_per_count
        return Reading(c.name, started_s, c.unit or "g", samples=samples, rate_hz=float(c.rate_hz),
                       full_scale=self.full_scale_g, defect=capture_defect(stderr))

    def close(self) -> None:
        pass
