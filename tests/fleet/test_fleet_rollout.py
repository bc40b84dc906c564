"""A fleet rollout end to end: a real mosquitto, a real HTTP server on 127.0.0.1 and three real
``edgewatch run`` processes on the demo bundle, driven by ``edgewatch fleet rollout``. The tests run
in order on one fleet: each starts where the one before left the boards."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.mosquitto import Mosquitto
from bench.ports import free_port
from edge.broker import make_client
from edge.fleet import link
from edge.fleet.layout import Layout
from edge.fleet.normal import kept_frames, normal_folder
from edge.fleet.release import desired_message, pack_release
from edge.fleet.rollout import TERMINAL, new_serial
from edge.outputs.config import MqttSettings
from tests.fleet_support import key_pair, release_folder, serving
from tests.service_support import DEMO_DIR

BOARDS = ("b1", "b2", "b3")  # b1 is the canary: the group's first board in the inventory
GROUP = "line-1"
WAIT_S = 90.0

CONFIG = """
site: {board}
state_dir: {state}
model:
  bundle: {state}/fleet/current/bundle
  threads: 1
  trusted_keys: [{public}]
assets:
  - id: press-1
    check_interval_s: 1
    cameras:
      - {{name: panel, type: folder, path: {frames}}}
    fusion:
      persistence: {{raise_after: 1, clear_after: 1}}
outputs:
  mqtt: {{host: 127.0.0.1, port: {port}, client_id: edgewatch-{board}, discovery_prefix: null}}
  http: {{port: {http_port}}}
fleet: {{enabled: true, board: {board}, group: {group}, health_window_s: 40, download_attempts: 2,
         keep_interval_s: 0, keep_min_confidence: 0.5, agreement_frames: {agreement_frames}}}
"""


@dataclass
class Watcher:
    """Every ``reported`` message in arrival order, from a connection of the test's own."""

    broker: Mosquitto
    seen: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = make_client(MqttSettings(host=self.broker.host, port=self.broker.port),
                                       f"test-watcher-{id(self)}")  # two with one id would knock each other off
        self.client.on_connect = lambda client, *_: client.subscribe(link.reported("edgewatch", "+"), qos=1)
        self.client.on_message = self._on_message
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self.lock:
            self.seen.append(json.loads(message.payload))

    def of(self, board: str) -> list[dict[str, Any]]:
        with self.lock:
            return [report for report in self.seen if report["board"] == board]

    def settled(self, board: str, version: str, boards: Fleet) -> dict[str, Any]:
        """The board's final report on ``version``, once this connection heard it (a moment after the rollout's)."""

        def final() -> list[dict[str, Any]]:
            return [r for r in self.of(board) if r["desired"] == version and r["state"] in TERMINAL]

        self.until(f"{board} settling on {version}", lambda: bool(final()), boards)
        return final()[-1]

    def until(self, what: str, found: Callable[[], bool], boards: Fleet) -> None:
        deadline = time.monotonic() + WAIT_S
        while not found():
            boards.check_alive()
            assert time.monotonic() < deadline, f"{what} did not happen within {WAIT_S} s: {self.seen[-6:]}"
            time.sleep(0.1)


