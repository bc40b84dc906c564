"""The technician's channels under load and abuse: bounded maintenance, deeply nested JSON, DNS
rebinding on reads, and undo after many events on another asset (terminal escapes in CLI output:
test_alerts_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.alerts_support import Board, board, call


def test_maintenance_durations_are_bounded_over_http(tmp_path: Path) -> None:
    """Finding: duration_s 1e12 answered 500, and 317 years was accepted."""
    with board(tmp_path) as live:
        for duration_s in (1e12, 317 * 365.25 * 86400, 30 * 86400 + 1, 0):
            status, body = call(f"{live.api.url}/api/assets/pump-2/maintenance",
                                {"by": "ben", "on": True, "duration_s": duration_s})
            assert status == 409 and "alerts.maintenance_max_s" in body["error"], (duration_s, body)
        assert not live.alerts.quiet("pump-2")
        status, body = call(f"{live.api.url}/api/assets/pump-2/maintenance",
                            {"by": "ben", "on": True, "duration_s": 30 * 86400})
        assert status == 200 and body["mode"] == "maintenance"


def test_the_bound_is_a_setting(tmp_path: Path) -> None:
    with board(tmp_path, maintenance_max_s=3600) as live:
        status, _ = call(f"{live.api.url}/api/assets/pump-2/maintenance", {"by": "ben", "on": True,
                                                                           "duration_s": 3601})
        assert status == 409


@pytest.mark.parametrize("raw", [b"[" * 8000 + b"]" * 8000, b'{"by": ' + b"[" * 50 + b"]" * 50 + b"}"])
def test_deeply_nested_json_is_a_400(tmp_path: Path, raw: bytes) -> None:
    """Finding: a body nested 8,000 deep answered 500 (RecursionError)."""
    with board(tmp_path) as live:
        status, body = call(f"{live.api.url}/api/assets/press-1/acknowledge", raw=raw)
    assert status == 400 and "nested more than" in body["error"]


def test_reads_need_a_loopback_host_when_no_token_is_set(tmp_path: Path) -> None:
    """Finding: on a loopback setup without a token, reads answered any Host (DNS rebinding)."""
    with board(tmp_path, token=None) as live:
        for path in ("/api/assets", "/api/events", "/metrics", "/api/verdicts/1/frame.jpg"):
            status, body = _get(live, path, "attacker.example:8080")
            assert status == 403 and "not loopback" in body, path
        status, _ = _get(live, "/api/assets", f"localhost:{live.api.port}")
        assert status == 200
        assert _get(live, "/healthz", "attacker.example")[0] == 200  # carries no machine data


def _get(live: Board, path: str, host: str) -> tuple[int, str]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", live.api.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def test_undo_finds_its_correction_after_10000_events_on_another_asset(tmp_path: Path) -> None:
    """Finding: undo looked in the board's last 10,000 events; a busy asset pushed the correction out
    and the verdict stayed corrected."""
    with board(tmp_path) as live:
        status, marked = call(f"{live.api.url}/api/verdicts/21/correction", {"by": "anna", "label": "ok"})
        assert status == 200 and marked["asset"] == "press-1"
        with live.alerts.store.write() as db:  # one transaction: 10,050 commits would take a minute
            db.executemany("INSERT INTO events (at, asset, alert_id, action, actor, note, detail)"
                           " VALUES (?, 'pump-2', NULL, 'snoozed', 'flood', NULL, '{}')",
                           [(live.clock.now,)] * 10_050)
        assert len(live.alerts.store.events(limit=20_000)) > 10_050
        status, undone = call(f"{live.api.url}/api/corrections/{marked['ref']}/undo", {"by": "anna"})
        assert status == 200 and undone["examples_removed"] == 1
        status, _ = call(f"{live.api.url}/api/corrections/{marked['ref']}/undo", {"by": "anna"})
        assert status == 409  # undone once; the marks per asset agree
        assert call(f"{live.api.url}/api/verdicts/21/correction", {"by": "anna", "label": "ok"})[0] == 200
