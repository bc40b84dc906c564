"""What the configured plug-ins need from the board: device classes, groups and pip extras.

The unit ships with ``DevicePolicy=closed`` and no device at all; a drop-in written from the config
(``edgewatch install-service --config C``, ``edgewatch image build``) opens exactly the device
classes and groups the configured cameras, sensors and execution provider use. The tables below are
the one place that knows them: a plug-in missing here fails a test. Device classes are the names
in the kernel's /proc/devices, as ``DeviceAllow=char-NAME`` takes them (systemd.resource-control(5)).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.service.sandbox import service_settings
from edge.settings import Config

DROPIN_NAME = "devices.conf"  # in edgewatch.service.d/, beside the unit


@dataclass(frozen=True)
class Access:
    """One plug-in's needs. ``when`` (field, value) scopes the devices and groups, e.g. Modbus RTU only."""

    devices: tuple[str, ...] = ()  # DeviceAllow= values
    groups: tuple[str, ...] = ()  # SupplementaryGroups= names
    extra: str | None = None  # the pip extra its library comes from
    when: tuple[str, str] | None = None


_V4L2 = Access(("char-video4linux rw",), ("video",), "video")
_SERIAL = ("char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw", "char-ttyS rw")  # USB adapters, Pi UARTs
# The Jetson's integrated GPU (JetPack 5/6): nvmap and the nvhost nodes; absent nodes are skipped at start.
_JETSON_GPU = Access(("/dev/nvmap rw", "/dev/nvhost-ctrl rw", "/dev/nvhost-ctrl-gpu rw", "/dev/nvhost-gpu rw",
                      "/dev/nvhost-as-gpu rw", "/dev/nvhost-prof-gpu rw"), ("video",))

# camera ``type`` -> needs (picamera2 comes from apt on Raspberry Pi OS: no pip extra)
CAMERAS: dict[str, Access] = {
    "folder": Access(),
    "http": Access(),
    "rtsp": Access(extra="video"),
    "v4l2": _V4L2,
    "picamera2": Access(("char-video4linux rw", "char-media rw", "char-dma_heap rw", "char-vchiq rw"), ("video",)),
}
# sensor ``type`` -> needs (a command sensor that opens a device needs a drop-in of its own)
SENSORS: dict[str, Access] = {
    "replay": Access(),
    "command": Access(),
    "onewire": Access(),  # sysfs, no device node
    "mqtt": Access(extra="mqtt"),
    "i2c": Access(("char-i2c rw",), ("i2c",), "i2c"),
    # spidev registers its nodes as "spi"; no aarch64 wheel on PyPI, so images take apt's python3-spidev
    "spi": Access(("char-spi rw",), ("spi",)),
    "soundcard": Access(("char-alsa rw",), ("audio",)),  # arecord, from alsa-utils
    "modbus": Access(_SERIAL, ("dialout",), "modbus", when=("transport", "rtu")),
}
# model.provider -> needs
PROVIDERS: dict[str, Access] = {"auto": Access(), "cpu": Access(), "cuda": _JETSON_GPU, "tensorrt": _JETSON_GPU}
ALL_GROUPS = tuple(sorted({g for table in (CAMERAS, SENSORS, PROVIDERS) for a in table.values() for g in a.groups}))


@dataclass(frozen=True)
class Needs:
    devices: tuple[str, ...]
    groups: tuple[str, ...]
    extras: tuple[str, ...]


def parts(config: Config) -> Iterator[tuple[str, Access]]:
    """Each configured part that needs something, named as a person would find it in the config."""
    if config.model is not None:
        yield f"model.provider {config.model.provider}", PROVIDERS[config.model.provider]
    for asset in config.assets:
        for camera in asset.cameras:
            yield f"camera {camera.name!r} on asset {asset.id!r}", access(CAMERAS, camera)
        for sensor in asset.sensors:
            yield f"sensor {sensor.name!r} on asset {asset.id!r}", access(SENSORS, sensor)
    if config.outputs.mqtt is not None:
        yield "outputs.mqtt", Access(extra="mqtt")
    if config.escalation.enabled:
        yield "escalation", Access(extra="cloud")
    if config.alerts.notify:
        yield "alerts.notify", Access(extra="notify")


def needs(config: Config) -> Needs:
    found = [part for _, part in parts(config)]
    return Needs(_union(a.devices for a in found), _union(a.groups for a in found),
                 _union((a.extra,) if a.extra else () for a in found))


def render_dropin(config: Config, config_path: Path) -> str:
    """The ``[Service]`` drop-in opening what ``config`` uses (nothing but a comment when it uses no device)."""
    wanted = needs(config)
    lines = [f"# The devices and groups {config_path} uses. After adding a camera or sensor, run",
             f"# 'sudo {install_command(config_path)}' (a reload that needs more is refused).", "[Service]"]
    if wanted.groups:
        lines.append(f"SupplementaryGroups={' '.join(wanted.groups)}")
    lines += [f"DeviceAllow={device}" for device in wanted.devices]
    return "\n".join(lines) + "\n"


def install_command(config_path: Path) -> str:
    return f"edgewatch install-service --config {config_path}"


def unit_access(unit: Path) -> tuple[set[str], set[str]]:
    """DeviceAllow= entries and SupplementaryGroups= of ``unit`` and its drop-ins, as systemd merges them
    (an empty assignment clears the list)."""
    devices: set[str] = set()
    groups: set[str] = set()
    for key, value in service_settings(unit):
        target = {"DeviceAllow": devices, "SupplementaryGroups": groups}.get(key)
        if target is None:
            continue
        if not value:
            target.clear()
        elif key == "DeviceAllow":
            target.add(" ".join(value.split()))
        else:
            target.update(value.split())
    return devices, groups


def denied(config: Config, devices: set[str], groups: set[str]) -> list[str]:
    """One line per configured part needing a device or group the unit does not give, naming what is missing."""
    lines = []
    for name, found in parts(config):
        missing = [f"DeviceAllow={d}" for d in found.devices if d not in devices]
        missing += [f"SupplementaryGroups={g}" for g in found.groups if g not in groups]
        if missing:
            lines.append(f"{name} needs {', '.join(missing)}")
    return lines


def access(table: dict[str, Access], section: Any) -> Access:
    """What one configured camera or sensor (``section``, with its ``type``) needs."""
    found = table[section.type]
    if found.when is None or getattr(section, found.when[0]) == found.when[1]:
        return found
    return Access(extra=found.extra)


def fix_lines(found: Access) -> list[str]:
    """The drop-in lines that open what ``found`` needs."""
    return [f"DeviceAllow={d}" for d in found.devices] + [f"SupplementaryGroups={g}" for g in found.groups]


def _union(items: Iterable[Iterable[str]]) -> tuple[str, ...]:
    return tuple(sorted({item for group in items for item in group}))