@dataclass
class Fleet:
    root: Path
    broker: Mosquitto
    base_url: str
    key: Path
    public: Path
    first_message: bytes = b""  # the signed desired state of 1.0 the group started on
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    http_ports: dict[str, int] = field(default_factory=dict)

    def start(self, board: str) -> None:
        with (self.root / board / "stderr.log").open("ab") as log:
            self.processes[board] = subprocess.Popen(
                [sys.executable, "-m", "edge", "run", "--config", str(self.root / board / "edgewatch.yaml")],
                stderr=log, stdout=subprocess.DEVNULL)

    def state(self, board: str) -> Path:
        return self.root / board / "state"

    def log(self, board: str) -> str:
        return (self.root / board / "stderr.log").read_text(errors="replace")

    def check_alive(self) -> None:
        for board, process in self.processes.items():
            assert process.poll() is None, f"{board} exited:\n{self.log(board)[-3000:]}"

    def rollout(self, bundle: Path, version: str, overrides: str | None = None) -> subprocess.CompletedProcess[str]:
        extra: list[str] = []
        if overrides is not None:
            (self.root / f"overrides-{version}.yaml").write_text(overrides)
            extra = ["--config-overrides", str(self.root / f"overrides-{version}.yaml")]
        return subprocess.run(
            [sys.executable, "-m", "edge", "fleet", "rollout", "--bundle", str(bundle), "--version", version,
             "--key", str(self.key), "--publish-dir", str(self.root / "www"), "--base-url", self.base_url,
             "--inventory", str(self.root / "inventory.yaml"), "--group", GROUP, "--mqtt",
             str(self.root / "mqtt.yaml"), "--canary-timeout-s", str(WAIT_S), "--group-timeout-s", str(WAIT_S),
             *extra], capture_output=True, text=True, timeout=3 * WAIT_S)

    def metric(self, board: str, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_ports[board]}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} not exported by {board}")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    key, public = key_pair(root / "release.key")
    first = release_folder(root / "v1", key, "2026-11-01T00:00:00+00:00")
    broker = Mosquitto(root / "broker").start()
    (root / "www").mkdir()
    (root / "mqtt.yaml").write_text(f"host: 127.0.0.1\nport: {broker.port}\n")
    (root / "inventory.yaml").write_text("boards:\n" + "".join(
        f"  - {{name: {board}, host: 127.0.0.1, group: {GROUP}}}\n" for board in BOARDS))
    with serving(root / "www") as base_url:
        boards = Fleet(root, broker, base_url, root / "release.key", public)
        watcher = Watcher(broker)
        try:
            archive = pack_release(first, "1.0", root / "www")  # what the group runs: its desired state
            boards.first_message = desired_message("1.0", f"{base_url}/{archive.name}", archive, key, new_serial())
            watcher.client.publish(link.group_desired("edgewatch", GROUP), boards.first_message,
                                   qos=1, retain=True).wait_for_publish(5)
            for board in BOARDS:
                state = boards.state(board)
                Layout(state).install(first, "1.0")
                boards.http_ports[board] = free_port()
                config = root / board / "edgewatch.yaml"
                config.write_text(CONFIG.format(board=board, state=state, public=public, frames=DEMO_DIR / "frames",
                                                port=broker.port, group=GROUP, http_port=boards.http_ports[board],
                                                # the canary loads no new model before the switch: a broken
                                                # one reaches its health check
                                                agreement_frames=0 if board == "b1" else 4))
                boards.start(board)
            watcher.until("every board reporting 1.0 and keeping normal frames", lambda: all(
                any(r["running"] == "1.0" for r in watcher.of(board))
                and len(kept_frames(normal_folder(boards.state(board), "press-1"))) >= 4 for board in BOARDS), boards)
            yield boards
        finally:
            watcher.client.disconnect()
            watcher.client.loop_stop()
            for process in boards.processes.values():
                process.terminate()
            for process in boards.processes.values():
                process.wait(timeout=30)
            broker.stop()


@pytest.fixture()
def watcher(fleet: Fleet) -> Iterator[Watcher]:
    watching = Watcher(fleet.broker)
    yield watching
    watching.client.disconnect()
    watching.client.loop_stop()


