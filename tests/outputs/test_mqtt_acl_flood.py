"""``edgewatch run`` behind a real Mosquitto enforcing contrib/mosquitto/edgewatch.acl, with a local
cloud: an anonymous client changes nothing and costs nothing; a technician's flood of 1,000
commands costs at most the configured caps, and the process still ends promptly on SIGTERM."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.mosquitto import Mosquitto
from edge.escalation.local_server import LocalCloudServer
from edge.settings import ServiceSettings
from tests.conftest import REPO_ROOT, start_broker
from tests.outputs_support import Listener
from tests.service_support import DEMO_CONFIG
from tests.waiting import wait_until

ACL = REPO_ROOT / "contrib" / "mosquitto" / "edgewatch.acl"
USERS = {"edgewatch": "board-secret", "technician": "tech-secret"}
PER_MINUTE = 6
COMMANDS = ("check", "escalate", "acknowledge", "snooze", "maintenance")


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    passwords = tmp_path / "passwd"
    for number, (user, password) in enumerate(USERS.items()):
        subprocess.run(["mosquitto_passwd", "-b", *([] if number else ["-c"]), str(passwords), user, password],
                       check=True, capture_output=True)
    started = start_broker(tmp_path / "broker", listener_config=f"password_file {passwords}\nacl_file {ACL}\n")
    yield started
    started.stop()


def demo_config(tmp_path: Path, broker: Mosquitto, cloud: LocalCloudServer) -> Path:
    """examples/demo.yaml with MQTT (every command on, as the board user), escalation to the local cloud."""
    config: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text())
    config["state_dir"] = str(tmp_path / "state")
    config["model"]["bundle"] = str(DEMO_CONFIG.parent / config["model"]["bundle"])
    for asset in config["assets"]:
        for part in asset.get("cameras", []) + asset.get("sensors", []):
            part["path"] = str(DEMO_CONFIG.parent / part["path"])
    config["outputs"] = {"http": {"port": 0}, "mqtt": {
        "host": broker.host, "port": broker.port, "username": "edgewatch", "password": USERS["edgewatch"],
        "commands": list(COMMANDS), "commands_per_minute": PER_MINUTE, "reconnect_min_s": 0.2}}
    config["escalation"] = {"enabled": True, "base_url": cloud.url, "api_key_env": "EDGEWATCH_TEST_KEY",
                            "max_retries": 0}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def events(state: Path, action: str) -> int:
    path = state / "alerts.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM events WHERE action = ?", (action,)).fetchone()[0])


def asked_on_demand(cloud: LocalCloudServer) -> int:
    return sum("asked on demand" in request.text for request in cloud.completions())


def test_anonymous_clients_change_nothing_and_a_flood_costs_at_most_the_caps(
        tmp_path: Path, broker: Mosquitto, cloud: LocalCloudServer) -> None:
    config = demo_config(tmp_path, broker, cloud)
    state = tmp_path / "state"
    env = {**os.environ, "EDGEWATCH_TEST_KEY": "test-key"}
    env.pop("NOTIFY_SOCKET", None)
    board = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)], env=env, cwd="/",
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    technician = Listener(broker.host, broker.port, "edgewatch/_boards/+/availability",
                          auth=("technician", USERS["technician"]))
    anonymous = Listener(broker.host, broker.port, "edgewatch/+/alert")
    try:
        assert technician.wait("edgewatch/_boards/edgewatch-demo/availability", 60)[0] == b"online"
        for asset in ("press-1", "pump-1"):  # what the attacker sent, with no credentials
            anonymous.publish(f"edgewatch/{asset}/maintenance/set", b'{"on": true}')
            anonymous.publish(f"edgewatch/{asset}/snooze/set", b"604800")
            anonymous.publish(f"edgewatch/{asset}/escalate/set", b"PRESS")
        technician.publish("edgewatch/press-1/snooze/set", b'{"duration_s": 60, "by": "anna"}')
        assert wait_until(lambda: events(state, "snoozed") == 1, 30)  # handled after the anonymous ones
        assert events(state, "maintenance_started") == 0 and asked_on_demand(cloud) == 0

        started = time.monotonic()
        for index in range(1000):
            command = COMMANDS[index % len(COMMANDS)]
            payload = {"maintenance": b"ON" if index % 2 else b"OFF", "snooze": b"600"}.get(command, b"PRESS")
            technician.publish(f"edgewatch/{('press-1', 'pump-1')[index // 5 % 2]}/{command}/set", payload)
        flood_s = time.monotonic() - started
        # each asset takes at most PER_MINUTE of each command per minute; the flood took under a minute
        assert flood_s < 60
        cap = 2 * PER_MINUTE
        assert wait_until(lambda: events(state, "snoozed") == cap, 60), events(state, "snoozed")
        # escalations are sent in the background, after a check of the asset: wait for the first
        assert wait_until(lambda: asked_on_demand(cloud) >= 1, 60), "no on-demand escalation reached the cloud"
        time.sleep(3)  # any further ones the flood could have caused
        assert events(state, "snoozed") == cap
        assert events(state, "maintenance_started") + events(state, "maintenance_stopped") <= cap
        assert asked_on_demand(cloud) <= cap  # and each situation at most once per cool-down

        stop_started = time.monotonic()
        board.send_signal(signal.SIGTERM)
        code = board.wait(timeout=ServiceSettings().shutdown_grace_s + 30)
        assert code == 0 and time.monotonic() - stop_started < ServiceSettings().shutdown_grace_s + 30
    finally:
        if board.poll() is None:
            board.kill()
        _, errors = board.communicate(timeout=30)
        technician.close()
        anonymous.close()
    assert "Traceback" not in errors
    assert errors.count("more than 6 a minute") <= 2 * len(COMMANDS)  # one line per burst, not one per message
