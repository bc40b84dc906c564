"""The RAUC bootloader backends that cannot boot here (Raspberry Pi tryboot, Jetson nvbootctrl) and the
health gate, run as the board runs them: the shipped scripts, with a temp boot folder, a fake
nvbootctrl (hardware we lack) and the real ``edgewatch history`` over a real SQLite history (and the
real ``edgewatch fleet system-rollback`` noting a rollback in a real state folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edge.fleet import system_rollbacks
from edge.store.history import History
from edge.store.layout import StateFolder
from tests.board_support import REPO_ROOT
from tests.history_support import make_verdict
from tests.rauc_support import rauc_status

RAUC = REPO_ROOT / "contrib" / "rauc"
AUTOBOOT_A = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=2\n"


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RAUC / script), *args], env={**os.environ, **env}, text=True, capture_output=True,
                          check=False, timeout=60)


class Pi:
    """A Raspberry Pi's FAT autoboot partition and what the firmware tells Linux about this boot."""

    def __init__(self, tmp_path: Path) -> None:
        self.boot = tmp_path / "boot"
        self.boot.mkdir()
        (self.boot / "autoboot.txt").write_text(AUTOBOOT_A, encoding="utf-8")
        self.cmdline, self.flag = tmp_path / "cmdline", tmp_path / "tryboot"
        self.booted("A", tryboot=False)
        self.env = {"EDGEWATCH_AUTOBOOT_DIR": str(self.boot), "EDGEWATCH_CMDLINE": str(self.cmdline),
                    "EDGEWATCH_TRYBOOT_FLAG": str(self.flag)}

    def booted(self, slot: str, tryboot: bool) -> None:
        """What the firmware leaves after a boot: the slot's cmdline.txt and the tryboot cell (big-endian)."""
        self.cmdline.write_text(f"console=serial0 root=/dev/mmcblk0p{5 if slot == 'A' else 6} rauc.slot={slot}\n")
        self.flag.write_bytes((1 if tryboot else 0).to_bytes(4, "big"))

    def firmware_choice(self, tryboot: bool) -> int:
        """The partition the firmware boots: [tryboot] after 'reboot "0 tryboot"', else [all]."""
        section, chosen = "", {}
        for line in (self.boot / "autoboot.txt").read_text(encoding="utf-8").splitlines():
            if line.startswith("["):
                section = line
            elif line.startswith("boot_partition="):
                chosen[section] = int(line.split("=")[1])
        return chosen["[tryboot]" if tryboot else "[all]"]

    def backend(self, *args: str) -> str:
        done = run("tryboot-backend", *args, env=self.env)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def test_tryboot_update_is_tried_once_then_committed_by_mark_good(tmp_path: Path) -> None:
    pi = Pi(tmp_path)
    assert pi.backend("get-primary") == "A" and pi.backend("get-current") == "A"
    # rauc install: the target is marked bad while written, then made primary
    pi.backend("set-state", "B", "bad")
    assert pi.backend("get-state", "B") == "bad"
    pi.backend("set-primary", "B")
    assert pi.backend("get-state", "B") == "good"
    assert pi.backend("get-primary") == "A", "an untried slot must not become the normal boot"
    assert (pi.firmware_choice(tryboot=True), pi.firmware_choice(tryboot=False)) == (3, 2)
    pi.booted("B", tryboot=True)  # reboot "0 tryboot"
    pi.backend("set-state", "B", "good")  # the health gate's rauc status mark-good
    assert pi.backend("get-primary") == "B"
    assert (pi.firmware_choice(tryboot=True), pi.firmware_choice(tryboot=False)) == (3, 3)


def test_tryboot_update_that_never_passes_falls_back_on_the_next_plain_boot(tmp_path: Path) -> None:
    pi = Pi(tmp_path)
    pi.backend("set-primary", "B")
    pi.booted("B", tryboot=True)  # the new slot comes up but its health gate fails: no mark-good, a reboot
    assert pi.firmware_choice(tryboot=False) == 2
    pi.booted("A", tryboot=False)
    assert pi.backend("get-current") == "A" and pi.backend("get-primary") == "A"


def test_tryboot_mark_good_outside_a_try_does_not_switch_and_bad_primary_moves_away(tmp_path: Path) -> None:
    pi = Pi(tmp_path)
    pi.backend("set-primary", "B")
    pi.booted("B", tryboot=False)  # B booted without the tryboot flag (a test on the bench): no commit
    pi.backend("set-state", "B", "good")
    assert pi.backend("get-primary") == "A"
    pi.booted("A", tryboot=False)
    pi.backend("set-state", "A", "bad")  # rauc status mark-bad on the normal boot: the other slot takes over
    assert pi.backend("get-primary") == "B" and pi.backend("get-state", "A") == "bad"


