"""systemd's sd_notify protocol (READY, WATCHDOG, STATUS, STOPPING) without libsystemd.

The protocol is one datagram per message to the Unix socket named in ``$NOTIFY_SOCKET``
(a leading ``@`` means the abstract namespace). Outside systemd the variable is unset and
every call is a no-op, so the service code never has to ask whether it runs under systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Notifier:
    """Send state changes to systemd. ``watchdog()`` may be called as often as convenient: it
    sends at most once per half ``WatchdogSec`` (``$WATCHDOG_USEC``), as sd_watchdog_enabled(3)
    advises."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._socket: socket.socket | None = None
        self._address = ""
        if address:
            self._address = "\0" + address[1:] if address.startswith("@") else address
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_interval_s = None if not watchdog_usec else watchdog_usec / 1e6 / 2
        self._last_watchdog = -float("inf")

    @classmethod
    def from_environment(cls, monotonic: Callable[[], float] = time.monotonic) -> Notifier:
        """Read ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC`` (ignored when ``$WATCHDOG_PID`` names
        another process, e.g. a wrapper script started by systemd)."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            usec = None
        return cls(os.environ.get("NOTIFY_SOCKET"), int(usec) if usec and usec.isdigit() else None, monotonic)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; False (logged once per failure) if it failed."""
        if self._socket is None:
            return False
        try:
            self._socket.sendto("\n".join(assignments).encode("utf-8"), self._address)
        except OSError as exc:  # systemd gone or socket full: the service keeps working regardless
            log.warning("sd_notify to %s failed: %s", self._address.replace("\0", "@"), exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def reloading(self, status: str | None = None) -> bool:
        """RELOADING=1 with the monotonic time systemd's Type=notify-reload asks for; READY=1 ends it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """Pet the watchdog if half its interval has passed since the last ping; True if sent."""
        if self.watchdog_interval_s is None:
            return False
        now = self._monotonic()
        if now - self._last_watchdog < self.watchdog_interval_s:
            return False
        self._last_watchdog = now
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
