"""Notifications through apprise to a real SMTP server (STARTTLS), a webhook and an ntfy endpoint on 127.0.0.1:
one per transition per target, nothing lost while a receiver is down, no double after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.samples import verdict
from edge.alerts.config import AlertsSettings
from edge.alerts.lifecycle import AlertBook
from edge.alerts.notifier import Notifier, target_id
from edge.evidence import Condition
from edge.store.alerts import AlertStore
from edge.store.notifications import NotificationQueue
from tests.conftest import REPO_ROOT
from tests.notify_support import SmtpServer, WebhookServer

WORKER = """
import sys
from pathlib import Path
from edge.alerts.config import AlertsSettings
from edge.alerts.notifier import Notifier
from edge.store.alerts import AlertStore
from edge.store.notifications import NotificationQueue
store = AlertStore(Path(sys.argv[1]))
print(Notifier(NotificationQueue(store), sys.argv[2:], AlertsSettings()).drain(), flush=True)
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def receivers(tmp_path: Path) -> Iterator[tuple[SmtpServer, WebhookServer]]:
    smtp, hook = SmtpServer(tmp_path).start(), WebhookServer().start()
    yield smtp, hook
    hook.release.set()
    smtp.hold.clear()
    smtp.stop()
    hook.stop()


def setup(tmp_path: Path, urls: list[str], clock: Clock, **settings: object) -> tuple[AlertBook, Notifier]:
    config = AlertsSettings.model_validate({"retry_min_s": 5, **settings})
    store = AlertStore(tmp_path / "alerts.sqlite3")
    alerts = AlertBook(store, config, {"press-1": "Hydraulic press 1"}, [target_id(u) for u in urls], clock=clock)
    return alerts, Notifier(NotificationQueue(store), urls, config, clock=clock)


def test_one_mail_and_one_webhook_per_transition_none_lost_while_down(
        tmp_path: Path, receivers: tuple[SmtpServer, WebhookServer]) -> None:
    smtp, hook = receivers
    ntfy = WebhookServer().start()  # an ntfy server takes the same JSON POST shape
    clock = Clock()
    alerts, notifier = setup(tmp_path, [smtp.url, hook.url, f"ntfy://127.0.0.1:{ntfy.port}/plant-3"], clock)
    pending: list[int] = []
    notifier.on_pending = pending.append  # what the metrics gauge hears after each round
    alerts.observe(verdict("press-1", Condition.FAULT), 1)
    alerts.acknowledge("press-1", "anna", "bearing ordered")
    alerts.observe(verdict("press-1", Condition.OK), 2)
    assert notifier.drain() == 9
    assert [post["topic"] for post in ntfy.posts] == ["plant-3"] * 3
    ntfy.stop()
    assert len(smtp.messages) == 3 and all(smtp.encrypted)  # every mail went over STARTTLS
    assert smtp.messages[1]["Subject"] == "Hydraulic press 1: acknowledged by anna"
    assert [post["title"] for post in hook.posts] == [
        "Hydraulic press 1: fault", "Hydraulic press 1: acknowledged by anna", "Hydraulic press 1: cleared"]
    assert "bearing ordered" in hook.posts[1]["message"]

    smtp.stop()
    hook.stop()  # both receivers away: the board keeps working and keeps the notifications
    alerts.start_maintenance("press-1", "ben", "seal change")
    alerts.stop_maintenance("press-1", "ben")
    assert notifier.drain() == 0
    assert notifier.queue.counts()["pending"] == 6
    clock.now += 5
    assert notifier.drain() == 0  # first retry: still down
    smtp.start()
    hook.start()
    ntfy.start()
    assert notifier.drain() == 0  # backing off (10 s after the second failure)
    clock.now += 10
    assert notifier.drain() == 6
    assert notifier.drain() == 0 and notifier.queue.counts() == {"sent": 15}
    assert pending == [0, 6, 6, 6, 0, 0]
    ntfy.stop()
    for receiver in (smtp, hook, ntfy):
        refs = receiver.refs()
        assert len(refs) == 5 and len(set(refs)) == 5 and "" not in refs  # one per transition, none twice


def test_rate_limit_delays_and_loses_nothing(tmp_path: Path, receivers: tuple[SmtpServer, WebhookServer]) -> None:
    _, hook = receivers
    clock = Clock()
    alerts, notifier = setup(tmp_path, [hook.url], clock, max_notifications_per_hour=2)
    alerts.observe(verdict("press-1", Condition.WARNING), 1)
    alerts.observe(verdict("press-1", Condition.FAULT), 2)
    alerts.observe(verdict("press-1", Condition.OK), 3)
    assert notifier.drain() == 2 and len(hook.posts) == 2
    clock.now += 1800
    assert notifier.drain() == 0
    clock.now += 1801
    assert notifier.drain() == 1 and hook.posts[-1]["title"].endswith("cleared")


def _worker(store: Path, urls: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", WORKER, str(store), *urls], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_9_mid_send_loses_nothing_and_doubles_no_mail(
        tmp_path: Path, receivers: tuple[SmtpServer, WebhookServer]) -> None:
    smtp, hook = receivers
    clock = Clock()
    alerts, _ = setup(tmp_path, [smtp.url, hook.url], clock)
    alerts.observe(verdict("press-1", Condition.FAULT), 1)
    alerts.acknowledge("press-1", "anna")
    store = tmp_path / "alerts.sqlite3"

    smtp.hold.set()  # the first mail stops mid-transaction, then the process dies
    worker = _worker(store, [smtp.url, hook.url])
    assert smtp.held.wait(30), worker.stderr.read() if worker.poll() is not None else "worker never reached RCPT"
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    smtp.hold.clear()
    again = _worker(store, [smtp.url, hook.url])
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert out.strip() == "4"
    assert len(smtp.messages) == 2 and len(set(smtp.refs())) == 2  # an unfinished SMTP transaction sent nothing
    assert len(hook.posts) == 2 and len(set(hook.refs())) == 2

    # killed while the webhook receiver had the request but had not answered: the resend carries the same key
    alerts.observe(verdict("press-1", Condition.OK), 2)
    hook.hold.set()
    worker = _worker(store, [smtp.url, hook.url])
    assert hook.held.wait(30)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    hook.hold.clear()
    hook.release.set()
    again = _worker(store, [smtp.url, hook.url])
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0 and out.strip() == "1", err  # only the webhook was still due
    assert len(smtp.messages) == 3 and len(set(smtp.refs())) == 3
    refs = hook.refs()
    assert len(set(refs)) == 3 and refs[-1] == refs[-2]  # the replay is recognisable by its key
    assert hook.keys == refs  # also as the Idempotency-Key header a webhook receiver can check
    last = AlertStore(store).read("SELECT attempts, status FROM notifications ORDER BY id DESC LIMIT 1")[0]
    assert last == (2, "sent")


def test_a_url_apprise_cannot_read_is_a_config_error(tmp_path: Path) -> None:
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match=r"alerts.notify\[1\]: apprise does not understand this nosuch:// URL"):
        setup(tmp_path, ["json://127.0.0.1:9/hook", "nosuch://secret@host"], Clock())
