"""A/B system updates end to end under emulation: U-Boot, RAUC, the health gate and the data partition.

The suite's run (CI) builds the A/B image and boots slot A until its health gate marks it good;
the updates after it carry the marker ``ab`` (about 14 minutes more): the whole chain is
``pytest -m board tests/board/test_board_ab_boot.py``.
One image and one guest for the module; the tests run in order, each leaving the board running:
slot A boots and is marked good; a good bundle moves it to slot B with the history kept; a power
cut in the middle of an install still boots the good slot; a bundle whose service fails at start is
tried three times and the board goes back to B on its own, which notes the rollback on /metrics
(last: it takes four boots). The update
roots are slot A's file system with one file changed (edge/__init__.py: the version, or a SystemExit
at import), made with debugfs, not by a second build. Figures go to the test's output.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from board import bundle
from board.qemu import Console
from board.uboot import UBootMachine
from tests.board_ab_support import VERSION_FILE, Pki, build_ab_image, changed_root, make_pki
from tests.board_support import REPO_ROOT, TOKEN

pytestmark = pytest.mark.board

BOOT_TIMEOUT_S = 900.0
INSTALL_TIMEOUT_S = 1200.0
ROLLBACK_TIMEOUT_S = 2400.0  # three failing boots of the bad slot, then the good one
COMMAND_TIMEOUT_S = 300.0
SLOT = re.compile(r"Found valid RAUC slot (A|B)")
NEW_VERSION = "0.1.1+ab-test"


class Board:
    """The guest on its U-Boot; ``console`` is replaced after a power cut."""

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

    def reboot(self, timeout_s: float = BOOT_TIMEOUT_S) -> str:
        since = len(self.console.text)
        self.console.shell("systemctl reboot", 60)
        self.booted_slot = self.wait_boot(since, timeout_s)
        return self.booted_slot

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

    def fetch(self, path: str) -> bytes:
        """``path`` of the board's HTTP API, with its token, through the forwarded port."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.machine.port}{path}",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            return bytes(reply.read())

    def get(self, path: str) -> dict[str, object]:
        return dict(json.loads(self.fetch(path)))

    def metric(self, name: str) -> float:
        """One unlabelled sample of the board's /metrics."""
        found = re.search(rf"^{re.escape(name)} (\S+)$", self.fetch("/metrics").decode(), re.MULTILINE)
        assert found, f"{name} is not on /metrics"
        return float(found[1])

    def verdict_ids(self) -> set[int]:
        return {int(v["id"]) for v in self.get("/api/verdicts?limit=1000")["verdicts"]}  # type: ignore[attr-defined]

    def mount_bundles(self) -> None:
        """The second disk, holding the bundles, on /run/bundles."""
        self.sh("mkdir -p /run/bundles; mountpoint -q /run/bundles || mount -o ro /dev/vdb /run/bundles")

    def install(self, name: str) -> float:
        start = time.monotonic()
        self.mount_bundles()
        self.sh(f"rauc install /run/bundles/{name}", INSTALL_TIMEOUT_S)
        return time.monotonic() - start


def media(folder: Path, image: Path, pki: Pki) -> Path:
    """An ext4 disk holding the good and the bad bundle, both cut from slot A of ``image``."""
    init = (REPO_ROOT / "edge/__init__.py").read_text(encoding="utf-8")
    assert '__version__ = "' in init
    good = re.sub(r'__version__ = "[^"]*"', f'__version__ = "{NEW_VERSION}"', init)
    bad = init + '\nraise SystemExit("this build fails at start")\n'
    bundles = folder / "bundles"
    bundles.mkdir(parents=True)
    for name, text in (("good", good), ("bad", bad)):
        root = changed_root(image, folder / f"{name}.ext4", VERSION_FILE, text)
        bundle.sign(root, pki.key, pki.cert, bundles / f"{name}.raucb", f"{name}-{NEW_VERSION}", compression="lz4")
    out = folder / "bundles.ext4"
    size_kib = sum(p.stat().st_size for p in bundles.iterdir()) // 1024 + 65536
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(bundles), str(out), f"{size_kib}k"], check=True)
    for item in bundles.iterdir():
        item.unlink()
    return out


