"""Boot the arm64 image under qemu-system-aarch64 and watch edgewatch run under a real systemd.

One guest for the module; the tests run in order (start, watchdog, verdicts, stop, kill -9,
power cut, then kernel-emulated hardware under the unit: a camera, a sound card and an I2C chip,
with and without the device drop-in, and ``doctor --as-service``), each leaving the service
running for the next. Figures go to the test's output.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from board.build import Built
from board.qemu import Console, Machine
from tests.board_support import TMP117_ADDRESS, TMP117_C, TOKEN

pytestmark = pytest.mark.board

BOOT_TIMEOUT_S = 900.0  # TCG on two shared cores: the kernel, systemd and a first Python start
COMMAND_TIMEOUT_S = 300.0
CONFIG = "/etc/edgewatch/config.yaml"
EDGEWATCH = "/opt/edgewatch/bin/edgewatch"
DROPIN = "/etc/systemd/system/edgewatch.service.d/devices.conf"
# Debian's arm64 kernel modules: a V4L2 test-pattern camera, a loopback sound card, I2C's character devices;
# i2c-stub (not in Debian's arm64 kernel) was built for the image's kernel and installed under updates/
RIG_MODULES = ("vivid n_devs=1", "snd-aloop", "i2c-dev")
I2C_STUB = f"insmod /lib/modules/$(uname -r)/updates/i2c-stub.ko chip_addr={TMP117_ADDRESS:#x}"
# The TMP117's 16-bit registers as its I2C reads see them, high byte first: the temperature and the device id
TMP117_REGISTERS = {0x00: round(TMP117_C / 0.0078125), 0x0F: 0x0117}
# the device cgroup's EPERM, or EACCES first where the node's group (i2c) is gone with the drop-in
I2C_DENIED = re.compile(r"cannot open /dev/i2c-0: \[Errno (1|13)\] (Operation not permitted|Permission denied)")
FEEDER = "while :; do aplay -q -D hw:Loopback,0,0 /etc/edgewatch/rig/feed.wav; done"
DENIED = re.compile(r"permission denied|operation not permitted|EACCES|PermissionError|Traceback|audit",
                    re.IGNORECASE)


class Guest:
    """The running VM, replaced by a new one after the power cut."""

    def __init__(self, built: Built, port: int, transcript: Path) -> None:
        self.machine = Machine(built.image, built.kernel, built.initrd, port)
        self.port = port
        self.transcript = transcript
        self.console = self.boot()

    def boot(self) -> Console:
        console = Console(self.machine, self.transcript)
        seconds = console.login(BOOT_TIMEOUT_S)
        print(f"\nboot to the serial shell: {seconds:.0f} s wall clock")
        return console

    def sh(self, command: str, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        status, output = self.console.shell(command, timeout_s)
        assert status == 0, f"'{command}' exited {status} in the guest: {output}"
        return output

    def prop(self, name: str) -> str:
        return self.sh(f"systemctl show -p {name} --value edgewatch.service").strip()

    def wait_active(self, timeout_s: float = BOOT_TIMEOUT_S) -> None:
        """Type=notify: 'active' only once the service sent READY=1."""
        deadline = time.monotonic() + timeout_s
        while (state := self.prop("ActiveState")) != "active":
            assert state in ("activating", "inactive", "deactivating", ""), \
                f"edgewatch.service is {state}: {self.sh('journalctl -b -u edgewatch --no-pager | tail -30')}"
            assert time.monotonic() < deadline, f"edgewatch.service still {state} after {timeout_s:.0f} s"
            self.sh("sleep 2")

    def api_verdict_ids(self) -> set[int]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/verdicts?limit=1000",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            return {int(v["id"]) for v in json.load(reply)["verdicts"]}

    def wait_verdicts(self, at_least: int, timeout_s: float = COMMAND_TIMEOUT_S) -> set[int]:
        deadline = time.monotonic() + timeout_s
        while len(ids := self.api_verdict_ids()) < at_least:
            assert time.monotonic() < deadline, f"only {len(ids)} verdicts after {timeout_s:.0f} s"
            self.sh("sleep 2")
        return ids


@pytest.fixture(scope="module")
def guest(board_image: tuple[Built, int], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    built, port = board_image
    print(f"\nimage {built.image.stat().st_size / 2**20:.0f} MiB; build steps (s): {built.seconds}")
    guest = Guest(built, port, tmp_path_factory.mktemp("console") / "serial.log")
    yield guest
    guest.console.poweroff(120)


def test_service_starts_as_edgewatch_with_its_hardening(guest: Guest) -> None:
    guest.wait_active()
    ready_s = int(guest.prop("ActiveEnterTimestampMonotonic")) / 1e6
    print(f"boot to READY=1 (kernel start to active, guest clock): {ready_s:.1f} s")
    pid = guest.prop("MainPID")
    assert guest.sh(f"stat -c %U /proc/{pid}").strip() == "edgewatch"  # the owner of /proc/PID is its user
    allowed = guest.prop("DeviceAllow")  # the demo uses no device: only ProtectClock's own char-rtc
    assert guest.prop("DevicePolicy") == "closed" and "video4linux" not in allowed and "alsa" not in allowed
    assert "devices.conf" in guest.prop("DropInPaths")
    journal = guest.sh("journalctl -b -u edgewatch.service --no-pager -o short-monotonic")
    print("journal of a clean start:\n" + journal)
    assert "Started edgewatch.service" in journal or "Started edgewatch" in journal
    assert not DENIED.search(journal), "the hardened unit hit a denial:\n" + journal
    assert guest.prop("NRestarts") == "0"


def test_watchdog_is_fed(guest: Guest) -> None:
    assert guest.prop("WatchdogUSec") == "1min"
    first = int(guest.prop("WatchdogTimestampMonotonic"))
    deadline = time.monotonic() + 120
    while int(guest.prop("WatchdogTimestampMonotonic")) == first:
        assert time.monotonic() < deadline, "no WATCHDOG=1 reached systemd within 120 s (WatchdogSec=60)"
        guest.sh("sleep 5")


def test_verdicts_reach_the_api_and_history(guest: Guest) -> None:
    api_ids = guest.wait_verdicts(at_least=3)
    printed = guest.sh("runuser -u edgewatch -- /opt/edgewatch/bin/edgewatch history "
                       "--config /etc/edgewatch/config.yaml --limit 1000 --json")
    stored = json.loads(printed[printed.index("["):])
    history_ids = {int(item["id"]) for item in stored}
    assert api_ids <= history_ids
    assert {item["asset"] for item in stored} == {"press-1", "pump-1"}


def test_the_venv_is_whole_and_reinstalls_offline(guest: Guest) -> None:
    """pip agrees with the host-built venv, and the image's wheelhouse resolves edgewatch with no network."""
    assert "No broken requirements" in guest.sh("/opt/edgewatch/bin/pip check")
    house = "/var/cache/edgewatch/wheelhouse"
    plan = guest.sh(f"/opt/edgewatch/bin/pip install --no-index --find-links {house} -c {house}/constraints.txt "
                    "--dry-run --force-reinstall --disable-pip-version-check 'edgewatch[cloud,mqtt]'", 600)
    assert "Would install" in plan and "edgewatch-0" in plan, plan