def test_canary_first_then_the_group_and_a_broken_release_rolls_back_and_stops(fleet: Fleet, watcher: Watcher) -> None:
    key = _private(fleet)
    done = fleet.rollout(release_folder(fleet.root / "v2", key, "2026-12-01T00:00:00+00:00"), "2.0")
    assert done.returncode == 0, done.stdout + done.stderr
    for board in BOARDS:
        report = watcher.settled(board, "2.0", fleet)
        assert (report["running"], report["state"], report["reason"]) == ("2.0", "healthy", None)
        assert Layout(fleet.state(board)).running_version() == "2.0"
        agreed = "-" if board == "b1" else "4/4"
        assert f"{board:<20} {'2.0':<14} {'2.0':<14} {'healthy':<12} {agreed:<10}" in done.stdout
    canary_healthy = next(i for i, r in enumerate(watcher.seen)
                          if r["board"] == "b1" and r["desired"] == "2.0" and r["state"] == "healthy")
    first_other = next(i for i, r in enumerate(watcher.seen) if r["board"] != "b1" and r["desired"] == "2.0")
    assert canary_healthy < first_other  # the group heard of 2.0 only after the canary was healthy on it
    assert [r["state"] for r in watcher.of("b2") if r["desired"] == "2.0"][:3] == [
        "downloading", "verifying", "enrolling"]
    # the same model in both releases: it judges the kept normal frames alike
    assert watcher.settled("b2", "2.0", fleet)["agreement"] == {"press-1": {"frames": 4, "agreeing": 4, "ratio": 1.0}}
    assert watcher.settled("b1", "2.0", fleet)["agreement"] == {}

    broken = release_folder(fleet.root / "v3", key, "2026-12-02T00:00:00+00:00", model_bytes=b"not an onnx model")
    done = fleet.rollout(broken, "3.0")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "stopped: the canary b1 reported rolled_back" in done.stderr
    assert f"{'b1':<20} {'2.0':<14} {'3.0':<14} {'rolled_back':<12}" in done.stdout
    canary = watcher.settled("b1", "3.0", fleet)
    assert (canary["state"], canary["running"], canary["rollbacks"]) == ("rolled_back", "2.0", 1)
    assert "did not start" in canary["reason"]
    assert [r["state"] for r in watcher.of("b1") if r["desired"] == "3.0"] == [
        "downloading", "verifying", "enrolling", "switching", "rolled_back"]
    assert Layout(fleet.state("b1")).running_version() == "2.0"
    assert fleet.metric("b1", "edgewatch_rollbacks_total") == 1.0
    for board in ("b2", "b3"):  # the group never saw 3.0
        assert all(r["desired"] != "3.0" for r in watcher.of(board))
        assert Layout(fleet.state(board)).running_version() == "2.0"
    before = _verdict_count(fleet, "b1")  # the canary checks again, on 2.0
    watcher.until("a verdict after the rollback", lambda: _verdict_count(fleet, "b1") > before, fleet)


def test_a_tampered_bundle_and_a_foreign_signature_are_refused(fleet: Fleet, watcher: Watcher) -> None:
    key = _private(fleet)
    tampered = release_folder(fleet.root / "v4", key, "2026-12-03T00:00:00+00:00")
    model = bytearray((tampered / "image.onnx").read_bytes())
    model[-1] ^= 0xFF  # changed after the bundle was signed
    (tampered / "image.onnx").write_bytes(bytes(model))
    running = {board: Layout(fleet.state(board)).running_version() for board in BOARDS}
    done = fleet.rollout(tampered, "4.0")
    assert done.returncode == 1
    canary = watcher.settled("b1", "4.0", fleet)
    assert canary["state"] == "refused"
    # with its own topic cleared, the canary follows its group again: on the release it runs
    watcher.until("b1 back on its group's release", lambda: watcher.of("b1")[-1]["desired"] == running["b1"], fleet)
    assert watcher.of("b1")[-1]["state"] == "healthy"
    assert "image.onnx" in canary["reason"]
    assert not (fleet.state("b1") / "fleet" / "releases" / "4.0").exists()

    other = key_pair(fleet.root / "stranger.key")[0]
    archive = pack_release(fleet.root / "v1", "5.0", fleet.root / "www")
    watcher.client.publish(link.board_desired("edgewatch", "b3"),
                           desired_message("5.0", f"{fleet.base_url}/{archive.name}", archive, other, new_serial()),
                           qos=1, retain=True).wait_for_publish(5)
    refused = watcher.settled("b3", "5.0", fleet)
    assert refused["state"] == "refused" and "not trusted here" in refused["reason"]
    watcher.client.publish(link.board_desired("edgewatch", "b3"), b"", qos=1, retain=True).wait_for_publish(5)
    assert {board: Layout(fleet.state(board)).running_version() for board in BOARDS} == running
    assert all(r["state"] not in ("downloading", "switching") for r in watcher.of("b3") if r["desired"] == "5.0")


