"""Modbus TCP / RTU registers through pymodbus: raw registers -> typed value -> scale and offset."""

from __future__ import annotations

import inspect
import logging
import struct
from typing import Any

from edge.errors import SensorError
from edge.sensors.base import Reading, require, scalar
from edge.sensors.config import ModbusSensor

log = logging.getLogger(__name__)

_FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}


def decode_registers(registers: list[int], data_type: str, word_order: str) -> float:
    """16-bit registers (each big-endian on the wire) -> value; ``word_order`` orders the words."""
    count = struct.calcsize(_FORMATS[data_type]) // 2
    if len(registers) != count:
        raise ValueError(f"{data_type} needs {count} register(s), got {len(registers)}")
    words = list(registers) if word_order == "big" else list(reversed(registers))
    raw = b"".join(struct.pack(">H", word & 0xFFFF) for word in words)
    return float(struct.unpack(_FORMATS[data_type], raw)[0])


def register_count(data_type: str) -> int:
    return struct.calcsize(_FORMATS[data_type]) // 2


class ModbusReader:
    """One register (or register pair) per read; the connection is reopened after a failure."""

    def __init__(self, config: ModbusSensor) -> None:
        self.config = config
        client_module = require("pymodbus.client", "modbus")
        if config.transport == "tcp":
            self.client = client_module.ModbusTcpClient(
                config.host, port=config.port, timeout=config.timeout_s, retries=0
            )
            self.where = f"{config.host}:{config.port}"
        else:
            self.client = client_module.ModbusSerialClient(
                config.serial_port, baudrate=config.baudrate, parity=config.parity, timeout=config.timeout_s, retries=0
            )
            self.where = str(config.serial_port)
        method = "read_holding_registers" if config.register_type == "holding" else "read_input_registers"
        self._read = getattr(self.client, method)
        parameters = inspect.signature(self._read).parameters
        self._unit_kw = "device_id" if "device_id" in parameters else "slave"  # renamed in pymodbus 3.9

    def read(self) -> Reading:
        config = self.config
        what = f"sensor {config.name} (modbus {self.where} unit {config.unit_id} register {config.address})"
        try:
            if not self.client.connected and not self.client.connect():
                raise SensorError(f"{what}: cannot connect")
            reply: Any = self._read(config.address, count=register_count(config.data_type),
                                    **{self._unit_kw: config.unit_id})
        except SensorError:
            raise
        except Exception as exc:  # pymodbus raises ModbusException and OS errors alike
            self.client.close()
            raise SensorError(f"{what}: {exc}") from exc
        if reply.isError():
            raise SensorError(f"{what}: device answered with an error: {reply}")
        try:
            raw = decode_registers(list(reply.registers), config.data_type, config.word_order)
        except (ValueError, struct.error) as exc:
            raise SensorError(f"{what}: malformed reply: {exc}") from exc
        return scalar(config, raw * config.scale + config.offset)

    def close(self) -> None:
        self.client.close()
