"""MQTT sink and Home Assistant discovery against a real Mosquitto broker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from bench.samples import asset, verdict
from edge.errors import ConfigError
from edge.evidence import Condition
from edge.outputs.config import MqttSettings
from edge.outputs.mqtt import MqttSink
from tests.conftest import REPO_ROOT, start_broker
from tests.outputs_support import Listener
from tests.waiting import wait_until

ASSETS = [asset("press-1", "Hydraulic press 1"), asset("pump-2", "")]


def settings(host: str, port: int, **extra: object) -> MqttSettings:
    return MqttSettings.model_validate({"host": host, "port": port, "reconnect_min_s": 0.1,
                                        "reconnect_max_s": 0.5, **extra})


class Commands:
    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self.arrived = threading.Event()

    def __call__(self, asset_id: str, command: str) -> None:
        self.received.append((asset_id, command))
        self.arrived.set()


@pytest.fixture()
def topic_prefix(request: pytest.FixtureRequest) -> str:
    """A prefix per test: the shared broker keeps retained messages between tests."""
    return f"ew-{request.node.name.replace('_', '-')[:40]}"


@pytest.fixture()
def sink(mqtt_broker: tuple[str, int], topic_prefix: str) -> Iterator[tuple[MqttSink, Commands]]:
    commands = Commands()
    mqtt = MqttSink(settings(*mqtt_broker, topic_prefix=topic_prefix, discovery_prefix=f"{topic_prefix}-ha",
                             commands=["check", "escalate"]), ASSETS, commands, site="test site")
    yield mqtt, commands
    mqtt.close()


def test_verdict_state_and_sensor_messages_arrive(mqtt_broker: tuple[str, int], sink, topic_prefix: str) -> None:
    mqtt, _ = sink
    listener = Listener(*mqtt_broker, f"{topic_prefix}/#")
    mqtt.start()
    assert mqtt.wait_connected(5)
    assert listener.wait(f"{topic_prefix}/_boards/edgewatch-test-site/availability")[0] == b"online"

    mqtt.publish(verdict("press-1", Condition.WARNING, 0.82, velocity_rms_mm_s=float("nan")))
    message = listener.wait_json(f"{topic_prefix}/press-1/verdict")
    assert message["asset"] == "press-1" and message["verdict"] == "warning"
    assert message["evidence"][1]["values"]["velocity_rms_mm_s"] is None  # NaN is not JSON: null
    sensors = listener.wait_json(f"{topic_prefix}/press-1/sensors/drive_end")
    assert sensors["healthy"] is True and sensors["kurtosis"] == 4.2 and "iso_zone" not in sensors
    listener.close()

    # A subscriber arriving later still gets the retained state.
    late = Listener(*mqtt_broker, f"{topic_prefix}/press-1/state")
    payload, retained = late.wait(f"{topic_prefix}/press-1/state")
    state = json.loads(payload)
    assert retained and state["verdict"] == "warning" and state["needs_attention"] is True
    assert state["confidence"] == 0.82 and state["checked_at"].startswith("2026-09-21T")
    late.close()


def test_discovery_configs_have_the_keys_home_assistant_requires(
    mqtt_broker: tuple[str, int], sink, topic_prefix: str
) -> None:
    mqtt, _ = sink
    discovery = f"{topic_prefix}-ha"
    listener = Listener(*mqtt_broker, f"{discovery}/#", f"{topic_prefix}/+/state", f"{topic_prefix}/+/sensors/+")
    mqtt.start()
    mqtt.publish(verdict("press-1", Condition.FAULT, 0.91))
    found = listener.collect()
    configs = {topic: json.loads(payload) for topic, payload in found.items() if topic.startswith(discovery)}
    # 6 fixed entities per asset, plus the 2 unit-carrying features of press-1 once its sensors reported
    assert len(configs) == 2 * 6 + 2
    availability = f"{topic_prefix}/_boards/edgewatch-test-site/availability"
    unique_ids = set()
    for topic, config in configs.items():
        prefix, component, node, _object, tail = topic.split("/")
        assert (prefix, tail) == (discovery, "config") and component in {"sensor", "binary_sensor", "button"}
        assert {"name", "unique_id", "availability", "device"} <= config.keys()
        assert config["availability"] == [{"topic": availability}]
        assert config["device"]["identifiers"] == [node]
        unique_ids.add(config["unique_id"])
        if component == "button":
            assert config["command_topic"].endswith(("/check/set", "/escalate/set"))
        else:
            assert config["state_topic"].startswith(f"{topic_prefix}/") and "value_template" in config
        if config.get("device_class") == "enum":
            assert config["options"] == ["ok", "warning", "fault"]
    assert len(unique_ids) == len(configs)
    names = {c["device"]["name"] for c in configs.values()}
    assert names == {"Hydraulic press 1", "pump-2"}  # the id when the asset has no name

    # Render each template the way Home Assistant does, on the payload its state topic carries.
    rendered = {}
    for config in configs.values():
        if "state_topic" in config and config["state_topic"] in found:
            value_json = json.loads(found[config["state_topic"]])
            rendered[config["name"]] = jinja2.Template(config["value_template"]).render(value_json=value_json)
    assert rendered["Verdict"] == "fault" and rendered["Confidence"] == "91.0"
    assert rendered["Needs attention"] == "ON"
    assert rendered["drive end velocity rms"] == "5.1" and rendered["motor temp"] == "61.5"
    feature = next(c for c in configs.values() if c["name"] == "motor temp")
    assert (feature["unit_of_measurement"], feature["device_class"]) == ("°C", "temperature")
    listener.close()


def test_discovery_is_republished_when_home_assistant_comes_online(
    mqtt_broker: tuple[str, int], sink, topic_prefix: str
) -> None:
    mqtt, _ = sink
    discovery = f"{topic_prefix}-ha"
    mqtt.start()
    assert mqtt.wait_connected(5)
    listener = Listener(*mqtt_broker, f"{discovery}/+/+/+/config")
    assert len(listener.collect()) == 12  # retained on the broker
    listener.client.unsubscribe(f"{discovery}/+/+/+/config")
    listener.client.subscribe(f"{discovery}/button/+/+/config", qos=1)  # only fresh, non-retained-replay copies
    listener.collect(0.3)
    listener.publish(f"{discovery}/status", b"online")
    again = listener.collect()
    assert len(again) == 4 and all(topic.startswith(f"{discovery}/button/") for topic in again)
    listener.close()


def test_check_and_escalate_commands_reach_the_callback(mqtt_broker: tuple[str, int], sink, topic_prefix: str) -> None:
    mqtt, commands = sink
    mqtt.start()
    assert mqtt.wait_connected(5)
    listener = Listener(*mqtt_broker, "unused/#")
    listener.publish(f"{topic_prefix}/unknown-asset/check/set", b"PRESS")
    listener.publish(f"{topic_prefix}/press-1/check/set", b"PRESS")
    assert commands.arrived.wait(5)
    listener.publish(f"{topic_prefix}/pump-2/escalate/set", b"")
    wait_until(lambda: len(commands.received) >= 2, timeout_s=5)
    assert commands.received == [("press-1", "check"), ("pump-2", "escalate")]
    listener.close()


def test_retained_commands_are_ignored(mqtt_broker: tuple[str, int], sink, topic_prefix: str) -> None:
    mqtt, commands = sink
    listener = Listener(*mqtt_broker, "unused/#")
    retained_topic = f"{topic_prefix}/press-1/escalate/set"
    listener.publish(retained_topic, b"PRESS", retain=True)  # left on the broker before the board connects
    try:
        mqtt.start()
        assert mqtt.wait_connected(5)
        def pressed() -> bool:  # pressed until the subscription is live
            listener.publish(f"{topic_prefix}/pump-2/check/set", b"PRESS")
            return commands.arrived.wait(0.05)

        assert wait_until(pressed, 5)
        assert commands.received and set(commands.received) == {("pump-2", "check")}
    finally:
        listener.publish(retained_topic, b"", retain=True)  # clear it from the shared broker
        listener.close()


_PUBLISHER = """
import sys, time
from edge.outputs.config import MqttSettings
from edge.outputs.mqtt import MqttSink
from bench.samples import asset
settings = MqttSettings(host="127.0.0.1", port=int(sys.argv[1]), topic_prefix=sys.argv[2], client_id="doomed")
sink = MqttSink(settings, [asset()], lambda a, c: None).start()
assert sink.wait_connected(10)
print("ready", flush=True)
time.sleep(60)
"""


def test_last_will_says_offline_when_the_process_is_killed(mqtt_broker: tuple[str, int], topic_prefix: str) -> None:
    host, port = mqtt_broker
    availability = f"{topic_prefix}/_boards/doomed/availability"
    listener = Listener(host, port, availability)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_PUBLISHER), str(port), topic_prefix],
                               stdout=subprocess.PIPE, env=env, cwd=REPO_ROOT)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
        assert listener.wait(availability) == (b"online", False)
        process.send_signal(signal.SIGKILL)
        assert listener.wait(availability)[0] == b"offline"
    finally:
        process.kill()
        process.wait()
        listener.close()


def test_broker_restart_is_survived_and_the_buffer_delivered(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "broker")
    commands = Commands()
    mqtt = MqttSink(settings(broker.host, broker.port, buffer_size=4), ASSETS, commands).start()
    # A persistent session: the broker keeps QoS 1 messages for it across its own restart.
    listener = Listener(broker.host, broker.port, "edgewatch/+/verdict", client_id="restart-watcher", clean=False)
    try:
        assert mqtt.wait_connected(5)
        mqtt.publish(verdict(timestamp=1.0))
        assert listener.wait_json("edgewatch/press-1/verdict")["timestamp"] == 1.0

        broker.stop()
        assert wait_until(lambda: not mqtt.connected, timeout_s=5)
        for second in range(2, 8):  # 6 verdicts into a buffer of 4: the 2 oldest are dropped
            mqtt.publish(verdict(timestamp=float(second)))
        assert (mqtt.buffered, mqtt.dropped) == (4, 2)

        broker.start()
        assert mqtt.wait_connected(10)
        delivered = [listener.wait_json("edgewatch/press-1/verdict", 10)["timestamp"] for _ in range(4)]
        assert delivered == [4.0, 5.0, 6.0, 7.0]
        assert mqtt.buffered == 0
        mqtt.publish(verdict(timestamp=8.0))  # and publishing goes on as before
        assert listener.wait_json("edgewatch/press-1/verdict")["timestamp"] == 8.0
    finally:
        mqtt.close()
        listener.close()
        broker.stop()


def test_bad_tls_files_are_a_config_error(tmp_path: Path) -> None:
    bad = settings("127.0.0.1", 8883, tls={"ca_file": str(tmp_path / "missing-ca.pem")})
    with pytest.raises(ConfigError, match=r"outputs\.mqtt\.tls"):
        MqttSink(bad, ASSETS, Commands())


@pytest.mark.parametrize("bad", [
    {"topic_prefix": "a/#"}, {"topic_prefix": "/lead"}, {"client_id": "has/slash"},
    {"password": "x"}, {"reconnect_min_s": 10, "reconnect_max_s": 1}, {"tls": {"cert_file": "c.pem"}},
])
def test_settings_reject_what_would_break_topics_or_auth(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MqttSettings.model_validate({"host": "broker", **bad})


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is not installed (scripts/test.sh installs it)")
    ca_key, ca, key, csr, cert = (folder / name for name in ("ca.key", "ca.pem", "server.key", "server.csr",
                                                               "server.pem"))
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=edgewatch test CA",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName = IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
        "-extfile", str(extensions), "-out", str(cert))
    return ca, cert, key


def test_tls_with_username_and_password(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "board", "s3cret"], check=True,
                   capture_output=True)
    broker = start_broker(tmp_path / "broker", anonymous=False, listener_config=(
        f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\npassword_file {passwords}\n"))
    tls = {"ca_file": str(ca)}
    good = MqttSink(settings(broker.host, broker.port, tls=tls, username="board", password="s3cret"),
                    ASSETS, Commands()).start()
    bad = MqttSink(settings(broker.host, broker.port, tls=tls, username="board", password="wrong",
                            client_id="intruder"), ASSETS, Commands()).start()
    try:
        assert good.wait_connected(10)
        assert not bad.wait_connected(1)  # refused: not authorised
    finally:
        good.close()
        bad.close()
        broker.stop()
