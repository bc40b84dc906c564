"""The technician's actions through the HTTP API, with real requests on 127.0.0.1: each lifecycle
transition, corrections with undo, and the refusals that keep other sites from writing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.samples import verdict
from edge.evidence import Condition
from edge.outputs.http_api import OPENAPI_PATH
from tests.alerts_support import TOKEN, Board, board, call

OPENAPI = json.loads(OPENAPI_PATH.read_text())


@pytest.fixture()
def live(tmp_path: Path) -> Iterator[Board]:
    with board(tmp_path) as running:
        yield running


def documented(template: str, method: str, status: int, body: Any) -> None:
    from jsonschema import Draft202012Validator

    answer = OPENAPI["paths"][template][method]["responses"][str(status)]
    schema = {**answer["content"]["application/json"]["schema"], "components": OPENAPI["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, f"{template} {status}: {errors[0].message}"


def test_each_transition_through_the_api(live: Board) -> None:
    base = live.api.url
    status, overview = call(f"{base}/api/assets")
    documented("/api/assets", "get", 200, overview)
    press = next(a for a in overview["assets"] if a["id"] == "press-1")
    assert press["headline"]["text"] == "Outer-race bearing defect, drive end - plan a bearing replacement"
    assert press["alert"]["alert"]["state"] == "raised" and press["alert"]["mode"] == "normal"

    status, body = call(f"{base}/api/assets/press-1/acknowledge", {"by": "anna", "note": "bearing ordered"})
    assert status == 200 and body["alert"]["state"] == "acknowledged" and body["alert"]["acknowledged_by"] == "anna"
    documented("/api/assets/{asset_id}/acknowledge", "post", 200, body)
    status, body = call(f"{base}/api/assets/press-1/acknowledge", {"by": "ben"})
    assert status == 409 and "acknowledged by anna" in body["error"]
    documented("/api/assets/{asset_id}/acknowledge", "post", 409, body)

    status, body = call(f"{base}/api/assets/press-1/snooze", {"by": "anna", "duration_s": 1800})
    assert status == 200 and body["mode"] == "snoozed" and body["snoozed_until"] == live.clock.now + 1800
    documented("/api/assets/{asset_id}/snooze", "post", 200, body)
    status, body = call(f"{base}/api/assets/press-1/snooze", {"by": "anna", "off": True})
    assert status == 200 and body["mode"] == "normal"

    status, body = call(f"{base}/api/assets/press-1/maintenance", {"by": "ben", "on": True, "note": "bearing swap"})
    assert status == 200 and body["mode"] == "maintenance" and body["maintenance"]["by"] == "ben"
    documented("/api/assets/{asset_id}/maintenance", "post", 200, body)
    assert live.alerts.quiet("press-1")
    status, body = call(f"{base}/api/assets/press-1/maintenance", {"by": "ben", "on": False})
    assert status == 200 and body["mode"] == "normal"

    live.clock.now += 60  # the next check is ok: the alert clears
    live.alerts.observe(verdict("press-1", Condition.OK, 0.95, live.clock.now), None)
    status, alerts = call(f"{base}/api/alerts?asset=press-1")
    documented("/api/alerts", "get", 200, alerts)
    assert [a["state"] for a in alerts["alerts"]] == ["cleared"]
    status, events = call(f"{base}/api/events?asset=press-1")
    documented("/api/events", "get", 200, events)
    assert [(e["action"], e["actor"]) for e in reversed(events["events"])] == [
        ("raised", None), ("acknowledged", "anna"), ("snoozed", "anna"), ("unsnoozed", "anna"),
        ("maintenance_started", "ben"), ("maintenance_stopped", "ben"), ("cleared", None)]


def test_mark_a_verdict_wrong_teaches_the_memory_and_undo_removes_it(live: Board) -> None:
    base = live.api.url
    fault = live.history.latest("press-1")
    assert fault is not None and fault.frame is not None
    status, body = call(f"{base}/api/verdicts/{fault.id}/correction", {"by": "anna", "label": "ok",
                                                                        "note": "sensor cable was loose"})
    assert status == 200, body
    documented("/api/verdicts/{verdict_id}/correction", "post", 200, body)
    assert body["label"] == "normal" and body["severity"] == "ok" and body["example_id"]
    memory = live.corrections.memory("press-1")
    assert [(e.label, e.escalation_key) for e in memory.examples] == [("normal", f"correction-{fault.id}")]
    assert len(memory.examples[0].embedding) == 4  # the tiny model's embedding of the saved frame
    status, again = call(f"{base}/api/verdicts/{fault.id}/correction", {"by": "ben", "label": "misalignment"})
    assert status == 409 and "already corrected" in again["error"]

    status, detail = call(f"{base}/api/verdicts/{fault.id}")
    documented("/api/verdicts/{verdict_id}", "get", 200, detail)
    assert detail["corrections"][0]["actor"] == "anna" and detail["headline"]["fault_type"] == "outer_race"

    status, undone = call(f"{base}/api/corrections/correction-{fault.id}/undo", {"by": "anna"})
    assert status == 200 and undone["examples_removed"] == 1
    assert live.corrections.memory("press-1").examples == []
    status, body = call(f"{base}/api/verdicts/{fault.id}/correction", {"by": "ben", "label": "misalignment",
                                                                        "severity": "warning"})
    assert status == 200 and body["label"] == "misalignment" and body["severity"] == "warning"
    actions = [entry["action"] for entry in live.corrections.list("press-1")]
    assert actions == ["marked_wrong", "correction_undone", "marked_wrong"]  # the audit trail keeps all
    assert [line["action"] for line in live.corrections.memory("press-1").audit_log()] == ["add", "revert", "add"]

    ok_check = live.history.verdicts(asset="pump-2", limit=1)[0]
    status, body = call(f"{base}/api/verdicts/{ok_check.id}/correction", {"by": "ben", "label": "cavitation"})
    assert status == 200 and body["example_id"] is None and "no saved frame" in body["not_learned"]


@pytest.mark.parametrize(("headers", "token", "raw", "status", "says"), [
    ({}, None, None, 401, "Authorization"),
    ({"Content-Type": "text/plain"}, TOKEN, None, 415, "application/json"),
    ({"Origin": "http://evil.example"}, TOKEN, None, 403, "cross-site"),
    ({"Sec-Fetch-Site": "cross-site"}, TOKEN, None, 403, "cross-site"),
    ({}, TOKEN, b"by=anna", 400, "not JSON"),
    ({}, TOKEN, b'{"note": "who?"}', 400, "say who you are"),
])
def test_writes_refused(live: Board, headers: dict[str, str], token: str | None, raw: bytes | None, status: int,
                        says: str) -> None:
    answer = call(f"{live.api.url}/api/assets/press-1/acknowledge", {"by": "mallory"}, token=token, headers=headers,
                  raw=raw)
    assert answer[0] == status and says in answer[1]["error"]
    assert live.alerts.store.open_alert("press-1").state == "raised"  # type: ignore[union-attr]


def test_same_origin_write_from_the_page_is_accepted(live: Board) -> None:
    host = live.api.url.removeprefix("http://")
    status, body = call(f"{live.api.url}/api/assets/press-1/acknowledge", {"by": "anna"},
                        headers={"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and body["alert"]["state"] == "acknowledged"


def test_without_a_token_only_a_loopback_host_may_write(tmp_path: Path) -> None:
    with board(tmp_path, token=None) as live:
        status, body = call(f"{live.api.url}/api/assets/press-1/acknowledge", {"by": "mallory"}, token=None,
                            headers={"Host": "rebound.example:8080"})
        assert status == 403 and "not loopback" in body["error"]
        status, body = call(f"{live.api.url}/api/assets/press-1/acknowledge", {"by": "anna"}, token=None)
        assert status == 200
