"""The sensors JSON file of ``edgewatch check --sensors`` (docs/sensors-json.md): one snapshot of an
asset's readings, each with its unit, and vibration bursts inline or as a file with their sample rate.

Each reading carries the same settings a sensor has in the config file (quantity, limits, the
``vibration`` section with rpm and bearing), so a file is self-contained; with ``--config`` and
``--asset`` the configured sensor of the same name supplies the settings instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, ValidationError, model_validator

from edge.analytics.to_evidence import health_evidence
from edge.config.loader import describe_validation_error
from edge.config.section import Section, require_unique
from edge.errors import InputError, SensorError
from edge.evidence import Evidence
from edge.files import read_bounded
from edge.sensors.analysis import SensorAnalyzer, source_name
from edge.sensors.base import Reading
from edge.sensors.config import SensorBase
from edge.sensors.poller import SensorStatus
from edge.sensors.replay import load_values

MAX_FILE_BYTES = 16 * 2**20  # 10 s of a 51.2 kHz burst inline is ~6 MB


class JsonReading(SensorBase):
    """One sensor's reading: its settings (as in the config's ``sensors:`` list) plus the data."""

    value: float | None = Field(None, description="A scalar reading in ``unit`` (temperature, current, ...).")
    samples: list[float] | None = Field(None, description="A vibration burst inline, in ``unit`` (usually g).")
    file: Path | None = Field(None, description="A burst in a file (npy, csv, jsonl), relative to the JSON file.")
    column: str | None = Field(None, description="CSV/JSONL column holding the burst.")
    rate_hz: float | None = Field(None, gt=0, description="Sample rate of the burst in Hz.")
    timestamp: float | None = Field(None, allow_inf_nan=False,
                                    description="Unix seconds the reading was taken; default the file's.")

    @model_validator(mode="after")
    def _one_kind_of_data(self) -> JsonReading:
        given = [name for name in ("value", "samples", "file") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'value', 'samples' or 'file' (got {', '.join(given) or 'none'})")
        if given[0] != "value" and self.rate_hz is None:
            raise ValueError("a burst ('samples' or 'file') needs 'rate_hz'")
        return self


class SensorsJson(Section):
    timestamp: float | None = Field(None, allow_inf_nan=False, description="Unix seconds of the snapshot; default now.")
    readings: list[JsonReading] = Field(min_length=1, description="One entry per sensor.")

    @model_validator(mode="after")
    def _unique_names(self) -> SensorsJson:
        require_unique((reading.name for reading in self.readings), "sensor names")
        return self


def load(path: Path) -> SensorsJson:
    data = read_bounded(path, MAX_FILE_BYTES, "sensors file", InputError, "put long bursts in a 'file' (npy) beside it")
    try:
        raw: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"sensors file {path} is not readable JSON: {exc}") from exc
    except RecursionError as exc:
        raise InputError(f"sensors file {path} is nested too deeply to be a sensors snapshot") from exc
    if not isinstance(raw, dict):
        raise InputError(f"sensors file {path}: expected an object with a 'readings' list")
    try:
        return SensorsJson.model_validate(raw)
    except ValidationError as exc:
        message = describe_validation_error(exc, SensorsJson, str(path))
        raise InputError(message.replace("invalid config", "invalid sensors file")) from exc


def _reading(entry: JsonReading, base: Path, default_timestamp: float) -> Reading:
    timestamp = entry.timestamp if entry.timestamp is not None else default_timestamp
    if entry.value is not None:
        return Reading(entry.name, timestamp, entry.unit, value=entry.value)
    if entry.samples is not None:
        samples = np.asarray(entry.samples, dtype=np.float64)  # (N,)
    else:
        assert entry.file is not None
        path = entry.file if entry.file.is_absolute() else base / entry.file
        try:
            samples = load_values(path, entry.column)
        except SensorError as exc:
            raise InputError(f"sensor {entry.name}: {exc}") from exc
    return Reading(entry.name, timestamp, entry.unit, samples=samples, rate_hz=entry.rate_hz)


def evidence(path: Path, configured: Sequence[SensorBase] = (), now: float | None = None) -> list[Evidence]:
    """Evidence for every reading in the file, plus 'no reading' health evidence for configured
    sensors the file leaves out (a missing sensor lowers confidence; it never reads as ok)."""
    document = load(path)
    timestamp = document.timestamp if document.timestamp is not None else (time.time() if now is None else now)
    by_name = {config.name: config for config in configured}
    configs = [by_name.get(entry.name, entry) for entry in document.readings]
    readings = [_reading(entry, path.parent, timestamp) for entry in document.readings]
    statuses = {r.sensor: SensorStatus(r.sensor, True, r, None, r.timestamp, 0) for r in readings}
    analyzer = SensorAnalyzer(configs)
    found = [analyzer.analyse(reading, statuses) for reading in readings]
    given = {entry.name for entry in document.readings}
    found += [health_evidence(source_name(config), f"no reading in {path.name}", timestamp)
              for config in configured if config.name not in given]
    return found
