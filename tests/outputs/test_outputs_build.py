"""The outputs a config asks for, built and used together the way the service does."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from pathlib import Path

import pytest

from bench.samples import asset, verdict
from edge.errors import ConfigError
from edge.service.outputs import build_outputs
from edge.settings import Config
from edge.store.history import History
from tests.outputs_support import Listener


def config(tmp_path: Path, outputs: dict[str, object]) -> Config:
    return Config.model_validate({"site": "line-2", "state_dir": str(tmp_path),
                                  "assets": [asset().model_dump(mode="json")], "outputs": outputs})


def test_config_builds_metrics_mqtt_and_http_that_work_together(tmp_path: Path, mqtt_broker: tuple[str, int]) -> None:
    host, port = mqtt_broker
    commands: list[tuple[str, str]] = []
    arrived = threading.Event()
    built = config(tmp_path, {"mqtt": {"host": host, "port": port, "topic_prefix": "build-test",
                                           "commands": ["check"]},
                              "http": {"port": 0}})
    with History(tmp_path / "history.sqlite3") as history:
        outputs = build_outputs(built, history, lambda *command: (commands.append(command), arrived.set()))
        listener = Listener(host, port, "build-test/#")
        outputs.start()
        try:
            assert outputs.mqtt is not None and outputs.http is not None and outputs.mqtt.wait_connected(5)
            assert outputs.mqtt.topics.client_id == "edgewatch-line-2"
            stored = verdict()
            history.add(stored)
            for sink in outputs.sinks:
                sink.publish(stored)
            assert listener.wait_json("build-test/press-1/verdict")["verdict"] == "warning"
            listener.publish("build-test/press-1/check/set", b"PRESS")
            assert arrived.wait(5) and commands == [("press-1", "check")]
            with urllib.request.urlopen(outputs.http.url + "/metrics", timeout=5) as response:
                assert 'edgewatch_verdicts_total{asset="press-1",verdict="warning"} 1.0' in response.read().decode()
            with urllib.request.urlopen(outputs.http.url + "/api/assets", timeout=5) as response:
                assert json.loads(response.read())["assets"][0]["latest"]["verdict"] == "warning"
        finally:
            outputs.close()
            listener.close()


def test_without_mqtt_only_metrics_and_trends_are_sinks_and_a_busy_port_is_a_config_error(tmp_path: Path) -> None:
    with socket.socket() as busy, History(tmp_path / "history.sqlite3") as history:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        outputs = build_outputs(config(tmp_path, {"http": {"port": busy.getsockname()[1]}}), history,
                                lambda *_: None)
        assert outputs.mqtt is None and outputs.sinks == [outputs.metrics, outputs.trends]
        with pytest.raises(ConfigError, match=r"outputs\.http: cannot listen on 127\.0\.0\.1"):
            outputs.start()