def test_a_replayed_older_message_is_refused_across_a_restart_and_a_deliberate_rollback_lands(
        fleet: Fleet, watcher: Watcher) -> None:
    """A stranger re-publishes the group's first signed message (1.0), retained, on the group's topic: every
    board refuses it, b3 again after a restart; the operator's rollback to 1.0 is a new message that every
    board takes, though each last reported 'refused' on 1.0."""
    running = Layout(fleet.state("b3")).running_version()
    assert running != "1.0"
    highest = Layout(fleet.state("b3")).load().serial
    old_serial = json.loads(fleet.first_message)["serial"]
    watcher.client.publish(link.group_desired("edgewatch", GROUP), fleet.first_message, qos=1,
                           retain=True).wait_for_publish(5)
    for board in BOARDS:
        refused = watcher.settled(board, "1.0", fleet)
        assert (refused["state"], refused["running"], refused["desired_serial"]) == ("refused", running, old_serial)
        assert "an older message replayed" in refused["reason"] and "--version 1.0" in refused["reason"]
    assert watcher.settled("b3", "1.0", fleet)["serial"] == highest

    fleet.processes["b3"].terminate()
    fleet.processes["b3"].wait(timeout=30)
    restarted_at = time.time()
    fleet.start("b3")  # the replay is still retained: the broker hands it over again
    watcher.until("b3 refusing the replay again after its restart", lambda: any(
        r["at"] > restarted_at and r["desired"] == "1.0" and r["state"] == "refused" for r in watcher.of("b3")),
        fleet)
    for board in BOARDS:
        assert Layout(fleet.state(board)).running_version() == running
        assert all(r["state"] not in ("downloading", "switching") for r in watcher.of(board) if r["desired"] == "1.0")

    done = fleet.rollout(fleet.root / "v1", "1.0")
    assert done.returncode == 0, done.stdout + done.stderr
    for board in BOARDS:
        watcher.until(f"{board} healthy on the new 1.0 message", lambda board=board: any(
            r["desired"] == "1.0" and r["state"] == "healthy" and r["desired_serial"] > highest
            for r in watcher.of(board)), fleet)
        assert Layout(fleet.state(board)).running_version() == "1.0"


def test_config_rollouts_land_are_refused_by_the_schema_or_roll_back_on_the_health_check(
        fleet: Fleet, watcher: Watcher) -> None:
    """The same bundle with config overrides: one that lands on the group, one the schema refuses before
    the switch, one that passes the schema but leaves no verdict within the health window."""
    interval = 'edgewatch_check_interval_seconds{asset="press-1"}'
    bundle = fleet.root / "v1"
    done = fleet.rollout(bundle, "1.0-c1", "assets: {press-1: {check_interval_s: 2}}\n")
    assert done.returncode == 0, done.stdout + done.stderr
    for board in BOARDS:
        assert watcher.settled(board, "1.0-c1", fleet)["state"] == "healthy"
        assert fleet.metric(board, interval) == 2.0  # the service runs on the overridden config
        assert (fleet.state(board) / "fleet" / "current" / "overrides.yaml").is_file()

    rollbacks = Layout(fleet.state("b1")).load().rollbacks
    done = fleet.rollout(bundle, "1.0-c2", "assets: {press-1: {fusion: {fault_threshold: 1.5}}}\n")
    assert done.returncode == 1
    canary = watcher.settled("b1", "1.0-c2", fleet)
    assert canary["state"] == "refused" and "fusion.fault_threshold" in canary["reason"]
    assert [r["state"] for r in watcher.of("b1") if r["desired"] == "1.0-c2"] == [
        "downloading", "verifying", "refused"]  # never switched
    assert not Layout(fleet.state("b1")).release("1.0-c2").exists()
    assert fleet.metric("b1", interval) == 2.0

    done = fleet.rollout(bundle, "1.0-c3", "assets: {press-1: {check_interval_s: 3600}}\n")
    assert done.returncode == 1
    canary = watcher.settled("b1", "1.0-c3", fleet)
    assert (canary["state"], canary["running"], canary["rollbacks"]) == ("rolled_back", "1.0-c1", rollbacks + 1)
    assert "no verdict with a scored frame within 40 s" in canary["reason"]
    assert Layout(fleet.state("b1")).running_version() == "1.0-c1"
    watcher.until("b1 checking every 2 s again", lambda: _serving(fleet, "b1", interval) == 2.0, fleet)
    for board in ("b2", "b3"):  # the group never saw either
        assert all(r["desired"] not in ("1.0-c2", "1.0-c3") for r in watcher.of(board))


def _serving(fleet: Fleet, board: str, name: str) -> float | None:
    """The metric, or None while the service is being built again after a reload."""
    try:
        return fleet.metric(board, name)
    except OSError:
        return None


def _private(fleet: Fleet) -> Any:
    from edge.bundle.signing import load_private_key

    return load_private_key(fleet.key)


def _verdict_count(fleet: Fleet, board: str) -> int:
    import sqlite3

    db = sqlite3.connect(fleet.state(board) / "history.sqlite3")
    try:
        return int(db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])
    finally:
        db.close()