def test_systemctl_stop_is_clean(guest: Guest) -> None:
    guest.sh("systemctl stop edgewatch.service")
    assert guest.prop("Result") == "success"
    assert guest.prop("ExecMainStatus") == "0"
    journal = guest.sh("journalctl -b -u edgewatch.service --no-pager -o cat | tail -5")
    assert "Deactivated successfully" in journal or "Stopped edgewatch" in journal
    guest.sh("systemctl start edgewatch.service")
    guest.wait_active()


def test_kill_9_is_restarted_and_loses_nothing(guest: Guest) -> None:
    committed = guest.wait_verdicts(at_least=len(guest.api_verdict_ids()) + 1)
    pid = guest.prop("MainPID")
    guest.sh(f"kill -9 {pid}")
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while guest.prop("NRestarts") == "0" or guest.prop("MainPID") in ("0", pid):
        assert time.monotonic() < deadline, "systemd did not restart edgewatch after kill -9"
        guest.sh("sleep 2")
    guest.wait_active()
    assert committed <= guest.api_verdict_ids()


def test_power_cut_loses_no_committed_verdict(guest: Guest) -> None:
    committed = guest.wait_verdicts(at_least=len(guest.api_verdict_ids()) + 1)
    guest.console.power_cut()
    guest.console = guest.boot()
    guest.wait_active()  # nobody starts it: enabled at boot
    assert committed <= guest.api_verdict_ids()
    boots = guest.sh("journalctl --list-boots --no-pager")
    assert len([line for line in boots.splitlines() if re.match(r"\s*-?\d+ ", line)]) >= 2, boots


def rig_verdicts(guest: Guest) -> list[dict]:
    printed = guest.sh(f"runuser -u edgewatch -- {EDGEWATCH} history --config {CONFIG} --asset rig-1 --json")
    return list(json.loads(printed[printed.index("["):]))


def rig_evidence(guest: Guest) -> dict[str, dict]:
    """The newest evidence of each rig-1 source (the camera's vision evidence, vibration:drive_end)."""
    newest: dict[str, dict] = {}
    for verdict in reversed(rig_verdicts(guest)):  # oldest first: newer ones overwrite
        newest.update({item["source"]: item for item in verdict["evidence"]})
    return newest


