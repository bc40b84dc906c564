"""``edgewatch run`` / ``history`` as real subprocesses on examples/demo.yaml: exit codes, signals,
SIGKILL durability and restart."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.store.history import History
from tests.service_support import DEMO_CONFIG
from tests.waiting import wait_until


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(EDGEWATCH_STATE_DIR=str(tmp_path / "state"), EDGEWATCH_HTTP_PORT="0")
    env.pop("NOTIFY_SOCKET", None)
    return env


def edgewatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge", *args]


def stored(state: Path) -> dict[int, str]:
    """id -> stored JSON body of every committed verdict (read with plain sqlite3)."""
    path = state / "history.sqlite3"
    if not path.exists():
        return {}
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT id, body FROM verdicts").fetchall())
    except sqlite3.OperationalError:  # schema not created yet
        return {}
    finally:
        db.close()


@pytest.fixture
def running(demo_env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(edgewatch("run", "--config", str(DEMO_CONFIG)), env=demo_env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=30)


def wait_for_verdicts(state: Path, count: int, process: subprocess.Popen[str], timeout_s: float = 60) -> dict[int, str]:
    found: dict[int, str] = {}

    def enough() -> bool:
        assert process.poll() is None, process.communicate()
        found.update(stored(state))
        return len(found) >= count

    if not wait_until(enough, timeout_s):
        raise AssertionError(f"fewer than {count} verdicts after {timeout_s} s")
    return found


def test_run_with_max_checks_stores_verdicts_and_history_lists_them(demo_env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(edgewatch("run", "--config", str(DEMO_CONFIG), "--max-checks", "4"), env=demo_env,
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    assert "service stopped: 4 check(s) done, 0 failed" in done.stderr
    listed = subprocess.run(edgewatch("history", "--config", str(DEMO_CONFIG), "--json"), env=demo_env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    verdicts = json.loads(listed.stdout)
    assert len(verdicts) == 4 and {v["asset"] for v in verdicts} == {"press-1", "pump-1"}
    assert [v["id"] for v in verdicts] == sorted((v["id"] for v in verdicts), reverse=True)
    assert all(v["verdict"] in ("ok", "warning", "fault") and v["evidence"] for v in verdicts)
    one = subprocess.run(edgewatch("history", "--config", str(DEMO_CONFIG), "--asset", "pump-1", "--since", "1h"),
                         env=demo_env, capture_output=True, text=True, timeout=60)
    assert one.returncode == 0 and "pump-1" in one.stdout and "press-1" not in one.stdout
    bad = subprocess.run(edgewatch("history", "--config", str(DEMO_CONFIG), "--since", "yesterday"),
                         env=demo_env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_sigterm_exits_0_with_journald_style_logs(running: subprocess.Popen[str], demo_env: dict[str, str]) -> None:
    state = Path(demo_env["EDGEWATCH_STATE_DIR"])
    wait_for_verdicts(state, 2, running)
    running.send_signal(signal.SIGTERM)
    _, stderr = running.communicate(timeout=60)
    assert running.returncode == 0, stderr
    assert "service stopped" in stderr
    assert len(stored(state)) >= 2


def test_journal_stream_switches_to_priority_prefixes(demo_env: dict[str, str]) -> None:
    demo_env["JOURNAL_STREAM"] = "8:12345"
    done = subprocess.run(edgewatch("run", "--config", str(DEMO_CONFIG), "--max-checks", "1"), env=demo_env,
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line]
    assert lines and all(line.startswith("<") and line[1] in "234567" and line[2] == ">" for line in lines)
    assert "<6>edge.service.loop: service stopped: 1 check(s) done, 0 failed" in lines


def test_sigkill_loses_no_committed_verdict_and_a_restart_resumes(
    running: subprocess.Popen[str], demo_env: dict[str, str]
) -> None:
    state = Path(demo_env["EDGEWATCH_STATE_DIR"])
    before = wait_for_verdicts(state, 3, running)
    running.send_signal(signal.SIGKILL)
    running.communicate(timeout=30)
    assert running.returncode == -signal.SIGKILL
    after = stored(state)
    assert all(after.get(verdict_id) == body for verdict_id, body in before.items())  # nothing committed is lost
    db = sqlite3.connect(state / "history.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()

    done = subprocess.run(edgewatch("run", "--config", str(DEMO_CONFIG), "--max-checks", "2"), env=demo_env,
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    resumed = stored(state)
    assert len(resumed) == len(after) + 2 and min(set(resumed) - set(after)) > max(after)
    with History(state / "history.sqlite3", state / "frames") as history:
        assert history.count() == len(resumed)
