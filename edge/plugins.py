"""Plug-ins chosen by the config's ``type``: a registry maps each type to ``"module:attribute"``.

The module is imported only when a config uses that type, so the libraries behind a plug-in
(PyAV, picamera2, pymodbus, smbus2, spidev) stay optional extras. Cameras
(``edge.sources.plugins``) and sensors (``edge.sensors.plugins``) share this one shape; the
layer test reads the registry strings as the imports they are.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def load(registry: Mapping[str, str], kind: str) -> Any:
    """The attribute registered for ``kind``, its module imported now."""
    module_name, attribute = registry[kind].split(":")
    return getattr(importlib.import_module(module_name), attribute)
