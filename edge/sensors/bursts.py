"""Bursts as bytes: NumPy ``.npy`` and WAV files (a command's stdout), and the MQTT burst payload.

Every decoder returns float64 samples in the sensor's unit, or raises SensorError saying what is
wrong with the bytes; a burst that arrives damaged never reaches analysis.

MQTT burst payload (JSON object, UTF-8), what a wireless node publishes per burst:

    {"rate_hz": 25600, "dtype": "int16", "scale": 0.000488, "samples": "<base64>",
     "timestamp": 1767225600.25, "full_scale": 16.0, "dropped": 0}

``samples`` holds little-endian ``int16`` (value = count x ``scale``) or ``float32`` (value as is,
``scale`` optional); ``timestamp`` (unix seconds, when the burst started) and ``full_scale`` (the
sensor's range in the unit, for clipping) are optional; ``dropped`` is how many samples the node
lost inside the burst (a FIFO overrun or a radio gap): anything but 0 rejects the burst.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.io import wavfile

from edge.errors import SensorError

DTYPES: dict[str, np.dtype[Any]] = {"int16": np.dtype("<i2"), "float32": np.dtype("<f4")}


@dataclass(frozen=True)
class Burst:
    samples: np.ndarray  # (N,) float64 in the sensor's unit
    rate_hz: float | None
    full_scale: float | None = None
    timestamp: float | None = None
    defect: str | None = None


def decode_npy(data: bytes, what: str) -> Burst:
    """A 1-D ``.npy`` array (allow_pickle off: stdout is not trusted with code)."""
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SensorError(f"{what} printed {len(data)} bytes that are not a .npy array: {exc}") from exc
    return Burst(_one_channel(array, what), None)


def decode_wav(data: bytes, what: str, scale: float) -> Burst:
    """A WAV file: float samples are in the unit already, integer PCM is counts x ``scale``."""
    try:
        rate_hz, array = wavfile.read(io.BytesIO(data))
    except (ValueError, OSError, EOFError) as exc:
        raise SensorError(f"{what} printed {len(data)} bytes that are not a WAV file: {exc}") from exc
    array = np.asarray(array)
    full_scale = None
    if np.issubdtype(array.dtype, np.integer):
        full_scale = float(np.iinfo(array.dtype).max) * scale
        array = array.astype(np.float64) * scale
    return Burst(_one_channel(array, what), float(rate_hz), full_scale)


def decode_mqtt_burst(payload: bytes, what: str, max_samples: int) -> Burst:
    """The JSON burst payload above; every field is checked before a sample is used."""
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SensorError(f"{what}: burst payload is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise SensorError(f"{what}: burst payload must be a JSON object, got {type(message).__name__}")
    rate_hz = _number(message, "rate_hz", what, required=True)
    dtype_name = message.get("dtype", "float32")
    if dtype_name not in DTYPES:
        raise SensorError(f"{what}: burst dtype {dtype_name!r} is not one of {', '.join(DTYPES)}")
    scale = _number(message, "scale", what, required=dtype_name == "int16") or 1.0
    try:
        raw = base64.b64decode(str(message.get("samples", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SensorError(f"{what}: burst samples are not valid base64: {exc}") from exc
    dtype = DTYPES[dtype_name]
    if len(raw) % dtype.itemsize:
        raise SensorError(f"{what}: {len(raw)} sample bytes are not a whole number of {dtype_name} samples")
    if len(raw) // dtype.itemsize > max_samples:
        raise SensorError(f"{what}: burst of {len(raw) // dtype.itemsize} samples exceeds the {max_samples} allowed")
    samples = np.frombuffer(raw, dtype=dtype).astype(np.float64) * scale
    full_scale = _number(message, "full_scale", what, required=False)
    if full_scale is None and dtype_name == "int16":
        full_scale = 32767 * scale
    dropped = message.get("dropped", 0)
    if not isinstance(dropped, int) or isinstance(dropped, bool) or dropped < 0:
        raise SensorError(f"{what}: burst 'dropped' must be a count of samples, got {dropped!r}")
    defect = f"the node lost {dropped} sample(s) inside the burst (FIFO overrun or radio gap)" if dropped else None
    return Burst(samples, rate_hz, full_scale, _number(message, "timestamp", what, required=False), defect)


def _number(message: dict[str, Any], key: str, what: str, required: bool) -> float | None:
    value = message.get(key)
    if value is None:
        if required:
            raise SensorError(f"{what}: burst payload has no '{key}'")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SensorError(f"{what}: burst '{key}' must be a positive number, got {value!r}")
    return float(value)


def _one_channel(array: np.ndarray, what: str) -> np.ndarray:
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
        raise SensorError(f"{what}: a burst must be one channel of real numbers, got {array.dtype} {array.shape}")
    return array.astype(np.float64)
