"""``edgewatch alerts ...`` on a real state folder: the same lifecycle as the page and the API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge.cli.main import main
from edge.service.alerts import open_book
from edge.settings import load_config
from edge.store.history import History
from tests.alerts_support import bearing_fault


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "edgewatch.yaml"
    path.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"),
        "assets": [{"id": "press-1", "name": "Hydraulic press 1", "sensors": [
            {"name": "drive_end", "type": "command", "command": ["true"], "quantity": "vibration"}]}],
    }))
    loaded = load_config(path)
    with History(loaded.state_dir / "history.sqlite3", loaded.state_dir / "frames") as history:
        fault = bearing_fault("press-1", 1_790_000_000.0)
        verdict_id = history.add(fault, frame=np.zeros((48, 64, 3), np.uint8))
        book = open_book(loaded)
        book.observe(fault, verdict_id)
        book.store.close()
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["alerts", *args])
    return code, capsys.readouterr().out


def test_lifecycle_and_log_from_the_shell(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "list", "--config", str(config))
    assert code == 0 and "raised fault: Outer-race bearing defect, drive end" in out
    code, out = run(capsys, "ack", "press-1", "--config", str(config), "--by", "anna", "--note", "ordered")
    assert code == 0 and json.loads(out)["acknowledged_by"] == "anna"
    assert main(["alerts", "ack", "press-1", "--config", str(config), "--by", "ben"]) == 1  # already acknowledged
    assert "acknowledged by anna" in capsys.readouterr().err
    code, out = run(capsys, "snooze", "press-1", "--config", str(config), "--by", "anna", "--for", "2h")
    snoozed = json.loads(out)
    assert code == 0 and snoozed["snoozed_by"] == "anna"
    code, _ = run(capsys, "maintenance", "press-1", "on", "--config", str(config), "--by", "ben", "--for", "30m")
    assert code == 0
    code, out = run(capsys, "list", "--config", str(config), "--json")
    status = json.loads(out)[0]
    assert status["mode"] == "maintenance" and status["maintenance"]["until"] - status["maintenance"]["since"] == 1800
    code, _ = run(capsys, "maintenance", "press-1", "off", "--config", str(config), "--by", "ben")
    code, out = run(capsys, "log", "--config", str(config))
    lines = out.splitlines()
    assert [line.split()[3] for line in lines] == ["maintenance_stopped", "maintenance_started", "snoozed",
                                                  "acknowledged", "raised"]
    assert "acknowledged by anna: ordered" in out
    assert main(["alerts", "snooze", "press-1", "--config", str(config), "--by", "x", "--for", "soon"]) == 2
    assert "not a duration" in capsys.readouterr().err


def test_correct_and_undo_from_the_shell(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "correct", "1", "--label", "ok", "--config", str(config), "--by", "anna")
    marked = json.loads(out)
    assert code == 0 and marked["label"] == "normal" and marked["not_learned"] == "no vision model is configured"
    assert main(["alerts", "correct", "1", "--label", "ok", "--config", str(config), "--by", "anna"]) == 1
    assert "already corrected" in capsys.readouterr().err
    code, out = run(capsys, "undo", "1", "--config", str(config), "--by", "anna", "--note", "it was real")
    assert code == 0 and json.loads(out)["ref"] == "correction-1"
    code, out = run(capsys, "log", "--config", str(config), "--json")
    assert [e["action"] for e in json.loads(out)][:2] == ["correction_undone", "marked_wrong"]
    assert main(["alerts", "correct", "99", "--label", "ok", "--config", str(config), "--by", "anna"]) == 1
    assert "no verdict 99" in capsys.readouterr().err


def test_alerts_log_escapes_terminal_controls(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding: ``edgewatch alerts log`` wrote ESC, CR and U+202E from by/note to the terminal."""
    by, note = "anna\x1b[2J", "ok\rFAKE LINE \u202egnp.exe"
    assert main(["alerts", "ack", "press-1", "--config", str(config), "--by", by, "--note", note]) == 0
    capsys.readouterr()
    for command in (["log"], ["list"]):
        assert main(["alerts", *command, "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert not any(char in out for char in "\x1b\r\u202e"), out
    assert main(["alerts", "log", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "anna\\x1b[2J" in out and "ok\\x0dFAKE LINE \\u202egnp.exe" in out
    assert main(["alerts", "log", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["actor"] == by  # JSON keeps the text exact (and escaped)