@pytest.mark.parametrize(("args", "message"), [
    (("get-state", "C"), "unknown slot 'C'"),
    (("set-state", "A", "ok"), "unknown state 'ok'"),
    (("flip",), "unknown command 'flip'"),
])
def test_tryboot_refuses_bad_arguments_by_name(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    pi = Pi(tmp_path)
    done = run("tryboot-backend", *args, env=pi.env)
    assert done.returncode != 0 and message in done.stderr
    assert (pi.boot / "autoboot.txt").read_text(encoding="utf-8") == AUTOBOOT_A


def test_tryboot_without_autoboot_txt_says_so(tmp_path: Path) -> None:
    pi = Pi(tmp_path)
    (pi.boot / "autoboot.txt").unlink()
    done = run("tryboot-backend", "get-primary", env=pi.env)
    assert done.returncode != 0 and "autoboot.txt is missing" in done.stderr


FAKE_NVBOOTCTRL = """#!/bin/sh
# nvbootctrl -t rootfs COMMAND [N], its slot table in $NV_STATE: current active status0 status1
read current active s0 s1 < "$NV_STATE"
echo "$*" >> "$NV_STATE.calls"
[ "$1" = -t ] && [ "$2" = rootfs ] || { echo "expected -t rootfs" >&2; exit 2; }
case $3 in
  dump-slots-info)
    letter() { [ "$1" = 0 ] && echo A || echo B; }
    echo "Current rootfs slot: $(letter $current)"; echo "Active rootfs slot: $(letter $active)"
    echo "num_slots: 2"
    echo "slot: 0,             retry_count: 3,             status: $s0"
    echo "slot: 1,             retry_count: 3,             status: $s1" ;;
  set-active-boot-slot) active=$4; [ "$4" = 0 ] && s0=normal || s1=normal ;;
  set-slot-as-unbootable) [ "$4" = 0 ] && s0=unbootable || s1=unbootable ;;
  mark-boot-successful) ;;
  *) echo "unknown $3" >&2; exit 2 ;;
esac
echo "$current $active $s0 $s1" > "$NV_STATE"
"""


@pytest.fixture
def jetson(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "bin" / "nvbootctrl"
    fake.parent.mkdir()
    fake.write_text(FAKE_NVBOOTCTRL, encoding="utf-8")
    fake.chmod(0o755)
    (tmp_path / "nv").write_text("0 0 normal normal\n", encoding="utf-8")
    return {"PATH": f"{fake.parent}:{os.environ['PATH']}", "NV_STATE": str(tmp_path / "nv")}


def nv(env: dict[str, str], *args: str) -> str:
    done = run("nvbootctrl-backend", *args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_nvbootctrl_backend_maps_rauc_slots_to_rootfs_slots(jetson: dict[str, str]) -> None:
    assert nv(jetson, "get-primary") == "A" and nv(jetson, "get-current") == "A"
    nv(jetson, "set-state", "B", "bad")
    assert nv(jetson, "get-state", "B") == "bad"
    nv(jetson, "set-primary", "B")
    assert nv(jetson, "get-primary") == "B" and nv(jetson, "get-state", "B") == "good"
    nv(jetson, "set-state", "A", "good")  # the running slot
    calls = Path(jetson["NV_STATE"] + ".calls").read_text(encoding="utf-8").splitlines()
    assert "-t rootfs set-slot-as-unbootable 1" in calls
    assert "-t rootfs set-active-boot-slot 1" in calls
    assert calls[-1] == "-t rootfs mark-boot-successful"


def test_nvbootctrl_backend_refuses_to_mark_another_slot_good(jetson: dict[str, str]) -> None:
    done = run("nvbootctrl-backend", "set-state", "B", "good", env=jetson)
    assert done.returncode != 0 and "only the running slot can be marked good" in done.stderr
    assert not Path(jetson["NV_STATE"] + ".calls").read_text(encoding="utf-8").count("mark-boot-successful")


def test_nvbootctrl_backend_names_a_missing_tool(tmp_path: Path) -> None:
    done = run("nvbootctrl-backend", "get-primary", env={"EDGEWATCH_NVBOOTCTRL": str(tmp_path / "absent")})
    assert done.returncode != 0 and "dump-slots-info" in done.stderr


class Gate:
    """health-gate with systemctl and rauc faked (no systemd or RAUC runs here) and the real
    `edgewatch history` reading a real SQLite history; doctor is the fake's exit status."""

    def __init__(self, tmp_path: Path, active: bool, doctor_ok: bool, restarts: int = 0) -> None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        self.marked, self.status = tmp_path / "marked", tmp_path / "rauc-status.json"
        self.slots(a="good", b="good")
        fakes = {
            "systemctl": f'[ "$1" = is-active ] && exit {0 if active else 3}\n'
                         f'[ "$1" = show ] && echo {restarts} && exit 0\nexit 1\n',
            "rauc": f'echo "$*" >> {self.marked}\n[ "$1" = status ] && [ "$2" = --detailed ] && cat {self.status}\n'
                    'exit 0\n',
            "edgewatch": f'[ "$1" = doctor ] && exit {0 if doctor_ok else 1}\n'
                         f'exec {sys.executable} -m edge "$@"\n',
        }
        for name, body in fakes.items():
            (bin_dir / name).write_text("#!/bin/sh\n" + body, encoding="utf-8")
            (bin_dir / name).chmod(0o755)
        self.state = tmp_path / "state"
        self.config = tmp_path / "config.yaml"
        demo = yaml.safe_load((REPO_ROOT / "examples/demo.yaml").read_text(encoding="utf-8"))
        demo["state_dir"] = str(self.state)
        self.config.write_text(yaml.safe_dump(demo), encoding="utf-8")
        self.uptime = tmp_path / "uptime"
        self.uptime.write_text("100.00 150.00\n", encoding="utf-8")  # booted 100 s ago
        self.env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "EDGEWATCH": str(bin_dir / "edgewatch"),
                    "EDGEWATCH_CONFIG": str(self.config), "EDGEWATCH_UPTIME": str(self.uptime),
                    "EDGEWATCH_GATE_TIMEOUT_S": "4", "EDGEWATCH_GATE_POLL_S": "1", "PYTHONPATH": str(REPO_ROOT)}

    def slots(self, a: str, b: str) -> None:
        """What `rauc status --detailed --output-format=json` says, slot A booted."""
        self.status.write_text(json.dumps(rauc_status(a, b, booted="A")), encoding="utf-8")

    def store(self, age_s: float) -> None:
        self.state.mkdir(exist_ok=True)
        with History(self.state / "history.sqlite3") as history:
            history.add(make_verdict("press-1", ts=time.time() - age_s))

    def run(self) -> subprocess.CompletedProcess[str]:
        return run("health-gate", env=self.env)


def test_gate_marks_good_once_ready_doctor_and_a_verdict_of_this_boot(tmp_path: Path) -> None:
    gate = Gate(tmp_path, active=True, doctor_ok=True)
    gate.store(age_s=10)
    done = gate.run()
    assert done.returncode == 0, done.stderr
    assert gate.marked.read_text().splitlines()[0] == "status mark-good booted"
    assert "ROLLBACK" not in done.stderr


def test_gate_notes_a_rollback_once_when_the_other_slot_is_bad(tmp_path: Path) -> None:
    gate = Gate(tmp_path, active=True, doctor_ok=True)
    gate.slots(a="good", b="bad")
    gate.store(age_s=10)
    done = gate.run()
    assert done.returncode == 0 and "ROLLBACK: slot B is marked bad (version 1.1.0, installed" in done.stderr
    assert system_rollbacks.count(StateFolder(gate.state)) == 1  # edgewatch_system_rollbacks_total
    again = gate.run()  # the next boot of the same slot: nothing new to say or count
    assert again.returncode == 0 and "ROLLBACK" not in again.stderr and "could not note" not in again.stderr
    assert system_rollbacks.count(StateFolder(gate.state)) == 1


def test_gate_says_when_it_cannot_note_a_rollback_and_still_passes(tmp_path: Path) -> None:
    gate = Gate(tmp_path, active=True, doctor_ok=True)
    gate.status.write_text("not json", encoding="utf-8")  # rauc could not reach its service
    gate.store(age_s=10)
    done = gate.run()
    assert done.returncode == 0 and "slot marked good" in done.stderr
    assert "could not note a rollback: edgewatch: error: rauc status from standard input" in done.stderr


@pytest.mark.parametrize(("active", "doctor_ok", "verdict_age_s", "restarts", "missing"), [
    (False, True, 10, 0, "ready=no"),
    (True, False, 10, 0, "doctor=no"),
    (True, True, 3600, 0, "verdict=no"),  # only a verdict of an earlier boot (the old slot's)
    (False, True, 10, 3, "restarted 3 times"),
])
def test_gate_fails_and_leaves_the_slot_unconfirmed(tmp_path: Path, active: bool, doctor_ok: bool,
                                                    verdict_age_s: float, restarts: int, missing: str) -> None:
    gate = Gate(tmp_path, active=active, doctor_ok=doctor_ok, restarts=restarts)
    gate.store(age_s=verdict_age_s)
    done = gate.run()
    assert done.returncode == 1 and missing in done.stderr
    assert not gate.marked.exists()