@pytest.fixture(scope="module")
def board(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    work = tmp_path_factory.mktemp("ab")
    pki = make_pki(work / "pki")
    start = time.monotonic()
    built, port = build_ab_image(work, pki)
    print(f"\nA/B image built in {time.monotonic() - start:.0f} s: {built.seconds}")
    disk = None
    if any(item.get_closest_marker("ab") for item in request.session.items if item.module is request.module):
        start = time.monotonic()  # the bundles only when an update test runs (the suite's run boots slot A only)
        disk = media(work / "media", built.image, pki)
        print(f"two bundles signed in {time.monotonic() - start:.0f} s")
    guest = Board(UBootMachine(built.image, port, media=disk), work / "serial.log")
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


@pytest.mark.ab
def test_good_bundle_moves_to_slot_b_and_keeps_the_history(board: Board) -> None:
    board.wait_gate()  # slot A confirmed first (at once when the test above ran)
    before = board.verdict_ids()
    seconds = board.install("good.raucb")
    print(f"good bundle installed in {seconds:.0f} s")
    assert board.env()["BOOT_ORDER"].startswith("B")
    start = time.monotonic()
    assert board.reboot() == "B"
    board.wait_gate()
    print(f"reboot into B to its health gate passing: {time.monotonic() - start:.0f} s")
    slots = board.rauc_status()
    assert slots["B"]["state"] == "booted" and slots["B"]["boot_status"] == "good"
    assert board.env()["BOOT_B_LEFT"] == "3"
    assert board.get("/healthz")["version"] == NEW_VERSION
    assert before <= board.verdict_ids(), "verdicts from slot A are gone"


@pytest.mark.ab
def test_power_cut_during_an_install_still_boots_the_good_slot(board: Board) -> None:
    board.mount_bundles()
    board.sh("(rauc install /run/bundles/good.raucb > /dev/null 2>&1 &)")
    deadline = time.monotonic() + INSTALL_TIMEOUT_S
    operation = "busctl get-property de.pengutronix.rauc / de.pengutronix.rauc.Installer Operation || true"
    while "installing" not in board.sh(operation):
        assert time.monotonic() < deadline, "the install never started"
        board.sh("sleep 1")
    board.sh("sleep 5")
    board.console.power_cut()
    start = time.monotonic()
    board.console = Console(board.machine, board.transcript)
    assert board.wait_boot(0) == "B"
    board.wait_gate()
    print(f"power on after the cut to B's health gate passing: {time.monotonic() - start:.0f} s")
    assert board.rauc_status()["B"]["boot_status"] == "good"


@pytest.mark.ab
def test_bad_bundle_runs_out_of_tries_and_the_good_slot_comes_back(board: Board) -> None:
    board.install("bad.raucb")
    start = time.monotonic()
    since = len(board.console.text)
    board.console.shell("systemctl reboot", 60)
    picks = []
    while (slot := board.wait_boot(since, ROLLBACK_TIMEOUT_S)) == "A":
        picks.append(slot)
        since = board.console.text.rindex("Found valid RAUC slot") + 1
        assert len(picks) <= 3, "slot A booted a fourth time"
    board.booted_slot = slot
    print(f"bad slot tried {len(picks)} times, back on B after {time.monotonic() - start:.0f} s")
    assert picks == ["A", "A", "A"] and slot == "B"
    board.wait_gate()
    assert board.rauc_status()["A"]["boot_status"] == "bad"
    assert "ROLLBACK: slot A is marked bad" in board.sh("journalctl -b -u edgewatch-health-gate --no-pager")
    assert board.metric("edgewatch_system_rollbacks_total") == 1.0
    assert board.get("/healthz")["version"] == NEW_VERSION
