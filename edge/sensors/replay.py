"""Replay a recording (CSV, JSONL or NPY) as if a sensor were reading it: tests and demos."""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

import numpy as np

from edge.errors import InputError, SensorError
from edge.sensors.base import Reading, scalar
from edge.sensors.config import ReplaySensor

log = logging.getLogger(__name__)


def load_values(path: Path, column: str | None) -> np.ndarray:
    """All values of a recording as a 1-D float array (NaN kept: health rules judge it)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            values = _npy(path)
        elif suffix == ".jsonl":
            values = np.asarray(_jsonl(path, column), dtype=np.float64)
        elif suffix in (".csv", ".txt"):
            values = np.asarray(_csv(path, column), dtype=np.float64)
        else:
            raise InputError(f"{path}: unknown recording format '{suffix}' (use .npy, .csv or .jsonl)")
    except (OSError, ValueError, TypeError, UnicodeDecodeError) as exc:  # TypeError: a JSONL list or object
        raise InputError(f"{path}: cannot read recording: {exc}") from exc
    if values.ndim != 1:
        values = values.reshape(values.shape[0], -1)[:, 0] if values.ndim > 1 else values.reshape(-1)
    if values.size == 0:
        raise InputError(f"{path}: recording holds no values")
    return values


def _npy(path: Path) -> np.ndarray:
    """A numeric .npy array as float64; text, complex or structured arrays are refused by name."""
    values = np.load(path, allow_pickle=False)
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "biuf":
        kind = "complex" if np.iscomplexobj(values) else str(getattr(values, "dtype", type(values).__name__))
        raise InputError(f"{path}: holds {kind} values; a recording must hold real numbers")
    return values.astype(np.float64)


def _csv(path: Path, column: str | None) -> list[float]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return []
    header = rows[0]
    has_header = any(_not_number(cell) for cell in header)
    index = 0
    if has_header:
        if column is not None:
            if column not in header:
                raise InputError(f"{path}: no column '{column}' (columns: {', '.join(header)})")
            index = header.index(column)
        else:
            index = len(header) - 1  # "timestamp,value" files: the value is last
    values = []
    for number, row in enumerate(rows[1:] if has_header else rows, 2 if has_header else 1):
        if not row:
            continue
        if index >= len(row):
            raise InputError(f"{path}:{number}: row has {len(row)} column(s), the values are in column {index + 1}")
        try:
            values.append(float(row[index]) if row[index].strip() else float("nan"))
        except ValueError as exc:
            raise InputError(f"{path}:{number}: {row[index]!r} is not a number") from exc
    return values


def _jsonl(path: Path, column: str | None) -> list[float]:
    values = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        if isinstance(item, dict):
            key = column or "value"
            item = item.get(key)
        values.append(float("nan") if item is None else float(item))
    return values


def _not_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return True
    return False


class ReplayReader:
    """Each read returns the next value (or burst) of the recording; loops when configured."""

    def __init__(self, config: ReplaySensor) -> None:
        self.config = config
        self.values = load_values(config.path, config.column)
        self.position = 0
        self.burst = config.quantity == "vibration"
        if self.burst and config.rate_hz is None:
            raise InputError(f"sensor {config.name}: a vibration replay needs rate_hz")
        self.burst_samples = config.burst_samples or int(config.rate_hz or 1)

    def read(self) -> Reading:
        step = self.burst_samples if self.burst else 1
        if self.position + step > self.values.size:
            if not self.config.loop or step > self.values.size:
                raise SensorError(f"sensor {self.config.name}: end of recording {self.config.path}")
            self.position = 0
        chunk = self.values[self.position : self.position + step]
        self.position += step
        if self.burst:
            return Reading(self.config.name, time.time(), self.config.unit, samples=chunk.copy(),
                           rate_hz=self.config.rate_hz)
        return scalar(self.config, float(chunk[0]))

    def close(self) -> None:
        pass
