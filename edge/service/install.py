"""``edgewatch install-service``: the systemd unit, its user, the config skeleton and the state folder.

The unit opens no device; a drop-in beside it (``edgewatch.service.d/devices.conf``) opens what the
config uses (see ``edge/service/hardware.py``). Idempotent by construction: ``plan`` looks at what is
already there and lists only the steps still needed, so a second run does nothing and ``--dry-run``
prints exactly what a real run would do. An existing config or API key file is never overwritten.
Commands go through one ``Runner`` (``subprocess.run`` by default) so the plan can be exercised
without a real system.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from edge.errors import StorageError, UsageError
from edge.files import write_atomically
from edge.service.hardware import DROPIN_NAME, needs, render_dropin
from edge.settings import Config, load_config

log = logging.getLogger(__name__)

USER = "edgewatch"
UNIT_NAME = "edgewatch.service"
UNIT_DIR = Path("etc/systemd/system")
CONFIG_DIR = Path("etc/edgewatch")
STATE_DIR = Path("var/lib/edgewatch")
KEY_FILE = "openai_api_key"  # LoadCredential=openai_api_key:/etc/edgewatch/openai_api_key
DEFAULT_EXEC = "/opt/edgewatch/bin/edgewatch"
INSTALLED_UNIT = Path("/") / UNIT_DIR / UNIT_NAME

Runner = Callable[[Sequence[str]], int]  # runs a command, returns its exit status

CONFIG_SKELETON = """\
# edgewatch config: edit it, check it with `edgewatch doctor`, then `sudo systemctl reload edgewatch`.
# Every key is documented in docs/; unknown keys are an error, relative paths are relative to this file.
site: {site}
state_dir: /var/lib/edgewatch
assets:
  - id: board
    name: This board
    check_interval_s: 60
    sensors:
      # the board's own CPU temperature, so the service has something real to watch from the start
      - name: cpu
        type: command
        quantity: temperature
        unit: degC
        command: ["awk", "{{print $1 / 1000}}", "/sys/class/thermal/thermal_zone0/temp"]
        warn_above: 75
        fault_above: 85
