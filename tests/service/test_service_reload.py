"""SIGHUP reload of a real ``edgewatch run`` process: a new config takes over without losing history
or queued escalations; a config that fails validation is refused and the running one stays."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.escalation.local_server import Fault, LocalCloudServer
from edge.service.reload import Reloader
from tests.service_support import DEMO_CONFIG, DEMO_DIR

ESCALATION = """
escalation:
  enabled: true
  base_url: {url}
  timeout_s: 2
  max_retries: 0
  policy: {{confidence_below: 1.0, cooldown_s: 0, duplicate_frame_bits: 0}}
  breaker: {{failure_threshold: 3, cooldown_s: 0.2}}
"""


def write_config(path: Path, url: str, *, keep_press: bool = True) -> None:
    """The demo config with absolute data paths, escalating every verdict to ``url``; atomically."""
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("demo/", f"{DEMO_DIR}/")
    if not keep_press:  # the press is removed: only the pump is checked
        start, end = text.index("  - id: press-1"), text.index("  - id: pump-1")
        text = text[:start] + text[end:]
    partial = path.with_suffix(".partial")
    partial.write_text(text + ESCALATION.format(url=url), encoding="utf-8")
    os.replace(partial, path)


def rows(path: Path, sql: str) -> list[tuple]:
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # schema not created yet
        return []
    finally:
        db.close()


def wait_until(what: str, found: Callable[[], bool], process: subprocess.Popen[str], log: Path,
               timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found():
            return
        assert process.poll() is None, log.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout_s} s:\n{log.read_text()}")


def test_sighup_reloads_keeping_history_and_outbox_and_refuses_a_broken_config(
    cloud: LocalCloudServer, tmp_path: Path
) -> None:
    state, config, log = tmp_path / "state", tmp_path / "edgewatch.yaml", tmp_path / "stderr.log"
    history, outbox = state / "history.sqlite3", state / "outbox.sqlite"
    write_config(config, cloud.url)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # what systemd listens on
    notify.bind(str(tmp_path / "notify.sock"))
    env = {**os.environ, "EDGEWATCH_STATE_DIR": str(state), "EDGEWATCH_HTTP_PORT": "0", "OPENAI_API_KEY": "test",
           "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    env.pop("WATCHDOG_USEC", None)
    cloud.fail_always(Fault.unavailable(0.01))  # the cloud is down: escalations wait in the outbox
    with log.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)], env=env,
                                   text=True, stdout=subprocess.DEVNULL, stderr=stderr, cwd="/")
    try:
        def assets_since(first_id: int) -> set[str]:
            return {a for (a,) in rows(history, f"SELECT asset FROM verdicts WHERE id > {first_id}")}

        wait_until("checks of both assets", lambda: assets_since(0) == {"press-1", "pump-1"}, process, log)
        wait_until("a queued escalation", lambda: bool(rows(outbox, "SELECT key FROM escalations")), process, log)
        before = rows(history, "SELECT id, asset, ts, condition FROM verdicts")
        queued = {key for (key,) in rows(outbox, "SELECT key FROM escalations")}

        write_config(config, cloud.url, keep_press=False)
        cloud.fail_always(None)  # the cloud is back
        process.send_signal(signal.SIGHUP)
        wait_until("the reload", lambda: "config reloaded" in log.read_text(), process, log)
        last_before = max(row[0] for row in rows(history, "SELECT id FROM verdicts"))
        wait_until("checks after the reload", lambda: len(rows(history, "SELECT id FROM verdicts WHERE id > "
                                                                        f"{last_before}")) >= 2, process, log)
        assert assets_since(last_before) == {"pump-1"}  # the new config is the one running
        kept = {row[0]: row for row in rows(history, "SELECT id, asset, ts, condition FROM verdicts")}
        assert all(kept[row[0]] == row for row in before)  # history intact

        def sent_before_reload() -> bool:  # the outbox survived: what waited offline is answered now
            done = {key for key, status in rows(outbox, "SELECT key, status FROM escalations") if status == "done"}
            return queued <= done

        wait_until("the queued escalations answered", sent_before_reload, process, log)
        assert queued <= set(cloud.answered_keys)

        config.write_text(config.read_text() + "\nno_such_key: 1\n", encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        wait_until("the refusal", lambda: "reload refused, the running config stays" in log.read_text(),
                   process, log)
        assert "no_such_key" in log.read_text()
        last_refused = max(row[0] for row in rows(history, "SELECT id FROM verdicts"))
        wait_until("checks after the refusal",
                   lambda: len(rows(history, f"SELECT id FROM verdicts WHERE id > {last_refused}")) >= 1, process, log)
        assert log.read_text().count("config reloaded") == 1
        notify.setblocking(False)
        states = []
        while True:
            try:
                message = notify.recv(4096).decode()
            except BlockingIOError:
                break
            states += [line for line in message.splitlines() if line.startswith(("READY=", "RELOADING=", "MONO"))]
        assert [line.split("=")[0] for line in states] == ["READY", "RELOADING", "MONOTONIC_USEC", "READY"]

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        notify.close()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_a_bundle_whose_hash_no_longer_matches_is_refused(tmp_path: Path) -> None:
    """The check a reload runs before stopping anything: a tampered bundle never replaces a working one."""
    bundle = tmp_path / "bundle"
    subprocess.run(["cp", "-r", str(DEMO_DIR / "bundle"), str(bundle)], check=True)
    config = tmp_path / "edgewatch.yaml"
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("demo/bundle", str(bundle)).replace("demo/", f"{DEMO_DIR}/")
    config.write_text(text, encoding="utf-8")
    reloader = Reloader(config)
    try:
        assert reloader.reload() and reloader.take() is not None
        model = next(p for p in bundle.iterdir() if p.suffix == ".onnx")
        model.write_bytes(model.read_bytes() + b"\0")
        assert not reloader.reload() and reloader.take() is None
    finally:
        reloader.close()


def test_a_checked_config_that_cannot_start_falls_back_to_the_running_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The check cannot know a port is taken: the new service fails to start and the previous config runs again."""
    import threading

    from edge.service.loop import Service
    from edge.service.reload import serve
    from edge.service.wiring import build_service
    from edge.settings import Config, load_config

    def write(path: Path, port: int) -> None:
        path.write_text(f"""
state_dir: {tmp_path / "state"}
assets:
  - id: board
    check_interval_s: 0.05
    sensors: [{{name: cpu, type: command, command: [echo, "41.5"], quantity: temperature, unit: degC}}]
outputs: {{http: {{port: {port}}}}}
""", encoding="utf-8")

    config = tmp_path / "edgewatch.yaml"
    write(config, 0)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    built: list[Service] = []
    stopping: list[bool] = []

    def build(loaded: Config) -> Service:
        built.append(build_service(loaded))
        return built[-1]

    reloader = Reloader(config)
    thread = threading.Thread(target=serve, args=(load_config(config), build, reloader, lambda: bool(stopping)))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (built and built[0].completed_checks) and time.monotonic() < deadline:
            time.sleep(0.02)
        write(config, taken.getsockname()[1])
        assert reloader.reload()  # valid: the port is only found taken when the new service starts
        while len(built) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(built) == 2 and "going back to the previous one" in caplog.text and "in use" in caplog.text
        while not built[1].completed_checks and time.monotonic() < deadline:
            time.sleep(0.02)
        assert built[1].completed_checks > 0  # the previous config is running again
    finally:
        stopping.append(True)
        for service in built:
            service.request_stop()
        thread.join(timeout=30)
        reloader.close()
        taken.close()
    assert not thread.is_alive()
