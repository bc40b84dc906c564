"""Logging to stderr: journald-friendly (priority prefixes, no timestamps) under systemd.

Values logged as %-arguments come from outside (request lines, MQTT topics, file names, error
texts): their control characters are escaped, so they cannot forge log lines or drive a terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from edge.errors import EdgewatchError

# sd-daemon(3) priority prefixes understood by journald on stdout/stderr streams.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


# C0, DEL, C1, and the invisible format characters that reorder or split what a terminal shows
# (bidirectional overrides such as U+202E, marks, line and paragraph separators)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    r"""An ESC byte becomes the four characters '\x1b', U+202E the six '\u202e': control characters
    as visible escapes (log lines, and the CLI's text output of what people typed)."""
    return _CONTROL.sub(lambda match: _escape(ord(match.group())), text)


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_NUMBERS = re.compile(r"\d+")


class FailureLog:
    """A failure that repeats on every attempt (a full disk, a locked database) logged once when it
    starts or changes, and once when it ends, instead of once per attempt; the repeats go to debug.

    ``failed(what, error)`` after each failed attempt, ``ok(what)`` after each good one; ``what``
    names the operation ("asset press-1: verdict not stored"). Thread-safe."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._failing: dict[str, tuple[str, int]] = {}  # what -> (the error, numbers masked; failures so far)
        self._lock = threading.Lock()

    def failed(self, what: str, error: BaseException, traceback: bool = False) -> None:
        """``traceback``: log the first one with its traceback (an unexpected error, not a known one)."""
        kind = _NUMBERS.sub("#", f"{type(error).__name__}: {error}")
        with self._lock:
            before, count = self._failing.get(what, ("", 0))
            self._failing[what] = (kind, count + 1)
        if kind == before:
            self._log.debug("%s: %s (again, %d times so far)", what, error, count + 1)
        else:
            self._log.error("%s: %s", what, error, exc_info=error if traceback else None)

    def ok(self, what: str) -> None:
        with self._lock:
            ended = self._failing.pop(what, None)
        if ended is not None:
            self._log.warning("%s: works again after %d failed attempt(s)", what, ended[1])

    @contextlib.contextmanager
    def attempt(self, what: str, catch: type[Exception] = EdgewatchError) -> Iterator[None]:
        """Run the block; a ``catch`` error is logged as above and swallowed (the caller goes on)."""
        try:
            yield
        except catch as exc:
            self.failed(what, exc, traceback=not isinstance(exc, EdgewatchError))
        else:
            self.ok(what)


def _escaped(value: Any) -> Any:
    return escape_controls(value) if isinstance(value, str) else value


class EscapingFormatter(logging.Formatter):
    """A Formatter that escapes control characters in the arguments of every record."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple):
            record.args = tuple(_escaped(str(arg) if isinstance(arg, (Exception, PurePath)) else arg)
                                for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _escaped(value) for key, value in record.args.items()}
        return super().format(record)


class JournalFormatter(EscapingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{record.name}: {super().format(record)}"


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
