"""The A/B image under emulation: U-Boot as qemu's firmware picks slot A, edgewatch starts from it with its
state on the data partition, and the health gate marks the slot good through RAUC (which rewrites
U-Boot's counter in uboot.env with fw_setenv). Figures go to the test's output.

Installing bundles in the guest (good one, bad one rolled back, power cut during an install) is not
covered here yet.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from board.qemu import Console
from board.uboot import UBootMachine
from tests.board_ab_support import build_ab_image, make_pki
from tests.board_support import TOKEN

pytestmark = [pytest.mark.board, pytest.mark.ab]

BOOT_TIMEOUT_S = 900.0
COMMAND_TIMEOUT_S = 300.0
SLOT = re.compile(r"Found valid RAUC slot (A|B)")


class Board:
    """The guest on its U-Boot, logged in on the serial console."""

    def __init__(self, machine: UBootMachine, transcript: Path) -> None:
        self.machine, self.transcript = machine, transcript
        self.console = Console(machine, transcript)
        self.booted_slot = self.wait_boot(0)

    def wait_boot(self, since: int, timeout_s: float = BOOT_TIMEOUT_S) -> str:
        """The slot U-Boot chose after offset ``since``, once its root shell is up."""
        found = self.console.wait_for(SLOT, timeout_s, since)
        start = time.monotonic()
        self.console.login(timeout_s, since=found.end())
        print(f"\nslot {found[1]}: U-Boot's choice to the serial shell in {time.monotonic() - start:.0f} s")
        return found[1]

    def sh(self, command: str, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        status, output = self.console.shell(command, timeout_s)
        assert status == 0, f"'{command}' exited {status} in the guest: {output}"
        return output

    def wait_gate(self, timeout_s: float = BOOT_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while (state := self.sh("systemctl show -p ActiveState --value edgewatch-health-gate").strip()) != "active":
            assert state in ("activating", "inactive", ""), \
                f"health gate {state}: {self.sh('journalctl -b -u edgewatch-health-gate --no-pager | tail -20')}"
            assert time.monotonic() < deadline, f"health gate still {state} after {timeout_s:.0f} s"
            self.sh("sleep 5")

    def rauc_status(self) -> dict[str, dict[str, str]]:
        status = json.loads(self.sh("rauc status --output-format=json 2>/dev/null"))
        return {s["bootname"]: s for item in status["slots"] for s in item.values()}

    def env(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.sh("fw_printenv").splitlines())

    def verdict_ids(self) -> set[int]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.machine.port}/api/verdicts?limit=1000",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            return {int(v["id"]) for v in json.load(reply)["verdicts"]}


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    work = tmp_path_factory.mktemp("ab")
    start = time.monotonic()
    built, port = build_ab_image(work, make_pki(work / "pki"))
    print(f"\nA/B image built in {time.monotonic() - start:.0f} s: {built.seconds}")
    guest = Board(UBootMachine(built.image, port), work / "serial.log")
    yield guest
    guest.console.poweroff(120)


def test_slot_a_boots_and_is_marked_good(board: Board) -> None:
    assert board.booted_slot == "A"
    start = time.monotonic()
    board.wait_gate()
    print(f"health gate passed {time.monotonic() - start:.0f} s after the shell came up")
    slots = board.rauc_status()
    assert slots["A"]["state"] == "booted" and slots["A"]["boot_status"] == "good"
    assert board.env()["BOOT_A_LEFT"] == "3"  # mark-good gave the tries back
    assert board.sh("findmnt -n -o SOURCE /var/lib/edgewatch").strip().endswith("[/edgewatch]")
    assert board.verdict_ids()
