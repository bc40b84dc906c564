"""Every reader against the real thing where it can run here: a pymodbus TCP server and a
Mosquitto broker on 127.0.0.1, a w1 sysfs tree in a temp folder, real subprocesses; only the
I2C bus is faked (register-level), since no hardware is attached."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.ports import free_port, listening
from edge.errors import ConfigError, InputError, SensorError
from edge.sensors.config import SensorConfig
from edge.sensors.i2c import I2cReader
from edge.sensors.modbus import decode_registers
from edge.sensors.plugins import PLUGINS, build_reader
from tests.sensors_support import sensor_config
from tests.waiting import wait_until


def sensor(**fields: Any) -> Any:
    return sensor_config({"name": "s", "quantity": "temperature", "unit": "degC"}, **fields)


def test_every_registered_reader_has_a_config_type() -> None:
    union_types = {model.model_fields["type"].annotation.__args__[0] for model in SensorConfig.__origin__.__args__}
    assert set(PLUGINS) == union_types


# --- replay ---------------------------------------------------------------------------------


def test_replay_csv_with_header_and_loop(tmp_path: Path) -> None:
    path = tmp_path / "temp.csv"
    path.write_text("timestamp,temp_c\n0,21.5\n10,22.0\n")
    reader = build_reader(sensor(type="replay", path=path, column="temp_c"))
    assert [reader.read().value for _ in range(3)] == [21.5, 22.0, 21.5]


def test_replay_jsonl_keeps_missing_values_visible(tmp_path: Path) -> None:
    path = tmp_path / "current.jsonl"
    path.write_text('{"value": 3.2}\n{"value": null}\n')
    reader = build_reader(sensor(type="replay", path=path, loop=False))
    assert reader.read().value == 3.2
    assert np.isnan(reader.read().value)  # NaN, judged by the health rules, never a silent 0
    with pytest.raises(SensorError, match="end of recording"):
        reader.read()


def test_replay_npy_vibration_bursts(tmp_path: Path) -> None:
    path = tmp_path / "burst.npy"
    np.save(path, np.arange(3000, dtype=np.float32))
    reader = build_reader(sensor(type="replay", path=path, quantity="vibration", unit="g", rate_hz=1000))
    first, second = reader.read(), reader.read()
    assert first.is_burst and first.rate_hz == 1000 and first.samples.shape == (1000,)
    assert second.samples[0] == 1000.0


def test_replay_bad_files_are_input_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:1: not JSON"):
        build_reader(sensor(type="replay", path=bad))
    with pytest.raises(InputError, match="no column 'x'"):
        (tmp_path / "a.csv").write_text("a,b\n1,2\n")
        build_reader(sensor(type="replay", path=tmp_path / "a.csv", column="x"))


# --- command --------------------------------------------------------------------------------


def test_command_number_and_json_path() -> None:
    reader = build_reader(sensor(type="command", command=[sys.executable, "-c", "print(' 41.5 ')"]))
    assert reader.read().value == 41.5
    reader = build_reader(sensor(type="command", json_path="motor.temp.1",
                                 command=[sys.executable, "-c", "print('{\"motor\": {\"temp\": [1, 62.5]}}')"]))
    assert reader.read().value == 62.5


@pytest.mark.parametrize(
    ("code", "message"),
    [("import sys; sys.exit(3)", "exited with 3"), ("print('hot')", "neither a number nor JSON"),
     ("import time; time.sleep(5)", "did not finish within 0.3 s")],
)
def test_command_failures_are_sensor_errors(code: str, message: str) -> None:
    reader = build_reader(sensor(type="command", timeout_s=0.3, command=[sys.executable, "-c", code]))
    with pytest.raises(SensorError, match=message):
        reader.read()


# --- 1-Wire ---------------------------------------------------------------------------------


def w1_device(root: Path, device_id: str, text: str) -> None:
    (root / device_id).mkdir(parents=True, exist_ok=True)
    (root / device_id / "w1_slave").write_text(text)


def test_ds18b20_through_a_fake_sysfs_tree(tmp_path: Path) -> None:
    reply = "72 01 4b 46 7f ff 0c 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0c 10 57 t=23125\n"
    w1_device(tmp_path, "28-0316a2795fff", reply)
    reader = build_reader(sensor(type="onewire", device_id="28-0316a2795fff", sysfs_root=tmp_path))
    assert reader.read().value == pytest.approx(23.125)


@pytest.mark.parametrize(
    ("text", "message"),
    [("aa : crc=00 NO\naa t=23125\n", "CRC check failed"), ("aa : crc=57 YES\naa t=85000\n", "power-on value"),
     ("aa : crc=57 YES\n", "incomplete")],
)
def test_ds18b20_bad_replies(tmp_path: Path, text: str, message: str) -> None:
    w1_device(tmp_path, "28-000000000001", text)
    reader = build_reader(sensor(type="onewire", device_id="28-000000000001", sysfs_root=tmp_path))
    with pytest.raises(SensorError, match=message):
        reader.read()


def test_ds18b20_missing_device(tmp_path: Path) -> None:
    reader = build_reader(sensor(type="onewire", device_id="28-000000000002", sysfs_root=tmp_path))
    with pytest.raises(SensorError, match="not on the 1-Wire bus"):
        reader.read()


# --- I2C (register-level fake bus) ----------------------------------------------------------


class FakeAdxl345:
    """Streams a 100 Hz, 0.5 g sine on z through a 32-entry FIFO at the configured rate; from
    sample ``overrun_at`` on, the reader has fallen behind: the FIFO is full and flags overrun."""

    def __init__(self, overrun_at: int | None = None) -> None:
        self.registers: dict[int, int] = {0x00: 0xE5}
        self.index = 0
        self.overrun_at = overrun_at

    def behind(self) -> bool:
        return self.overrun_at is not None and self.index >= self.overrun_at

    def read_byte_data(self, address: int, register: int) -> int:
        if register == 0x39:
            return 32 if self.behind() else 16
        if register == 0x30:
            return 0x83 if self.behind() else 0x82  # data ready, watermark (+ overrun)
        return self.registers.get(register, 0)

    def write_byte_data(self, address: int, register: int, value: int) -> None:
        self.registers[register] = value

    def read_i2c_block_data(self, address: int, register: int, length: int) -> list[int]:
        assert register == 0x32 and length == 6 and self.registers.get(0x2D) == 0x08  # measuring
        z_g = 0.5 * np.sin(2 * np.pi * 100.0 * self.index / 3200.0)
        self.index += 1
        return list(struct.pack("<hhh", 0, 0, round(z_g / 0.0039)))


def test_adxl345_burst_from_the_fifo() -> None:
    bus = FakeAdxl345()
    reader = I2cReader(sensor(type="i2c", chip="adxl345", quantity="vibration", unit="g", burst_samples=640), bus)
    reading = reader.read()
    assert bus.registers[0x2C] == 0x0F and bus.registers[0x31] == 0x0B and bus.registers[0x38] == 0x80
    assert reading.rate_hz == 3200.0 and reading.samples.shape == (640,)
    assert reading.samples.max() == pytest.approx(0.5, abs=0.01)
    assert reading.defect is None and reading.full_scale == 16.0


def test_adxl345_overrun_ends_the_burst_as_defective() -> None:
    from edge.sensors import health

    bus = FakeAdxl345(overrun_at=300)
    config = sensor(type="i2c", chip="adxl345", quantity="vibration", unit="g", burst_samples=640)
    reading = I2cReader(config, bus).read()
    assert reading.defect is not None and "FIFO overrun after" in reading.defect
    assert reading.samples.size < 640
    assert health.problem(config, reading).startswith("burst unusable: FIFO overrun")


class FakeTempChips:
    def __init__(self, chip_id: int) -> None:
        self.chip_id = chip_id
        self.writes: list[tuple[int, int]] = []

    def read_byte_data(self, address: int, register: int) -> int:
        return {0xD0: self.chip_id, 0xF3: 0x00}[register]

    def write_byte_data(self, address: int, register: int, value: int) -> None:
        self.writes.append((register, value))

    def read_i2c_block_data(self, address: int, register: int, length: int) -> list[int]:
        if register == 0x88:  # BME280 datasheet example trimming: T1=27504, T2=26435, T3=-1000
            return list(struct.pack("<Hhh", 27504, 26435, -1000))
        if register == 0xFA:  # adc_T = 519888
            return [519888 >> 12, (519888 >> 4) & 0xFF, (519888 & 0xF) << 4]
        if register == 0x0F:  # TMP117 device id
            return [0x01, 0x17]
        if register == 0x00:  # TMP117: 0x0C80 = 25.0 degC
            return [0x0C, 0x80]
        raise OSError(121, "Remote I/O error")


def test_bme280_compensation_matches_the_datasheet_example() -> None:
    reader = I2cReader(sensor(type="i2c", chip="bme280"), FakeTempChips(0x60))
    assert reader.read().value == pytest.approx(25.08, abs=0.01)


def test_tmp117_and_wrong_chip() -> None:
    assert I2cReader(sensor(type="i2c", chip="tmp117"), FakeTempChips(0)).read().value == pytest.approx(25.0)
    with pytest.raises(SensorError, match="chip id 0x58, expected 0x60"):
        I2cReader(sensor(type="i2c", chip="bme280"), FakeTempChips(0x58)).read()


def test_i2c_bus_errors_become_sensor_errors() -> None:
    class Nack(FakeTempChips):
        def read_i2c_block_data(self, address: int, register: int, length: int) -> list[int]:
            raise OSError(121, "Remote I/O error")

    with pytest.raises(SensorError, match="bus error: Remote I/O error"):
        I2cReader(sensor(type="i2c", chip="tmp117"), Nack(0)).read()


def test_an_i2c_bus_that_cannot_be_opened_fails_the_read_not_the_start() -> None:
    pytest.importorskip("smbus2")
    reader = I2cReader(sensor(type="i2c", chip="tmp117", bus=250))  # no /dev/i2c-250 here: nothing opened yet
    with pytest.raises(SensorError, match=r"tmp117 at 0x48 on i2c-250\): cannot open /dev/i2c-250: .*No such file"):
        reader.read()
    reader.close()


# --- Modbus TCP against a real pymodbus server ----------------------------------------------


@contextlib.contextmanager
def modbus_server(framer: str) -> Iterator[int]:
    """A real pymodbus server in a thread on 127.0.0.1; ``framer`` 'socket' (TCP) or 'rtu' (RTU over TCP)."""
    pytest.importorskip("pymodbus")
    from pymodbus.framer import FramerType
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    float_words = list(struct.unpack(">HH", struct.pack(">f", 72.25)))
    holding = [0xFF38, *float_words, *float_words[::-1], 1234]  # -200, float big, float little, 1234
    device = SimDevice(id=1, simdata=(
        [SimData(0, values=[0], datatype=DataType.BITS)], [SimData(0, values=[0], datatype=DataType.BITS)],
        [SimData(0, values=holding, datatype=DataType.REGISTERS)],
        [SimData(0, values=[500, 7], datatype=DataType.REGISTERS)],
    ))
    port = free_port()
    loop = asyncio.new_event_loop()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        holder["server"] = ModbusTcpServer(device, address=("127.0.0.1", port), framer=FramerType(framer))
        await holder["server"].serve_forever()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert wait_until(lambda: listening(port)), f"the Modbus server did not listen on port {port}"
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(holder["server"].shutdown(), loop).result(10)
        thread.join(5)


@pytest.fixture(scope="module")
def modbus_port() -> Iterator[int]:
    with modbus_server("socket") as port:
        yield port


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"address": 0, "data_type": "int16", "scale": 0.1}, -20.0),
        ({"address": 1, "data_type": "float32", "word_order": "big"}, 72.25),
        ({"address": 3, "data_type": "float32", "word_order": "little"}, 72.25),
        ({"address": 5, "data_type": "uint16", "scale": 0.01, "offset": -2.0}, 10.34),
        ({"address": 0, "register_type": "input", "data_type": "uint16", "scale": 0.1}, 50.0),
    ],
)
def test_modbus_tcp_reads_a_real_server(modbus_port: int, fields: dict[str, Any], expected: float) -> None:
    reader = build_reader(sensor(type="modbus", host="127.0.0.1", port=modbus_port, **fields))
    try:
        assert reader.read().value == pytest.approx(expected)
    finally:
        reader.close()


def test_modbus_error_replies_and_dead_servers(modbus_port: int) -> None:
    reader = build_reader(sensor(type="modbus", host="127.0.0.1", port=modbus_port, unit_id=9, address=0))
    with pytest.raises(SensorError, match="answered with an error"):
        reader.read()
    reader.close()
    dead = build_reader(sensor(type="modbus", host="127.0.0.1", port=free_port(), address=0, timeout_s=0.5))
    with pytest.raises(SensorError, match=r"cannot connect|Connection"):
        dead.read()
    dead.close()


def test_modbus_rtu_framing_over_a_socket() -> None:
    pytest.importorskip("serial")
    with modbus_server("rtu") as port:
        reader = build_reader(sensor(type="modbus", transport="rtu", serial_port=f"socket://127.0.0.1:{port}",
                                     address=1, data_type="float32"))
        try:
            assert reader.read().value == pytest.approx(72.25)
        finally:
            reader.close()


def test_word_order_decoding() -> None:
    assert decode_registers([0x0001, 0x0000], "uint32", "big") == 65536
    assert decode_registers([0x0001, 0x0000], "uint32", "little") == 1
    with pytest.raises(ValueError, match="needs 2"):
        decode_registers([1], "int32", "big")


def test_modbus_config_needs_its_transport_fields() -> None:
    with pytest.raises(ValueError, match="needs 'host'"):
        sensor(type="modbus", address=0)
    with pytest.raises(ValueError, match="needs 'serial_port'"):
        sensor(type="modbus", transport="rtu", address=0)


# --- MQTT against a real Mosquitto broker ---------------------------------------------------


def test_mqtt_reader_takes_the_newest_message(mqtt_broker: tuple[str, int]) -> None:
    import paho.mqtt.publish as publish

    host, port = mqtt_broker
    topic = "plant/press-1/oil"
    reader = build_reader(sensor(type="mqtt", host=host, port=port, topic=topic, json_path="oil.temp_c", timeout_s=3))
    try:
        assert reader.wait_connected(5)  # subscribed: nothing published from now on is missed
        publish.single(topic, json.dumps({"oil": {"temp_c": 48.5}}), hostname=host, port=port, qos=1)
        assert reader.read().value == 48.5
        publish.single(topic, json.dumps({"oil": {"pressure": 2}}), hostname=host, port=port, qos=1)
        with pytest.raises(SensorError, match=r"no 'oil\.temp_c'"):
            reader.read()
    finally:
        reader.close()


def test_mqtt_silence_is_an_error_not_a_repeat(mqtt_broker: tuple[str, int]) -> None:
    host, port = mqtt_broker
    reader = build_reader(sensor(type="mqtt", host=host, port=port, topic="plant/quiet", timeout_s=0.3))
    try:
        with pytest.raises(SensorError, match=r"no message within 0\.3 s|not connected"):
            reader.read()
    finally:
        reader.close()


def test_missing_optional_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smbus2", None)
    with pytest.raises(ConfigError, match=r"pip install 'edgewatch\[i2c\]'"):
        build_reader(sensor(type="i2c", chip="tmp117"))