@pytest.fixture(scope="module")
def rig(guest: Guest) -> Iterator[None]:
    """The emulated devices loaded, the CWRU record playing into the loopback, and the rig-1 asset added to
    the config with its device drop-in written by install-service."""
    guest.console.shell("systemctl is-system-running --wait", BOOT_TIMEOUT_S)  # boot messages off the console
    for module in RIG_MODULES:
        guest.sh(f"modprobe {module}")
    guest.sh(I2C_STUB)
    guest.sh("udevadm settle")
    assert guest.sh("cat /sys/bus/i2c/devices/i2c-0/name").strip() == "SMBus stub driver"
    for register, word in TMP117_REGISTERS.items():
        guest.sh(f"i2cset -y 0 {TMP117_ADDRESS:#x} {register:#x} {word >> 8:#x} {word & 0xFF:#x} i")
    guest.sh(f"systemd-run --unit=rig-feeder sh -c '{FEEDER}'")
    guest.sh(f"cp /etc/edgewatch/rig/config.yaml {CONFIG}")  # the demo config plus rig-1
    installed = guest.sh(f"{EDGEWATCH} install-service --config {CONFIG}")
    print("install-service for the rig:\n" + installed)
    guest.sh("systemctl restart edgewatch.service")
    guest.wait_active()
    yield
    guest.sh("systemctl stop rig-feeder.service")


def test_emulated_devices_reach_the_verdict_under_the_unit(guest: Guest, rig: None) -> None:
    dropin = guest.sh(f"cat {DROPIN}")
    for line in ("DeviceAllow=char-video4linux rw", "DeviceAllow=char-alsa rw", "DeviceAllow=char-i2c rw",
                 "SupplementaryGroups=audio i2c video"):
        assert line in dropin, dropin
    deadline = time.monotonic() + 2 * COMMAND_TIMEOUT_S
    while True:
        evidence = rig_evidence(guest)
        vibration = evidence.get("vibration:drive_end", {})
        camera = [item for item in evidence.values() if item["kind"] == "vision"]
        temperature = evidence.get("temperature:bearing", {}).get("values", {})
        read = [value for key, value in temperature.items() if key.startswith("value")]
        if vibration.get("fault_type") == "outer_race" and camera and read:
            assert read[0] == pytest.approx(TMP117_C), temperature  # the register map, read through i2c-stub
            break
        assert time.monotonic() < deadline, f"rig-1 evidence after {2 * COMMAND_TIMEOUT_S:.0f} s: {evidence}"
        guest.sh("sleep 5")
    journal = guest.sh("journalctl -b -u edgewatch.service --no-pager -o cat --since -10min")
    assert not DENIED.search(journal), "the unit with the drop-in hit a denial:\n" + journal


def doctor_as_service(guest: Guest) -> tuple[int, str]:
    """Its exit status and table. systemd-run given the console as a terminal turns its echo back on, which
    the scripted shell cannot have: the doctor gets no terminal, and the echo is turned off again anyway."""
    status, table = guest.console.shell(f"({EDGEWATCH} doctor --as-service --config {CONFIG} </dev/null "
                                        ">/tmp/doctor.txt 2>&1; status=$?; cat /tmp/doctor.txt; exit $status)",
                                        COMMAND_TIMEOUT_S)
    guest.sh("stty -echo")
    print(f"doctor --as-service (exit {status}):\n{table}")
    return status, table


def doctor_row(table: str, check: str) -> str:
    return next((line for line in table.splitlines() if line.startswith(check + " ")), f"no {check} row:\n{table}")


def test_without_the_drop_in_the_same_devices_are_denied(guest: Guest, rig: None) -> None:
    since = guest.sh("date +%s").strip()
    guest.sh(f"mv {DROPIN} /root/devices.conf && systemctl daemon-reload && systemctl restart edgewatch.service")
    try:
        allowed = guest.prop("DeviceAllow")
        assert "video4linux" not in allowed and "alsa" not in allowed and "i2c" not in allowed
        deadline = time.monotonic() + 2 * COMMAND_TIMEOUT_S
        while not (I2C_DENIED.search(journal := guest.sh(f"journalctl -u edgewatch.service --no-pager -o cat "
                                                         f"--since @{since}"))
                   and re.search(r"operation not permitted|permission denied", I2C_DENIED.sub("", journal),
                                 re.IGNORECASE)):
            assert time.monotonic() < deadline, "no denial of the camera or the sound card and the I2C bus:\n" + journal
            guest.sh("sleep 5")
        print("journal without the drop-in:\n" + journal)
        assert guest.prop("ActiveState") == "active"  # a bus it may not open is one unhealthy sensor, not a crash
        status, table = doctor_as_service(guest)  # the service holds no device now: no need to stop it
        row = doctor_row(table, "sensor rig-1/bearing")
        assert status == 1 and " FAIL " in row and I2C_DENIED.search(row), table
        assert "DeviceAllow=char-i2c rw" in row and "SupplementaryGroups=i2c" in row, row
    finally:
        guest.sh(f"mv /root/devices.conf {DROPIN} && systemctl daemon-reload && systemctl restart edgewatch.service")


def test_doctor_as_service_passes_with_the_drop_in(guest: Guest, rig: None) -> None:
    guest.sh("systemctl stop edgewatch.service")  # the camera and the sound card take one reader at a time
    try:
        status, table = doctor_as_service(guest)
    finally:
        guest.sh("systemctl start edgewatch.service")
    assert status == 0, table
    for check in ("camera rig-1/vivid", "sensor rig-1/drive_end", "sensor rig-1/bearing"):
        assert doctor_row(table, check).split()[2] == "PASS", table
    assert f"{TMP117_C:g} degC" in doctor_row(table, "sensor rig-1/bearing")
