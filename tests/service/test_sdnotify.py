"""sd_notify against a real Unix datagram socket, as systemd listens on NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.service.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def receive(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_ready_status_stopping(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    notifier = Notifier.from_environment()
    assert notifier.enabled
    assert notifier.ready("model loaded")
    assert receive(sock) == "READY=1\nSTATUS=model loaded"
    notifier.status("3 assets, last check 2 s ago")
    assert receive(sock) == "STATUS=3 assets, last check 2 s ago"
    notifier.stopping()
    assert receive(sock) == "STOPPING=1"
    assert not notifier.watchdog()  # no WatchdogSec: no pings
    notifier.close()


def test_watchdog_pings_at_half_the_interval(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    now = [100.0]
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")  # WatchdogSec=30
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = Notifier.from_environment(monotonic=lambda: now[0])
    assert notifier.watchdog_interval_s == 15.0
    sent = []
    for step in range(31):  # one call per second for 30 s
        now[0] = 100.0 + step
        sent.append(notifier.watchdog())
    assert [i for i, s in enumerate(sent) if s] == [0, 15, 30]
    assert [receive(sock) for _ in range(3)] == ["WATCHDOG=1"] * 3


def test_watchdog_for_another_pid_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "x.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert Notifier.from_environment().watchdog_interval_s is None


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"edgewatch-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert Notifier.from_environment().ready()
        assert receive(sock) == "READY=1"
    finally:
        sock.close()


def test_without_systemd_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier.from_environment()
    assert not notifier.enabled and not notifier.ready() and not notifier.watchdog()


def test_a_vanished_socket_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier(str(tmp_path / "gone.sock"))
    assert not notifier.ready()
    assert "sd_notify" in caplog.text
