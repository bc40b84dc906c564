"""Delivers queued alert notifications through apprise, in a background thread.

Why apprise: one URL scheme covers generic JSON webhooks (json://), Slack, Microsoft Teams, ntfy and
e-mail over SMTP with STARTTLS (mailto://...?mode=starttls), plus about a hundred other services,
so edgewatch writes no message format by hand; it is maintained, pure Python and light enough for
a Pi (the ``notify`` extra). It is imported only when ``alerts.notify`` lists a URL.

Each row is sent to one target (a failing Slack never resends the e-mail), worst news first (a
fault, a warning, then the rest), oldest first within that, at most ``max_notifications_per_hour``
board-wide (beyond it rows wait), with exponential retry while a target is down. The rest (cleared,
and what people did: snooze, maintenance, acknowledgements) may use only half of that rate, and a
repeated snooze or maintenance action replaces its unsent notice (the store), so a flood of such
commands never holds back a fault: it waits at most one rate-limit interval.

Bodies go out as plain text (an e-mail has no HTML part to render a note's markup), subjects and bodies
are cut to a bounded length before anything encodes them. URLs hold secrets: a target is stored
under an id without its password or tokens (so rotating one keeps the queue), logs name only the
scheme, and apprise's own logger says nothing below a warning and never a URL's user or secrets.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from edge.alerts.config import AlertsSettings
from edge.errors import ConfigError
from edge.store.alerts import MAX_BODY_CHARS, MAX_TITLE_CHARS, clip
from edge.store.notifications import NotificationQueue, Queued

log = logging.getLogger(__name__)

_HEADER_SCHEMES = ("json", "jsons", "form", "forms", "xml", "xmls")  # apprise's generic HTTP targets
_SECRET_PARAMS = ("pass", "pwd", "token", "key", "secret", "auth")  # query parameters left out of a target id
_TEXT = "text"  # apprise.NotifyFormat.TEXT, without importing apprise here
RATE_RETRY_S = 60.0  # how often rows held back by the rate limit are looked at again
IDLE_WAIT_S = 30.0  # how long the worker sleeps with nothing due (a new row wakes it at once)


def target_id(url: str) -> str:
    """A stable id per notification target, stored in the queue instead of the URL: scheme, user, host,
    port, path and the query's non-secret parameters, so a new password or API token in the same
    URL keeps the id and the queued notifications (a token in the path, as Slack's, is part of it)."""
    parts = urllib.parse.urlsplit(url)
    public = sorted((name, value) for name, value in urllib.parse.parse_qsl(parts.query)
                    if not any(word in name.lower() for word in _SECRET_PARAMS))
    identity = f"{parts.scheme}://{parts.username or ''}@{parts.netloc.rpartition('@')[2]}{parts.path}?{public}"
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def _legacy_id(url: str) -> str:
    """The id of rows queued by versions that hashed the whole URL (delivered after an upgrade)."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def scheme(url: str) -> str:
    """What logs and the doctor may say about a URL that holds secrets."""
    return url.split(":", 1)[0]


def _keyed(url: str, key: str) -> str:
    """Generic webhooks also carry the key as an ``Idempotency-Key`` header (apprise's ``+Header``)."""
    if scheme(url) not in _HEADER_SCHEMES:
        return url
    return f"{url}{'&' if '?' in url else '?'}+Idempotency-Key={key}"


def check_urls(urls: Sequence[str]) -> None:
    """Every URL readable by apprise and no target twice (the config check, the reload and the service)."""
    seen: dict[str, int] = {}
    for index, url in enumerate(urls):
        check_url(url, index)
        first = seen.setdefault(target_id(url), index)
        if first != index:
            raise ConfigError(f"alerts.notify[{index}] is the same target as alerts.notify[{first}] (only a "
                              "password or token differs); list each target once")


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

    _quiet_apprise(url)
    sender = apprise.Apprise()
    return sender if sender.add(url) else None


class _Redacted(logging.Filter):
    """On apprise's logger: nothing below a warning (its debug lines show URLs and message bodies), and
    each configured URL's user, password, path and query values replaced in what is left."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        message = record.getMessage()
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
        record.msg, record.args = message, None
        return True


_REDACTED = _Redacted()


def _quiet_apprise(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    words = [parts.username, parts.password, *parts.path.split("/"),
             *(value for _, value in urllib.parse.parse_qsl(parts.query))]
    for word in filter(None, words):
        if len(word) >= 3:  # as written, decoded, and as apprise's own privacy mask shows it ('S...5')
            _REDACTED.secrets.update({word, urllib.parse.unquote(word), f"{word[0]}...{word[-1]}"})
    logger = logging.getLogger("apprise")
    if _REDACTED not in logger.filters:
        logger.addFilter(_REDACTED)


class Notifier:
    """``Notifier(queue, urls, settings).start()`` ... ``wake()`` after queueing ... ``close()``."""

    def __init__(self, queue: NotificationQueue, urls: Sequence[str], settings: AlertsSettings,
                 clock: Callable[[], float] = time.time, on_pending: Callable[[int], None] | None = None) -> None:
        self.queue = queue
        self.on_pending = on_pending  # told how many wait after each round (a metrics gauge)
        self.settings = settings
        self.clock = clock
        check_urls(urls)
        self._urls = {**{_legacy_id(url): url for url in urls}, **{target_id(url): url for url in urls}}
        self._targets = [target_id(url) for url in urls]
        self._wake = threading.Event()
        self._limited_until = 0.0  # rate-limited rows are looked at again then (or when a new row comes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def targets(self) -> list[str]:
        return list(self._targets)

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
        now = self.clock()
        next_at = self.queue.next_try_at()
        if next_at is not None and self._limited_until > now:  # rows wait for the rate; a new one wakes us
            next_at = max(next_at, self._limited_until)
        return IDLE_WAIT_S if next_at is None else min(IDLE_WAIT_S, max(0.05, next_at - now))

    def drain(self) -> int:
        """Send what is due now (within the rate limit); returns how many were delivered."""
        delivered = 0
        for item in self.queue.due(self.clock()):
            if self._stop.is_set():
                break
            now = self.clock()
            if self._limited(item, now):
                self.queue.retry(item, "rate limited", now + RATE_RETRY_S)
                self._limited_until = now + RATE_RETRY_S
                break  # rows come worst first: the rest are no more urgent
            delivered += self._send(item)
        if self.on_pending is not None:
            self.on_pending(self.queue.counts().get("pending", 0))
        return delivered

    def _limited(self, item: Queued, now: float) -> bool:
        """Over the hourly rate; the rest after warnings and faults may use half of it, so those find room."""
        per_hour = self.settings.max_notifications_per_hour
        if self.queue.sent_since(now - 3600.0) >= per_hour:
            log.warning("notification rate limit (%d per hour) reached; the rest wait", per_hour)
            return True
        if item.priority == 0 and self.queue.sent_since(now - 3600.0, below_priority=1) >= max(1, per_hour // 2):
            log.warning("cleared, snooze, maintenance and acknowledgement notifications over half the hourly rate "
                        "(%d); they wait, warnings and faults still go", per_hour)
            return True
        return False

    def _send(self, item: Queued) -> int:
        url = self._urls.get(item.target)
        sender = None if url is None else _sender(_keyed(url, item.key))
        if url is None or sender is None:
            self.queue.drop(item, "its target is no longer in alerts.notify")
            log.warning("notification %s dropped: its target was removed from alerts.notify", item.key)
            return 0
        self.queue.begin(item)  # counted before sending: a crash mid-send shows it was tried
        try:
            ok = bool(sender.notify(title=clip(item.title, MAX_TITLE_CHARS, one_line=True),
                                    body=f"{clip(item.body, MAX_BODY_CHARS)}\nref {item.key}",
                                    body_format=_TEXT))  # escaped by apprise where a receiver wants HTML
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
