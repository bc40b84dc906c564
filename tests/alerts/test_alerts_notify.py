"""Notifications through apprise to a real SMTP server (STARTTLS), a webhook and an ntfy endpoint on 127.0.0.1:
one per transition per target, nothing lost while a receiver is down, no double after kill -9."""

from __future__ import annotations

import logging
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
from edge.store.alerts import MAX_BODY_CHARS, MAX_TITLE_CHARS, PRUNE_EVERY, AlertStore, Mode, Notice, Retention
from edge.store.notifications import NotificationQueue
from tests.conftest import REPO_ROOT
from tests.notify_support import SmtpServer, WebhookServer

WORKER = """
import sys
from pathlib import Path
from edge.alerts.config import AlertsSettings
from edge.alerts.notifier import Notifier
from edge.store.alerts import MAX_BODY_CHARS, MAX_TITLE_CHARS, PRUNE_EVERY, AlertStore, Mode, Notice, Retention
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


ASSETS = {"press-1": "Hydraulic press 1", "pump-2": "Coolant pump 2"}


def setup(tmp_path: Path, urls: list[str], clock: Clock, **settings: object) -> tuple[AlertBook, Notifier]:
    config = AlertsSettings.model_validate({"retry_min_s": 5, **settings})
    store = AlertStore(tmp_path / "alerts.sqlite3")
    alerts = AlertBook(store, config, ASSETS, [target_id(u) for u in urls], clock=clock)
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


# -- under attack or misuse (each of these failed before notifications were hardened) ------------------

def test_html_in_a_note_is_sent_as_plain_text(
        tmp_path: Path, receivers: tuple[SmtpServer, WebhookServer]) -> None:
    smtp, _ = receivers
    alerts, notifier = setup(tmp_path, [smtp.url], Clock())
    alerts.observe(verdict("press-1", Condition.FAULT), 1)
    alerts.acknowledge("press-1", "anna", '<a href="http://evil.example/x">click</a><img src=http://evil.example/p>')
    assert notifier.drain() == 2
    parts = {part.get_content_type(): part.get_content() for part in smtp.messages[1].walk()
             if part.get_content_maintype() == "text"}
    assert "click</a>" in parts["text/plain"]  # the text part says what was typed
    assert list(parts) == ["text/plain"]  # no HTML part a mail client would render as a link or a remote image


def test_a_flood_of_snoozes_holds_a_fault_back_less_than_one_rate_interval(
        tmp_path: Path, receivers: tuple[SmtpServer, WebhookServer]) -> None:
    _, hook = receivers
    clock = Clock()
    per_hour = 30
    interval_s = 3600 / per_hour
    alerts, notifier = setup(tmp_path, [hook.url], clock, max_notifications_per_hour=per_hour)
    for index in range(400):  # a broker client snoozing and unsnoozing press-1, the notifier running meanwhile
        alerts.snooze("press-1", "mallory", 60)
        alerts.unsnooze("press-1", "mallory")
        if index % 20 == 0:
            notifier.drain()
        clock.now += 0.5
    assert notifier.queue.counts()["pending"] <= 2  # repeats collapsed: one snoozed, one unsnoozed
    assert notifier._wait_s() > 1  # rows held back by the rate are not polled in a busy loop
    raised_at = clock.now
    alerts.observe(verdict("pump-2", Condition.FAULT), 1)
    delivered_at = None
    while delivered_at is None and clock.now - raised_at <= 3 * interval_s:
        notifier.drain()
        if any(post["title"] == "Coolant pump 2: fault" for post in hook.posts):
            delivered_at = clock.now
        clock.now += 10
    assert delivered_at is not None and delivered_at - raised_at < interval_s
    assert len(hook.posts) <= per_hour // 2 + 1  # the flood itself spent at most half the hourly rate


def test_rotating_a_password_keeps_the_queued_notifications(
        tmp_path: Path, receivers: tuple[SmtpServer, WebhookServer]) -> None:
    _, hook = receivers
    old, new = (f"json://edgewatch:{word}@127.0.0.1:{hook.port}/hook" for word in ("winter-2025", "spring-2026"))
    assert target_id(old) == target_id(new) and "winter" not in target_id(old)
    clock = Clock()
    alerts, _ = setup(tmp_path, [old], clock)
    alerts.observe(verdict("press-1", Condition.FAULT), 1)  # queued while the old password was configured
    rotated = Notifier(NotificationQueue(alerts.store), [new], AlertsSettings(), clock=clock)
    assert rotated.drain() == 1 and hook.posts[0]["title"] == "Hydraulic press 1: fault"
    assert rotated.queue.counts() == {"sent": 1}


def test_apprise_logs_neither_the_user_nor_the_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from bench.ports import free_port

    caplog.set_level(logging.DEBUG)
    url = (f"mailto://alice.ops:S3cret-Pa55@127.0.0.1:{free_port()}?mode=starttls&from=edgewatch@example.com"
           "&to=tech@example.com")
    alerts, notifier = setup(tmp_path, [url], Clock())
    alerts.observe(verdict("press-1", Condition.FAULT), 1)
    assert notifier.drain() == 0  # nobody listens on that port: one failed try, logged
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "via mailto failed" in logged
    assert "alice.ops" not in logged and "S3cret-Pa55" not in logged and "S...5" not in logged


def test_config_check_refuses_a_notify_url_apprise_cannot_read(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli.main import main
    from edge.errors import ConfigError
    from edge.service.reload import check_config

    path = tmp_path / "config.yaml"
    sensor = "{name: temp, type: replay, path: temp.csv, quantity: temperature, unit: degC}"
    path.write_text(f"state_dir: state\nassets:\n  - id: pump-1\n    sensors: [{sensor}]\n"
                    "alerts:\n  notify: ['json://127.0.0.1:9/hook', 'nosuch://token@host']\n")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "alerts.notify[1]: apprise does not understand this nosuch:// URL" in err and "token" not in err

    with pytest.raises(ConfigError, match=r"alerts.notify\[1\]"):  # a SIGHUP with it keeps the running service
        check_config(path)


def test_a_huge_name_is_cut_before_anything_encodes_it(
        tmp_path: Path, receivers: tuple[SmtpServer, WebhookServer]) -> None:
    smtp, _ = receivers
    alerts, notifier = setup(tmp_path, [smtp.url], Clock())
    alerts.observe(verdict("press-1", Condition.FAULT), 1)
    alerts.acknowledge("press-1", "m" * 1_000_000, "n\r\nBcc: x@evil.example " * 100_000)
    queued = max(notifier.queue.due(Clock().now, limit=10), key=lambda item: item.id)
    assert len(queued.title) <= MAX_TITLE_CHARS and len(queued.body) <= MAX_BODY_CHARS
    assert notifier.drain() == 2
    subject = str(smtp.messages[1]["Subject"])
    assert subject.startswith("Hydraulic press 1: acknowledged by mmm") and subject.endswith("…")
    assert len(subject) <= MAX_TITLE_CHARS and smtp.messages[1]["Bcc"] is None


def test_the_queue_and_the_audit_trail_are_capped(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.sqlite3", Retention(events=300, notifications=50))
    queue = NotificationQueue(store)
    for index in range(700):
        store.set_mode("press-1", Mode(), "snoozed", "ben", None, float(index), Notice(f"n{index}", "", ("mail",)))
        if index < 100:
            queue.sent(queue.due(float(index))[0], float(index))
    counts = queue.counts()
    assert store.read("SELECT COUNT(*) FROM events")[0][0] <= 300 + PRUNE_EVERY
    assert counts["pending"] <= 50 + PRUNE_EVERY and "sent" not in counts  # finished rows went first
    kept = [item.title for item in queue.due(1e9, limit=1000)]
    assert kept[-1] == "n699" and "n0" not in kept  # the newest wait, the oldest were dropped
    assert store.events("press-1", limit=1)[0].detail == {} and len(store.events(limit=10_000)) <= 400
