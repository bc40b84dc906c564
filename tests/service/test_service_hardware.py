"""Device access from the config: the plug-in table, the drop-in, install-service --dry-run and the reload check."""

from __future__ import annotations

import re
import shutil
import subprocess
import typing
from pathlib import Path

import pytest
import yaml

from edge.cli.main import main
from edge.errors import ConfigError, UsageError
from edge.sensors.plugins import PLUGINS as SENSOR_PLUGINS
from edge.service import hardware
from edge.service.install import render_unit
from edge.service.reload import Reloader, check_config
from edge.settings import Config
from edge.sources.plugins import PLUGINS
from edge.vision.config import Provider
from tests.service_support import FakeSystem

ENTRIES = ([(hardware.CAMERAS, name) for name in PLUGINS] + [(hardware.SENSORS, name) for name in SENSOR_PLUGINS]
           + [(hardware.PROVIDERS, name) for name in typing.get_args(Provider)])
# DeviceAllow= takes a /dev path or char-/block- and a name from /proc/devices, then r, w and/or m
DEVICE_ALLOW = re.compile(r"^(/dev/[\w./-]+|char-[\w-]+) r?w?m?$")

HARDWARE_CONFIG = {
    "site": "plant-7",
    "model": {"bundle": "bundle"},
    "assets": [{
        "id": "press-1",
        "cameras": [{"name": "top", "type": "v4l2", "device": "/dev/video0"}],
        "sensors": [
            {"name": "mic", "type": "soundcard", "quantity": "vibration", "unit": "g", "full_scale_v": 1.0},
            {"name": "drive_end", "type": "spi", "chip": "iis3dwb", "quantity": "vibration", "unit": "g"},
        ],
    }],
}


def write_config(path: Path, config: dict[str, typing.Any]) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def with_sensor(sensor: dict[str, typing.Any]) -> Config:
    return Config.model_validate({"assets": [{"id": "pump-1", "sensors": [sensor]}]})


@pytest.mark.parametrize(("table", "name"), ENTRIES, ids=[f"{name}" for _, name in ENTRIES])
def test_every_plugin_has_an_entry_with_valid_device_classes(table: dict[str, hardware.Access], name: str) -> None:
    access = table[name]  # a KeyError here: add the new plug-in to edge/service/hardware.py
    assert all(DEVICE_ALLOW.match(device) for device in access.devices), access.devices
    assert bool(access.devices) == bool(access.groups)  # a device node is reached through its group's mode


def test_the_tables_name_only_registered_plugins() -> None:
    assert set(hardware.CAMERAS) == set(PLUGINS) and set(hardware.SENSORS) == set(SENSOR_PLUGINS)
    assert set(hardware.PROVIDERS) == set(typing.get_args(Provider))


def test_systemd_accepts_every_device_entry(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package 'systemd'; scripts/test.sh installs it)")
    unit = tmp_path / "edgewatch.service"
    unit.write_text(render_unit("/usr/bin/true"))
    devices = sorted({d for table in (hardware.CAMERAS, hardware.SENSORS, hardware.PROVIDERS)
                      for access in table.values() for d in access.devices})
    (tmp_path / "edgewatch.service.d").mkdir()
    (tmp_path / "edgewatch.service.d/devices.conf").write_text(
        "[Service]\n" + "".join(f"DeviceAllow={d}\n" for d in devices)
        + f"SupplementaryGroups={' '.join(hardware.ALL_GROUPS)}\n")
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "devices.conf" not in done.stderr, done.stderr


