"""Delivers queued alert notifications through apprise, in a background thread.

Why apprise: one URL scheme covers generic JSON webhooks (json://), Slack, Microsoft Teams, ntfy and
e-mail over SMTP with STARTTLS (mailto://...?mode=starttls), plus about a hundred other services,
so edgewatch writes no message format by hand; it is maintained, pure Python and light enough for
a Pi (the ``notify`` extra). It is imported only when ``alerts.notify`` lists a URL.

Each row is sent to one target (a failing Slack never resends the e-mail), oldest first, at most
``max_notifications_per_hour`` board-wide (beyond it rows wait), with exponential retry while a
target is down. URLs hold secrets: logs name only their scheme.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from edge.alerts.config import AlertsSettings
from edge.errors import ConfigError
from edge.store.notifications import NotificationQueue, Queued

log = logging.getLogger(__name__)

_HEADER_SCHEMES = ("json", "jsons", "form", "forms", "xml", "xmls")  # apprise's generic HTTP targets
IDLE_WAIT_S = 30.0  # how long the worker sleeps with nothing due (a new row wakes it at once)


def target_id(url: str) -> str:
    """A stable id per notification URL (stored in the queue instead of the secret URL)."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def scheme(url: str) -> str:
    """What logs and the doctor may say about a URL that holds secrets."""
    return url.split(":", 1)[0]


def _keyed(url: str, key: str) -> str:
    """Generic webhooks also carry the key as an ``Idempotency-Key`` header (apprise's ``+Header``)."""
    if scheme(url) not in _HEADER_SCHEMES:
        return url
    return f"{url}{'&' if '?' in url else '?'}+Idempotency-Key={key}"


def check_url(url: str, index: int) -> None:
    """ConfigError naming ``alerts.notify[index]`` when apprise is missing or cannot read the URL."""
    try:
        import apprise  # noqa: F401  (the 'notify' extra)
    except ImportError:
        raise ConfigError("alerts.notify needs the apprise package: pip install 'edgewatch[notify]'") from None
    if _sender(url) is None:
        raise ConfigError(f"alerts.notify[{index}]: apprise does not understand this {scheme(url)}:// URL "
                          "(see https://github.com/caronc/apprise/wiki for the formats)")


def _sender(url: str) -> Any:
    """A fresh apprise sender per message: a reused one sleeps between messages (apprise's throttle),
    and the board-wide rate limit here already spaces them."""
    import apprise  # the 'notify' extra

    sender = apprise.Apprise()
    return sender if sender.add(url) else None


class Notifier:
    """``Notifier(queue, urls, settings).start()`` ... ``wake()`` after queueing ... ``close()``."""

    def __init__(self, queue: NotificationQueue, urls: Sequence[str], settings: AlertsSettings,
                 clock: Callable[[], float] = time.time, on_pending: Callable[[int], None] | None = None) -> None:
        self.queue = queue
        self.on_pending = on_pending  # told how many wait after each round (a metrics gauge)
        self.settings = settings
        self.clock = clock
        for index, url in enumerate(urls):
            check_url(url, index)
        self._urls = {target_id(url): url for url in urls}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def targets(self) -> list[str]:
        return list(self._urls)

    def start(self) -> Notifier:
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        pending = self.queue.counts().get("pending", 0)
        if pending:
            log.info("notifier stopped with %d notification(s) queued; they go after the next start", pending)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.drain()
            except Exception:  # the store failing (disk full) must not end delivery for good
                log.exception("notification delivery failed; retrying")
            self._wake.wait(self._wait_s())
            self._wake.clear()

    def _wait_s(self) -> float:
        next_at = self.queue.next_try_at()
        return IDLE_WAIT_S if next_at is None else min(IDLE_WAIT_S, max(0.05, next_at - self.clock()))

    def drain(self) -> int:
        """Send what is due now (within the rate limit); returns how many were delivered."""
        delivered = 0
        for item in self.queue.due(self.clock()):
            if self._stop.is_set():
                break
            now = self.clock()
            if self.queue.sent_since(now - 3600.0) >= self.settings.max_notifications_per_hour:
                log.warning("notification rate limit (%d per hour) reached; the rest wait",
                            self.settings.max_notifications_per_hour)
                self.queue.retry(item, "rate limited", now + 60.0)
                break
            delivered += self._send(item)
        if self.on_pending is not None:
            self.on_pending(self.queue.counts().get("pending", 0))
        return delivered

    def _send(self, item: Queued) -> int:
        url = self._urls.get(item.target)
        sender = None if url is None else _sender(_keyed(url, item.key))
        if url is None or sender is None:
            self.queue.drop(item, "its target is no longer in alerts.notify")
            log.warning("notification %s dropped: its target was removed from alerts.notify", item.key)
            return 0
        self.queue.begin(item)  # counted before sending: a crash mid-send shows it was tried
        try:
            ok = bool(sender.notify(title=item.title, body=f"{item.body}\nref {item.key}"))
        except Exception:  # a plugin bug must cost one retry, not the delivery thread
            log.exception("notification %s via %s: apprise failed", item.key, scheme(url))
            ok = False
        now = self.clock()
        if ok:
            self.queue.sent(item, now)
            log.info("notification %s sent via %s", item.key, scheme(url))
            return 1
        delay_s = min(self.settings.retry_max_s, self.settings.retry_min_s * 2 ** item.attempts)
        self.queue.retry(item, f"{scheme(url)} delivery failed", now + delay_s)
        log.warning("notification %s via %s failed (attempt %d); retrying in %.0f s", item.key,
                    scheme(url), item.attempts + 1, delay_s)
        return 0
