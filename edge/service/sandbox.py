"""``edgewatch doctor --as-service``: the doctor run under the installed unit's own sandbox.

A check that passes in a root shell can still fail in the service: ``DevicePolicy=closed``, the
user's groups, ``ProtectSystem=strict``. ``systemd-run`` starts the doctor as a transient unit with
every ``[Service]`` setting of the installed unit and its drop-ins, minus the ones about the
service's lifecycle (type, watchdog, restarts), so it meets exactly the walls the service meets.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from edge.errors import UsageError

# [Service] settings that describe the service's lifecycle, not its sandbox (the transient doctor
# is a plain process that exits); everything else is passed to systemd-run as a property.
LIFECYCLE = frozenset({"Type", "NotifyAccess", "ExecStart", "ExecReload", "WatchdogSec", "Restart", "RestartSec",
                       "TimeoutStartSec", "TimeoutStopSec"})


def service_settings(unit: Path) -> list[tuple[str, str]]:
    """Every ``[Service]`` assignment of ``unit`` then its ``.d/*.conf`` drop-ins, in systemd's order."""
    if not unit.is_file():
        raise UsageError(f"{unit} is not installed: run 'sudo edgewatch install-service --config C' first")
    settings: list[tuple[str, str]] = []
    for path in [unit, *sorted(unit.with_name(unit.name + ".d").glob("*.conf"))]:
        section = ""
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Service" and "=" in line and not line.startswith(("#", ";")):
                key, value = line.split("=", 1)
                settings.append((key.strip(), value.strip()))
    return settings


def doctor_command(unit: Path, config: Path) -> list[str]:
    """``systemd-run`` running ``edgewatch doctor --config config`` with the unit's sandbox properties."""
    settings = service_settings(unit)
    starts = [value for key, value in settings if key == "ExecStart" and value]
    if not starts:
        raise UsageError(f"{unit} has no ExecStart= to find the installed edgewatch from")
    executable = shlex.split(starts[-1])[0]
    properties = [f"--property={key}={value}" for key, value in settings if key not in LIFECYCLE]
    return ["systemd-run", "--pipe", "--wait", "--quiet", "--collect", "--service-type=exec",
            "--unit=edgewatch-doctor", *properties, executable, "doctor", "--config", str(config)]