def test_dry_run_prints_the_drop_in_for_a_sound_card_an_spi_sensor_and_a_v4l2_camera(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("edge.service.install._run", FakeSystem().run)
    config = write_config(tmp_path / "config.yaml", HARDWARE_CONFIG)
    assert main(["install-service", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    dropin = out.split("# /etc/systemd/system/edgewatch.service.d/devices.conf\n")[1]
    assert [line for line in dropin.splitlines() if not line.startswith("#")] == [
        "[Service]", "SupplementaryGroups=audio spi video",
        "DeviceAllow=char-alsa rw", "DeviceAllow=char-spi rw", "DeviceAllow=char-video4linux rw"]
    assert "DevicePolicy=closed" in out and "would create system group audio" in out
    assert f"install-service --config {config}" in dropin  # how to bring it up to date


def test_install_writes_the_drop_in_and_creates_its_groups(tmp_path: Path) -> None:
    from edge.service.install import Installer

    system = FakeSystem(groups=("video",))
    config = write_config(tmp_path / "config.yaml", HARDWARE_CONFIG)
    installer = Installer(root=tmp_path / "root", executable="/opt/ew/bin/edgewatch", run=system.run,
                          config_path=config)
    installer.apply(installer.plan())
    assert {"audio", "spi"} <= system.groups and ("groupadd", "--system", "video") not in system.commands
    unit = tmp_path / "root/etc/systemd/system/edgewatch.service"
    assert hardware.unit_access(unit) == ({"char-alsa rw", "char-spi rw", "char-video4linux rw"},
                                          {"audio", "spi", "video"})
    assert installer.plan() == []


def test_modbus_opens_serial_ports_only_over_rtu() -> None:
    register = {"name": "flow", "type": "modbus", "quantity": "generic", "address": 3}
    tcp = hardware.needs(with_sensor({**register, "host": "10.0.0.5"}))
    rtu = hardware.needs(with_sensor({**register, "transport": "rtu", "serial_port": "/dev/ttyUSB0"}))
    assert tcp == hardware.Needs((), (), ("modbus",))
    assert "char-ttyUSB rw" in rtu.devices and rtu.groups == ("dialout",) and rtu.extras == ("modbus",)


def test_unit_access_merges_drop_ins_as_systemd_does(tmp_path: Path) -> None:
    unit = tmp_path / "edgewatch.service"
    unit.write_text("[Service]\nDevicePolicy=closed\nDeviceAllow=char-i2c  rw\nSupplementaryGroups=i2c\n")
    (tmp_path / "edgewatch.service.d").mkdir()
    (tmp_path / "edgewatch.service.d/10-a.conf").write_text("[Service]\nDeviceAllow=\nDeviceAllow=char-alsa rw\n")
    (tmp_path / "edgewatch.service.d/20-b.conf").write_text("[Service]\nSupplementaryGroups=audio video\n")
    assert hardware.unit_access(unit) == ({"char-alsa rw"}, {"i2c", "audio", "video"})


def test_a_reload_needing_a_device_the_unit_lacks_is_refused_naming_the_command(tmp_path: Path) -> None:
    unit = tmp_path / "edgewatch.service"
    unit.write_text("[Service]\nDevicePolicy=closed\n")
    (tmp_path / "edgewatch.service.d").mkdir()
    (tmp_path / "edgewatch.service.d/devices.conf").write_text(
        "[Service]\nSupplementaryGroups=audio\nDeviceAllow=char-alsa rw\n")
    config = dict(HARDWARE_CONFIG, assets=[{**HARDWARE_CONFIG["assets"][0], "cameras": []}])
    del config["model"]
    path = write_config(tmp_path / "config.yaml", config)
    with pytest.raises(ConfigError) as refused:
        check_config(path, unit)
    message = str(refused.value)
    assert "sensor 'drive_end' on asset 'press-1' needs DeviceAllow=char-spi rw, SupplementaryGroups=spi" in message
    assert "'mic'" not in message and f"'sudo edgewatch install-service --config {path}'" in message
    reloader = Reloader(path, check=lambda p: check_config(p, unit))
    try:
        assert reloader.reload() is False and reloader.take() is None
    finally:
        reloader.close()
    config["assets"][0]["sensors"] = config["assets"][0]["sensors"][:1]  # the sound card alone is allowed
    assert check_config(write_config(path, config), unit).assets[0].sensors[0].name == "mic"


def test_doctor_as_service_runs_under_every_sandbox_setting_of_the_unit(tmp_path: Path) -> None:
    from edge.service.sandbox import doctor_command

    unit = tmp_path / "edgewatch.service"
    unit.write_text(render_unit("/opt/ew/bin/edgewatch"))
    (tmp_path / "edgewatch.service.d").mkdir()
    (tmp_path / "edgewatch.service.d/devices.conf").write_text(
        "# the devices\n[Service]\nSupplementaryGroups=audio\nDeviceAllow=char-alsa rw\n")
    command = doctor_command(unit, Path("/etc/edgewatch/config.yaml"))
    assert command[:3] == ["systemd-run", "--pipe", "--wait"]
    assert command[-4:] == ["/opt/ew/bin/edgewatch", "doctor", "--config", "/etc/edgewatch/config.yaml"]
    properties = [arg.removeprefix("--property=") for arg in command if arg.startswith("--property=")]
    for setting in ("User=edgewatch", "DevicePolicy=closed", "ProtectSystem=strict", "NoNewPrivileges=yes",
                    "SystemCallFilter=~@privileged @resources", "SupplementaryGroups=audio",
                    "DeviceAllow=char-alsa rw"):
        assert setting in properties
    assert properties.index("DevicePolicy=closed") < properties.index("DeviceAllow=char-alsa rw")  # drop-in last
    assert not [p for p in properties if p.split("=")[0] in ("ExecStart", "Type", "WatchdogSec", "Restart")]
    with pytest.raises(UsageError, match="install-service"):
        doctor_command(tmp_path / "missing.service", Path("c.yaml"))
    if not Path("/run/systemd/system").is_dir():  # this host has no systemd: refused, saying why
        assert main(["doctor", "--as-service", "--config", str(tmp_path / "c.yaml")]) == 2


@pytest.mark.parametrize(("detail", "fixed"), [
    ("PermissionError: [Errno 1] Operation not permitted: '/dev/i2c-1'", True),  # the device cgroup
    ("sensor bearing: bus error: Permission denied", True),  # a group the unit does not give
    ("FileNotFoundError: [Errno 2] No such file or directory: '/dev/i2c-1'", False),  # no such bus: wiring
])
def test_a_denied_read_names_the_drop_in_line_that_opens_it(detail: str, fixed: bool) -> None:
    from edge.cli.doctor import Result, denial_fix
    from edge.sensors.config import I2cSensor

    sensor = I2cSensor.model_validate({"name": "bearing", "type": "i2c", "chip": "tmp117", "quantity": "temperature"})
    row = denial_fix(Result("sensor press-1/bearing", "FAIL", detail), hardware.SENSORS, sensor,
                      Path("/etc/edgewatch/config.yaml"))
    hint = ("opened by the drop-in line(s) DeviceAllow=char-i2c rw, SupplementaryGroups=i2c (devices.conf: "
            "sudo edgewatch install-service --config /etc/edgewatch/config.yaml)")
    assert row.status == "FAIL" and row.detail.startswith(detail) and (hint in row.detail) == fixed
