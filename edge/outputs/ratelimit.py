"""At most N events per key in any sliding minute: commands per (asset, command) from the broker.

A flood is refused at the door, in constant memory per key, before any parsing, storing or cloud
call; the first refusal of a burst is logged and the rest are counted, so a flood of 1,000
messages writes two log lines, not 1,000.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)

WINDOW_S = 60.0


class RateLimit:
    """``allow(key)`` is True for the first ``per_minute`` calls per key in any 60 s window."""

    def __init__(self, per_minute: int, what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.what = what  # e.g. "MQTT command", for the log line
        self.clock = clock
        self._times: dict[Hashable, deque[float]] = {}
        self._refused: dict[Hashable, int] = {}  # key -> refusals in the current burst
        self._lock = threading.Lock()

    def allow(self, key: Hashable) -> bool:
        now = self.clock()
        with self._lock:
            times = self._times.setdefault(key, deque(maxlen=self.per_minute))
            if len(times) < self.per_minute or now - times[0] >= WINDOW_S:
                refused = self._refused.pop(key, 0)
                if refused:
                    log.warning("%s %s: accepted again after %d ignored", self.what, key, refused)
                times.append(now)
                return True
            self._refused[key] = self._refused.get(key, 0) + 1
            if self._refused[key] == 1:
                log.warning("%s %s: more than %d a minute; ignoring more until the rate drops",
                            self.what, key, self.per_minute)
            return False
