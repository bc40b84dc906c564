"""The sensor plug-ins: config ``type`` -> the reader that takes its readings (``edge.plugins``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge import plugins
from edge.sensors.base import Reader
from edge.sensors.config import SensorConfig

# sensor ``type`` -> "module:class"
PLUGINS: dict[str, str] = {
    "replay": "edge.sensors.replay:ReplayReader",
    "command": "edge.sensors.command:CommandReader",
    "i2c": "edge.sensors.i2c:I2cReader",
    "onewire": "edge.sensors.onewire:OneWireReader",
    "modbus": "edge.sensors.modbus:ModbusReader",
    "mqtt": "edge.sensors.mqtt:MqttReader",
    "soundcard": "edge.sensors.soundcard:SoundCardReader",
    "spi": "edge.sensors.spi:SpiReader",
}


def build_reader(config: SensorConfig) -> Reader:
    """The reader for one sensor config; a missing optional library is a ConfigError naming the extra."""
    factory: Callable[[Any], Reader] = plugins.load(PLUGINS, config.type)
    return factory(config)
