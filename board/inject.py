"""Put edgewatch into an arm64 root file system: venv, user, config and data, hardened unit, journald.

Works the same on the minimal Debian root and on a user's base (Raspberry Pi OS, a Jetson root):
everything is written from the host. The user and its hardware groups are declared for
systemd-sysusers, which creates them here (``--root``) and again at boot if a base resets
/etc/passwd; existing groups (a Pi's gpio, i2c, spi) are kept as they are.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from board import venv
from board.host import BuildError, require, run
from board.wheelhouse import TargetPython
from edge.service.hardware import DROPIN_NAME, needs, render_dropin
from edge.service.install import (
    CONFIG_DIR,
    KEY_FILE,
    STATE_DIR,
    UNIT_DIR,
    UNIT_NAME,
    USER,
    render_unit,
)
from edge.settings import load_config

log = logging.getLogger(__name__)

# Debian leaves /dev/i2c-* and /dev/spidev* to root alone; Raspberry Pi OS gives them these groups
UDEV_GROUPS = ("i2c", "spi")
UDEV_RULES = ('SUBSYSTEM=="i2c-dev", GROUP="i2c", MODE="0660"\n'
              'SUBSYSTEM=="spidev", GROUP="spi", MODE="0660"\n')
JOURNAL_MAX_USE = "64M"  # persistent journal capped so an SD card never fills with logs
WHEELHOUSE = Path("var/cache/edgewatch/wheelhouse")  # on the board: reinstall or roll back with --no-index


@dataclass(frozen=True)
class Payload:
    """What the user puts on the board: a config file and the folders it names by relative path."""

    config: Path
    folders: tuple[Path, ...] = ()


def sysusers_conf(groups: tuple[str, ...]) -> str:
    """The service user in the hardware groups its config needs (the drop-in's SupplementaryGroups=); the
    groups the udev rules name exist either way, so a later install-service --config finds them."""
    lines = [f'u {USER} - "edgewatch machine monitoring" /{STATE_DIR} /usr/sbin/nologin']
    lines += [f"g {group} -" for group in sorted({*groups, *UDEV_GROUPS})]
    lines += [f"m {USER} {group}" for group in groups]
    return "\n".join(lines) + "\n"


def journald_conf() -> str:
    return f"[Journal]\nStorage=persistent\nSystemMaxUse={JOURNAL_MAX_USE}\n"


def account_id(root: Path, table: str, name: str) -> int:
    """Numeric id of ``name`` in ``root``'s /etc/passwd or /etc/group (the host's ids mean nothing there)."""
    for line in (root / "etc" / table).read_text(encoding="utf-8").splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    raise BuildError(f"{name!r} is missing from {root}/etc/{table} after systemd-sysusers ran")


def _copy_payload(root: Path, payload: Payload, gid: int) -> None:
    config_dir = root / CONFIG_DIR
    config_dir.mkdir(parents=True, exist_ok=True)
    targets = [config_dir / "config.yaml"]
    shutil.copyfile(payload.config, targets[0])
    for folder in payload.folders:
        if not folder.is_dir():
            raise BuildError(f"{folder} is not a folder: --with takes the folders the config names (bundle, frames)")
        destination = config_dir / folder.name
        shutil.copytree(folder, destination, symlinks=False)
        targets.append(destination)
    for target in [config_dir, *targets]:
        for path in [target, *(target.rglob("*") if target.is_dir() else [])]:
            os.chown(path, 0, gid, follow_symlinks=False)
            os.chmod(path, 0o750 if path.is_dir() else 0o640)
    key = config_dir / KEY_FILE
    if not key.exists():  # LoadCredential= needs the file; an empty key means no cloud escalation
        key.touch(mode=0o600)


def inject(root: Path, target: TargetPython, wheels: list[Path], payload: Payload) -> None:
    """Install edgewatch into ``root`` so that it starts as a hardened service on first boot."""
    require("systemd-sysusers", "systemctl")
    config = load_config(payload.config)
    groups = needs(config).groups
    venv.create(root, target, wheels)
    house = root / WHEELHOUSE
    house.mkdir(parents=True, exist_ok=True)
    for item in [*wheels, wheels[0].parent / "constraints.txt"]:
        shutil.copyfile(item, house / item.name)
    sysusers = root / "usr/lib/sysusers.d/edgewatch.conf"
    sysusers.parent.mkdir(parents=True, exist_ok=True)
    sysusers.write_text(sysusers_conf(groups), encoding="utf-8")
    run(["systemd-sysusers", f"--root={root}", sysusers], "create the edgewatch user and its groups")
    gid = account_id(root, "group", USER)
    _copy_payload(root, payload, gid)
    state = root / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    os.chown(state, account_id(root, "passwd", USER), gid)
    state.chmod(0o750)
    rules = root / "etc/udev/rules.d/60-edgewatch.rules"
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(UDEV_RULES, encoding="utf-8")
    journald = root / "etc/systemd/journald.conf.d/50-edgewatch.conf"
    journald.parent.mkdir(parents=True, exist_ok=True)
    journald.write_text(journald_conf(), encoding="utf-8")
    (root / "var/log/journal").mkdir(parents=True, exist_ok=True)
    unit = root / UNIT_DIR / UNIT_NAME
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(render_unit(str(venv.PREFIX / "bin/edgewatch")), encoding="utf-8")
    dropin = unit.with_name(f"{UNIT_NAME}.d") / DROPIN_NAME
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(render_dropin(config, Path("/") / CONFIG_DIR / "config.yaml"), encoding="utf-8")
    run(["systemctl", f"--root={root}", "enable", UNIT_NAME], "enable edgewatch.service in the image")
    log.info("edgewatch installed in %s: %s, user %s in %s", root, venv.PREFIX, USER,
             ", ".join(groups) or "no hardware group")

