"""The reader contract: ``read()`` returns one timestamped Reading or raises SensorError.

Readers are plug-ins chosen by the config's ``type`` (``edge.sensors.plugins``); each lives in its
own module and is imported only when a config uses it, so hardware libraries stay optional extras.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edge.errors import ConfigError, SensorError
from edge.sensors.config import SensorBase


@dataclass(frozen=True)
class Reading:
    """One sensor reading: a scalar ``value`` or a burst of ``samples`` taken at ``rate_hz``."""

    sensor: str
    timestamp: float  # unix seconds when the value was taken
    unit: str
    value: float | None = None
    samples: np.ndarray | None = None  # (N,) float64 burst, e.g. acceleration in g
    rate_hz: float | None = None
    full_scale: float | None = None  # the converter's rail in ``unit``: samples there are clipped
    defect: str | None = None  # what the reader saw go wrong while taking the burst (overrun, gap, short)

    @property
    def is_burst(self) -> bool:
        return self.samples is not None


class Reader(Protocol):
    """A sensor plug-in. ``read`` may block up to the sensor's timeout; ``close`` releases it."""

    def read(self) -> Reading: ...

    def close(self) -> None: ...


def require(module: str, extra: str) -> Any:
    """Import an optional hardware library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"this sensor needs {module}: pip install 'edgewatch[{extra}]'") from exc


def scalar(config: SensorBase, value: float, timestamp: float | None = None) -> Reading:
    return Reading(config.name, time.time() if timestamp is None else timestamp, config.unit, value=float(value))


def parse_value(text: str | bytes, json_path: str | None, what: str) -> float:
    """A number from a text payload: plain number, or JSON with an optional dotted path.

    NaN and inf parse fine here on purpose: the health rules reject them with a clear reason.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip()
    if json_path is None:
        try:
            return float(text)
        except ValueError:
            pass
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SensorError(f"{what} gave {text[:60]!r}, which is neither a number nor JSON") from exc
    for part in json_path.split(".") if json_path else ():
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            raise SensorError(f"{what}: JSON has no '{json_path}' (stopped at '{part}')")
    if isinstance(data, bool) or not isinstance(data, (int, float)):
        raise SensorError(f"{what}: value at '{json_path or '(top)'}' is {data!r}, not a number")
    return float(data)
