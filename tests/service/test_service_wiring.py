"""``build_service`` on a config: the real stages wired together, escalation answered by a local
OpenAI-compatible server and written back to history, outputs served from the same history."""

from __future__ import annotations

import json
import math
import re
import shutil
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bench.ports import free_port
from edge.escalation.local_server import LocalCloudServer
from edge.escalation.outbox import Outbox
from edge.evidence import EvidenceKind
from edge.outputs.metrics import Metrics
from edge.service.loop import Service
from edge.service.wiring import build_service
from edge.settings import load_config
from edge.store import anomaly_maps
from edge.store.history import History
from edge.store.layout import StateFolder
from tests.outputs_support import Listener
from tests.service_support import DEMO_CONFIG
from tests.waiting import wait_until


@pytest.fixture
def fast_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """examples/demo.yaml with 0.2 s intervals, state in tmp."""
    shutil.copytree(DEMO_CONFIG.parent / "demo", tmp_path / "demo")
    document = yaml.safe_load(DEMO_CONFIG.read_text())
    for asset in document["assets"]:
        asset["check_interval_s"] = 0.2
        for sensor in asset["sensors"]:
            sensor["interval_s"] = 0.2
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("EDGEWATCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("EDGEWATCH_HTTP_PORT", "0")
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    return config


def test_escalation_answers_are_written_back_to_history(fast_demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalCloudServer() as cloud:
        document = yaml.safe_load(fast_demo.read_text())
        document["escalation"] = {"enabled": True, "base_url": cloud.url, "model": "gpt-4o", "max_retries": 0,
                                  "policy": {"confidence_below": 1.0, "cooldown_s": 0}}
        fast_demo.write_text(yaml.safe_dump(document))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        config = load_config(fast_demo)
        service = build_service(config, max_checks=4)
        service.run()  # closing the escalator waits for the answers in flight
        asked = len(cloud.completions())
    exposition = _exposition(service)
    # the cloud's usage reached the metrics, and the gauge shows what stays queued for the next start
    assert _sample(exposition, 'edgewatch_cloud_tokens_total{kind="input"}') > 0
    assert _sample(exposition, 'edgewatch_cloud_tokens_total{kind="output"}') > 0
    assert _sample(exposition, "edgewatch_cloud_cost_usd_total") > 0
    with Outbox(config.state_dir / "outbox.sqlite") as outbox:
        assert _sample(exposition, "edgewatch_outbox_depth") == outbox.counts().get("pending", 0)
    # the breaker and budget gauges read the escalator at scrape time: closed now, so the budget is unknown
    assert _sample(exposition, "edgewatch_escalation_breaker_open") == 0
    assert math.isnan(_sample(exposition, 'edgewatch_escalation_budget_used_ratio{window="hour"}'))
    assert _sample(exposition, 'edgewatch_check_interval_seconds{asset="press-1"}') == 0.2
    with History(config.state_dir / "history.sqlite3") as history:
        stored = history.verdicts(limit=None)
    answered = [s for s in stored if (s.verdict.escalation or {}).get("status") == "answered"]
    assert len(stored) == 4 and asked >= 1 and len(answered) == asked
    assert all(s.verdict.escalated and s.verdict.escalation["model"] for s in answered)
    assert all("key" in s.verdict.escalation for s in answered)  # the queued decision is kept alongside


def _exposition(service: Service) -> str:
    metrics = next(sink for sink in service.sinks if isinstance(sink, Metrics))
    return metrics.exposition().decode()


def _sample(exposition: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", exposition, re.MULTILINE)
    assert found, f"{series} not exposed"
    return float(found.group(1))


def test_the_http_api_serves_what_the_loop_stored(fast_demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("EDGEWATCH_HTTP_PORT", str(port))
    config = load_config(fast_demo)
    service = build_service(config)
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        wait_until(lambda: service.completed_checks >= 2, timeout_s=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/verdicts?limit=5", timeout=5) as response:
            listed = json.loads(response.read())
    finally:
        service.request_stop()
        runner.join(30)
    assert not runner.is_alive()
    items = listed["verdicts"] if isinstance(listed, dict) else listed
    assert items and {item["asset"] for item in items} <= {"press-1", "pump-1"}
    saved = json.loads(config.state.service_state.read_text())  # learned state saved on exit
    assert set(saved) == {"press-1", "pump-1"} and "persistence" in saved["press-1"]


def _run_in_thread(service: Service) -> threading.Thread:
    runner = threading.Thread(target=service.run)
    runner.start()
    return runner


def test_the_mqtt_escalate_command_forces_an_escalation(fast_demo: Path, monkeypatch: pytest.MonkeyPatch,
                                                        mqtt_broker: tuple[str, int]) -> None:
    prefix = "ew-escalate-command"
    with LocalCloudServer() as cloud:
        document = yaml.safe_load(fast_demo.read_text())
        for asset in document["assets"]:
            asset["check_interval_s"] = 600  # only the first check and the commanded one run
        document["escalation"] = {"enabled": True, "base_url": cloud.url, "model": "gpt-4o", "max_retries": 0,
                                  "policy": {"confidence_below": 0.0, "opinion_confidence_below": 0.0,
                                             "on_disagreement": False,
                                             "on_novelty": False, "cooldown_s": 0}}
        document["outputs"]["mqtt"] = {"host": mqtt_broker[0], "port": mqtt_broker[1], "topic_prefix": prefix,
                                       "discovery_prefix": None, "reconnect_min_s": 0.1, "commands": ["escalate"]}
        fast_demo.write_text(yaml.safe_dump(document))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        config = load_config(fast_demo)
        listener = Listener(*mqtt_broker, f"{prefix}/#")
        service = build_service(config)
        runner = _run_in_thread(service)
        try:
            assert listener.wait(f"{prefix}/_boards/edgewatch-demo/availability", 10)[0] == b"online"
            assert wait_until(lambda: service.completed_checks >= 2, timeout_s=30)
            assert cloud.completions() == []  # the policy alone never asks
            listener.publish(f"{prefix}/pump-1/escalate/set", b"PRESS")
            assert wait_until(lambda: service.completed_checks >= 3 and len(cloud.completions()) == 1, timeout_s=30)
            # the live budget gauge reads the ledger at scrape time: the paid call shows at once
            hourly = 'edgewatch_escalation_budget_used_ratio{window="hour"}'
            assert wait_until(lambda: _sample(_exposition(service), hourly) > 0, timeout_s=10)
        finally:
            service.request_stop()
            runner.join(30)
            listener.close()
    assert not runner.is_alive() and service.completed_checks == 3
    exposition = _exposition(service)
    assert _sample(exposition, 'edgewatch_escalations_total{asset="pump-1"}') == 1  # counted once, when published
    assert _sample(exposition, 'edgewatch_escalations_total{asset="press-1"}') == 0
    assert _sample(exposition, "edgewatch_cloud_cost_usd_total") > 0
    with History(config.state_dir / "history.sqlite3") as history:
        latest = history.latest("pump-1")
    assert latest is not None and latest.verdict.escalated
    assert "asked on demand" in latest.verdict.escalation["triggers"]
    assert latest.verdict.escalation["status"] == "answered"
    assert "check requested: MQTT command 'escalate'" in latest.verdict.reasons


def test_learning_inside_the_running_service_stops_repeat_escalations(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexplained stain is asked about once; the answer reaches the running vision stage, so the
    next frames of it are judged on the device (cool-down and frame dedupe are off: only learning
    can stop the asking)."""
    _stain_scene(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    with LocalCloudServer() as cloud:
        document = {
            "state_dir": str(tmp_path / "state"),
            "model": {"bundle": str(tmp_path / "bundle")},
            "assets": [{"id": "pump", "profile": str(tmp_path / "profile.npz"), "check_interval_s": 0.5,
                        "cameras": [{"name": "top", "type": "folder", "path": str(tmp_path / "stain")}]}],
            "escalation": {"enabled": True, "base_url": cloud.url, "max_retries": 0,
                           "learning": {"enabled": True, "min_confidence": 0.75},
                           "policy": {"confidence_below": 0.0, "cooldown_s": 0, "duplicate_frame_bits": 0}},
        }
        (tmp_path / "edgewatch.yaml").write_text(yaml.safe_dump(document))
        config = load_config(tmp_path / "edgewatch.yaml")
        service = build_service(config, max_checks=5)
        service.run()
        asked = len(cloud.completions())
    with History(config.state_dir / "history.sqlite3") as history:
        stored = [s.verdict for s in reversed(history.verdicts(limit=None))]  # oldest first
        # non-ok verdicts keep their frame and the map of where it differed from normal (2x2 patch grid)
        framed = [s.frame for s in history.verdicts(limit=None) if s.frame is not None]
        assert framed and all(anomaly_maps.load_beside(frame).shape == (2, 2) for frame in framed)
    assert len(stored) == 5 and asked == 1
    assert [v.escalated for v in stored] == [True, False, False, False, False]
    assert "unlike anything enrolled" in " ".join(stored[0].escalation["triggers"])
    for verdict in stored[1:]:  # the cloud's label is now a few-shot class of the running profile
        (seen,) = [e for e in verdict.evidence if e.kind is EvidenceKind.VISION]
        assert seen.fault_type == "warning"


def test_state_file_leaves_no_partial_copies(tmp_path: Path) -> None:
    from edge.errors import StorageError
    from edge.service.wiring import StateFile

    saved = StateFolder(tmp_path).service_state
    (tmp_path / f".{saved.name}.k3j2.partial").write_text('{"half": ')  # what a killed save leaves behind
    (tmp_path / "other.partial").write_text("not ours")
    state = StateFile(saved)
    assert state.load() == {}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other.partial"]
    state.savers["pump"] = lambda: {"reported": "ok"}
    state.save()
    assert state.load() == {"pump": {"reported": "ok"}}
    blocked = StateFile(tmp_path / "blocked")
    (tmp_path / "blocked").mkdir()  # the final rename fails, as on a full or read-only disk
    blocked.savers["pump"] = lambda: {"reported": "ok"}
    with pytest.raises(StorageError, match="cannot save learned state"):
        blocked.save()
    assert not list(tmp_path.glob(".*.partial"))


def test_alert_transitions_of_the_service_reach_a_webhook(fast_demo: Path) -> None:
    from edge.alerts.notifier import Notifier
    from edge.store.alerts import AlertStore
    from edge.store.notifications import NotificationQueue
    from tests.notify_support import WebhookServer

    hook = WebhookServer().start()
    document = yaml.safe_load(fast_demo.read_text())
    document["alerts"] = {"notify": [hook.url]}
    fast_demo.write_text(yaml.safe_dump(document))
    config = load_config(fast_demo)
    service = build_service(config, max_checks=10)
    service.run()
    exposition = _exposition(service)
    with AlertStore(config.state_dir / "alerts.sqlite3") as store:
        for asset in config.assets:  # the gauges follow the lifecycle
            open_alert = store.open_alert(asset.id)
            raised = open_alert is not None and open_alert.state == "raised"
            assert _sample(exposition, f'edgewatch_alert_unacknowledged{{asset="{asset.id}"}}') == raised
            assert _sample(exposition, f'edgewatch_maintenance{{asset="{asset.id}"}}') == 0
        Notifier(NotificationQueue(store), [hook.url], config.alerts).drain()  # what the next start sends
        told = [e for e in store.events() if e.action in ("raised", "worsened", "cleared")]
        assert told and NotificationQueue(store).counts() == {"sent": len(told)}
    hook.stop()
    titles = sorted(post["title"] for post in hook.posts)
    assert len(titles) == len(told) and len(set(hook.refs())) == len(told)  # one per transition, none twice
    assert any(title.endswith(("fault", "warning")) for title in titles)


def test_a_correction_from_the_api_reaches_the_running_vision(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexplained stain is flagged; a technician says what it was through the HTTP API while the
    service runs, and the next frames of the stain are named that way by the reloaded profile."""
    _stain_scene(tmp_path)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    port = free_port()
    document = {
        "state_dir": str(tmp_path / "state"),
        "model": {"bundle": str(tmp_path / "bundle")},
        "assets": [{"id": "pump", "profile": str(tmp_path / "profile.npz"), "check_interval_s": 0.3,
                    "cameras": [{"name": "top", "type": "folder", "path": str(tmp_path / "stain")}]}],
        "outputs": {"http": {"port": port}},
    }
    (tmp_path / "edgewatch.yaml").write_text(yaml.safe_dump(document))
    config = load_config(tmp_path / "edgewatch.yaml")
    service = build_service(config, max_checks=200)
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        with History(config.state_dir / "history.sqlite3") as history:
            flagged = _wait_for(lambda: next((s for s in history.verdicts(limit=5) if s.frame is not None), None))
            assert flagged.verdict.condition.value != "ok"
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/verdicts/{flagged.id}/correction", method="POST",
                data=json.dumps({"by": "anna", "label": "oil stain", "severity": "warning"}).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert json.loads(answer.read())["example_id"]
            marked_at = history.verdicts(limit=1)[0].id + 1  # checks after this one use the new profile
            judged = _wait_for(lambda: [s for s in history.verdicts(limit=3) if s.id > marked_at] or None)
    finally:
        service.request_stop()
        runner.join(30)
    (seen,) = [e for e in judged[0].verdict.evidence if e.kind is EvidenceKind.VISION]
    assert seen.fault_type == "oil stain"  # the technician's word is now a few-shot class of the running profile


def _stain_scene(tmp_path: Path) -> None:
    """40 normal frames enrolled into profile.npz with a bundle without labels (only the normal
    baseline judges), and a folder of three frames with an oil stain nobody enrolled."""
    from edge.cli.main import main
    from tests.bundle_factory import make_bundle, panel_frame, stained_frame

    rng = np.random.default_rng(0)
    (tmp_path / "normal").mkdir()
    for index in range(40):
        panel_frame(rng).save(tmp_path / "normal" / f"{index:03}.png")
    (tmp_path / "stain").mkdir()
    for index in range(3):
        stained_frame(100 + index).save(tmp_path / "stain" / f"{index}.png")
    make_bundle(tmp_path / "bundle", patches=True)
    assert main(["enroll", "--bundle", str(tmp_path / "bundle"), "--normal", str(tmp_path / "normal"),
                 "--out", str(tmp_path / "profile.npz")]) == 0


def _wait_for(probe: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    """What ``probe`` returns once it is truthy."""
    found: list[Any] = [None]

    def seen() -> object:
        found[0] = probe()
        return found[0]

    assert wait_until(seen, timeout_s), "the running service never got there"
    return found[0]