#   - id: press-1
#     check_interval_s: 60
#     cameras:
#       - {{name: top, type: picamera2}}
#     sensors:
#       - {{name: drive_end, type: i2c, chip: adxl345, quantity: vibration, unit: g}}
# model:
#   bundle: /var/lib/edgewatch/bundle     # written by `edgewatch export` on a workstation
"""


@dataclass(frozen=True)
class Step:
    """One change to the system: a description for --dry-run, then the commands and/or file to write."""

    description: str
    commands: tuple[tuple[str, ...], ...] = ()
    write: Path | None = None
    content: str = ""
    mode: int = 0o644
    make_dir: Path | None = None


@dataclass
class Installer:
    root: Path = Path("/")
    executable: str = field(default_factory=lambda: default_executable())
    run: Runner = field(default_factory=lambda: _run)
    site: str = "edgewatch"
    config_path: Path | None = None  # whose devices the drop-in opens; default the installed config

    def plan(self) -> list[Step]:
        hidden = Path(self.executable).parts[1:2]
        if hidden in (("home",), ("root",)):
            raise UsageError(
                f"the service could not start {self.executable}: the unit hides /home and /root "
                "(ProtectHome=yes); install edgewatch outside them, e.g. 'sudo python3 -m venv "
                "--system-site-packages /opt/edgewatch && sudo /opt/edgewatch/bin/pip install edgewatch', "
                "then run /opt/edgewatch/bin/edgewatch install-service"
            )
        config_path, loaded = self.config()
        steps: list[Step] = []
        for group in needs(loaded).groups:  # SupplementaryGroups= naming a missing group stops the unit
            if self.run(("getent", "group", group)) != 0:
                steps.append(Step(f"create system group {group}", (("groupadd", "--system", group),)))
        if self.run(("getent", "passwd", USER)) != 0:
            steps.append(Step(f"create system user {USER} (no login, no home)", ((
                "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", f"/{STATE_DIR}",
                "--shell", "/usr/sbin/nologin", USER),)))
        config_dir = self.root / CONFIG_DIR
        if not config_dir.is_dir():
            steps.append(Step(f"create {config_dir} (root:{USER}, 0750)", (("chown", f"root:{USER}", str(config_dir)),),
                              make_dir=config_dir, mode=0o750))
        config = config_dir / "config.yaml"
        if not config.exists():
            steps.append(Step(f"write a config skeleton to {config} (root:{USER}, 0640)",
                              (("chown", f"root:{USER}", str(config)),), write=config,
                              content=CONFIG_SKELETON.format(site=self.site), mode=0o640))
        key = config_dir / KEY_FILE
        if not key.exists():
            steps.append(Step(f"create an empty cloud API key file {key} (root only, 0600; systemd passes it "
                              "to the service as a credential)", write=key, content="", mode=0o600))
        state = self.root / STATE_DIR
        if not state.is_dir():
            steps.append(Step(f"create {state} ({USER}:{USER}, 0750)", (("chown", f"{USER}:{USER}", str(state)),),
                              make_dir=state, mode=0o750))
        whats = (f"ExecStart={self.executable}", f"the devices {config_path} uses")
        for (path, wanted), what in zip(self.files().items(), whats, strict=True):
            if not path.exists() or path.read_text(encoding="utf-8") != wanted:
                steps.append(Step(f"{'update' if path.exists() else 'install'} {path} ({what})",
                                  (("systemctl", "daemon-reload"),), write=path, content=wanted, mode=0o644))
        if self.run(("systemctl", "is-enabled", "--quiet", UNIT_NAME)) != 0:
            steps.append(Step(f"enable {UNIT_NAME} at boot", (("systemctl", "enable", UNIT_NAME),)))
        return steps

    def files(self) -> dict[Path, str]:
        """The unit and its device drop-in, as this install writes them."""
        config_path, config = self.config()
        unit_dir = self.root / UNIT_DIR
        return {unit_dir / UNIT_NAME: render_unit(self.executable),
                unit_dir / f"{UNIT_NAME}.d" / DROPIN_NAME: render_dropin(config, config_path)}

    def config(self) -> tuple[Path, Config]:
        """The config whose devices the drop-in opens: --config, else the installed one, else the skeleton."""
        installed = Path("/") / CONFIG_DIR / "config.yaml"
        if self.config_path is not None:
            return self.config_path.absolute(), load_config(self.config_path)
        if (self.root / CONFIG_DIR / "config.yaml").is_file():
            return installed, load_config(self.root / CONFIG_DIR / "config.yaml")
        return installed, Config.model_validate(yaml.safe_load(CONFIG_SKELETON.format(site=self.site)))

    def apply(self, steps: Sequence[Step]) -> None:
        for step in steps:
            if step.write is not None:
                step.write.parent.mkdir(parents=True, exist_ok=True)
            if step.make_dir is not None:
                step.make_dir.mkdir(parents=True, exist_ok=True)
                step.make_dir.chmod(step.mode)
            if step.write is not None:
                _write_atomically(step.write, step.content, step.mode)
            for command in step.commands:
                status = self.run(command)
                if status != 0:
                    raise StorageError(f"'{' '.join(command)}' failed with exit status {status} "
                                       f"while trying to {step.description}")


def default_executable() -> str:
    """The ``edgewatch`` script of the running environment (a venv), else the /opt default."""
    script = Path(sys.executable).parent / "edgewatch"
    return str(script) if script.is_file() else shutil.which("edgewatch") or DEFAULT_EXEC


def render_unit(executable: str) -> str:
    """The packaged unit (systemd/edgewatch.service) with ExecStart pointing at ``executable``."""
    template = resources.files("edge.service").joinpath(UNIT_NAME).read_text(encoding="utf-8")
    if DEFAULT_EXEC not in template:
        raise StorageError(f"the packaged {UNIT_NAME} has no ExecStart={DEFAULT_EXEC} to point at this install")
    if any(c.isspace() for c in executable):
        raise UsageError(f"cannot put {executable!r} in ExecStart: the path contains white space")
    return template.replace(DEFAULT_EXEC, executable)


def _write_atomically(path: Path, content: str, mode: int) -> None:
    try:
        write_atomically(path, content.encode("utf-8"), mode)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc


def _run(command: Sequence[str]) -> int:
    """Run quietly (probes such as ``getent`` fail by design); the output goes to the debug log."""
    try:
        done = subprocess.run(list(command), check=False, capture_output=True, text=True)
    except FileNotFoundError:
        log.debug("%s: not installed", command[0])
        return 127  # the tool is missing: reported by the step that needed it
    if done.returncode != 0:
        log.debug("'%s' exited %d: %s", " ".join(command), done.returncode, done.stderr.strip())
    return done.returncode
