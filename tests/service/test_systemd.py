"""The systemd unit (verify, security exposure, protocol settings) and install-service."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge.cli.main import main
from edge.errors import UsageError
from edge.service.install import CONFIG_SKELETON, DEFAULT_EXEC, Installer, render_unit
from edge.settings import Config
from tests.service_support import REPO_ROOT, FakeSystem

UNIT = REPO_ROOT / "systemd" / "edgewatch.service"
MAX_EXPOSURE = 3.0


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


@pytest.fixture
def rendered_unit(tmp_path: Path) -> Path:
    """The unit as install-service writes it, pointing at this environment's edgewatch."""
    executable = Path(sys.executable).parent / "edgewatch"
    if not executable.is_file():
        pytest.fail(f"no edgewatch script next to {sys.executable} to point ExecStart at: install edgewatch into "
                    "this environment (scripts/test.sh does)")
    path = tmp_path / "edgewatch.service"
    path.write_text(render_unit(str(executable)))
    return path


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze not installed (Debian package 'systemd'; scripts/test.sh installs it)")
    return tool


def test_unit_declares_the_service_contract() -> None:
    settings = unit_settings()
    assert settings["Type"] == ["notify"] and settings["NotifyAccess"] == ["main"]
    assert int(settings["WatchdogSec"][0]) >= 10 and settings["Restart"] == ["on-failure"]
    assert settings["User"] == ["edgewatch"] and settings["StateDirectory"] == ["edgewatch"]
    assert settings["ConfigurationDirectory"] == ["edgewatch"]
    assert settings["LoadCredential"] == ["openai_api_key:/etc/edgewatch/openai_api_key"]
    assert "SupplementaryGroups" not in settings  # the device drop-in adds what the config uses
    assert settings["ProtectSystem"] == ["strict"] and settings["ProtectHome"] == ["yes"]
    assert settings["PrivateTmp"] == ["yes"] and settings["NoNewPrivileges"] == ["yes"]
    assert settings["DevicePolicy"] == ["closed"] and "DeviceAllow" not in settings
    assert settings["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "@system-service" in settings["SystemCallFilter"]
    assert settings["ExecStart"] == [f"{DEFAULT_EXEC} run --config /etc/edgewatch/config.yaml"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_packaged_unit_is_the_repository_unit() -> None:
    assert render_unit(DEFAULT_EXEC) == UNIT.read_text()


def test_systemd_analyze_verify_passes(rendered_unit: Path) -> None:
    done = subprocess.run([systemd_analyze(), "verify", str(rendered_unit)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "edgewatch.service" not in done.stderr  # no warning about the unit itself


def test_security_exposure_is_at_most_3(rendered_unit: Path) -> None:
    done = subprocess.run([systemd_analyze(), "security", "--offline=true", str(rendered_unit)],
                          capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for edgewatch\.service: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_install_service_is_idempotent(tmp_path: Path) -> None:
    system = FakeSystem()
    installer = Installer(root=tmp_path, executable="/opt/ew/bin/edgewatch", run=system.run, site="plant-7")
    steps = installer.plan()
    assert [s.description.split(" ")[0] for s in steps] == [
        "create", "create", "write", "create", "create", "install", "install", "enable"]
    installer.apply(steps)
    assert system.groups == {"video", "edgewatch"} and system.users == {"edgewatch"}  # the skeleton uses no device
    dropin = (tmp_path / "etc/systemd/system/edgewatch.service.d/devices.conf").read_text()
    assert "[Service]" in dropin and "DeviceAllow" not in dropin
    assert ("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/var/lib/edgewatch",
            "--shell", "/usr/sbin/nologin", "edgewatch") in system.commands
    unit = tmp_path / "etc/systemd/system/edgewatch.service"
    assert "ExecStart=/opt/ew/bin/edgewatch run --config /etc/edgewatch/config.yaml" in unit.read_text()
    key = tmp_path / "etc/edgewatch/openai_api_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_text() == ""
    assert stat.S_IMODE((tmp_path / "etc/edgewatch").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "var/lib/edgewatch").stat().st_mode) == 0o750
    assert "site: plant-7" in (tmp_path / "etc/edgewatch/config.yaml").read_text()
    assert installer.plan() == []  # second run: nothing left to do

    mine = "# mine\n" + CONFIG_SKELETON.format(site="plant-7")  # read for its devices, never rewritten
    (tmp_path / "etc/edgewatch/config.yaml").write_text(mine)
    moved = Installer(root=tmp_path, executable="/usr/local/bin/edgewatch", run=system.run)
    assert [s.description.split(" ")[0] for s in moved.plan()] == ["update"]  # only the unit; config kept
    moved.apply(moved.plan())
    assert (tmp_path / "etc/edgewatch/config.yaml").read_text() == mine


def test_an_install_under_home_is_refused_with_the_fix() -> None:
    installer = Installer(root=Path("/nonexistent"), executable="/home/pi/.venv/bin/edgewatch", run=FakeSystem().run)
    with pytest.raises(UsageError, match=r"ProtectHome=yes.*/opt/edgewatch"):
        installer.plan()


def test_config_skeleton_is_a_valid_config() -> None:
    config = Config.model_validate(yaml.safe_load(CONFIG_SKELETON.format(site="plant-7")))
    assert config.site == "plant-7" and config.assets[0].sensors[0].command[0] == "awk"


def test_dry_run_prints_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    system = FakeSystem()
    monkeypatch.setattr("edge.service.install._run", system.run)  # probes answered by the fake; "/" is only read
    assert main(["install-service", "--dry-run"]) == 0
    steps, files = capsys.readouterr().out.split("\n\n", 1)
    assert steps and all(line.startswith("would ") for line in steps.splitlines())
    assert [line for line in files.splitlines() if line.startswith("# /etc/")] == [
        "# /etc/systemd/system/edgewatch.service", "# /etc/systemd/system/edgewatch.service.d/devices.conf"]
    assert all(c[0] in ("getent", "systemctl") and "enable" not in c for c in system.commands)  # probes only
