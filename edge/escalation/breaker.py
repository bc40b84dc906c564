"""Circuit breaker: after N consecutive failures stop calling the cloud for a cool-down, then probe once."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

from edge.escalation.config import BreakerConfig

log = logging.getLogger(__name__)


class BreakerState(str, enum.Enum):
    CLOSED = "closed"  # calls flow
    OPEN = "open"  # calls refused until the cool-down ends
    HALF_OPEN = "half_open"  # one probe call allowed; its outcome closes or re-opens


class CircuitBreaker:
    def __init__(self, config: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at < self._config.cooldown_s:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    @property
    def retry_in_s(self) -> float:
        """Seconds until a probe is allowed (0 when calls may flow)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._config.cooldown_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call go out now? In half-open state only the first caller gets to probe."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record_success(self) -> None:
        if self._opened_at is not None:
            log.info("cloud reachable again: circuit closed")
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._probing or (self._opened_at is None and self._failures >= self._config.failure_threshold):
            if self._opened_at is None:
                log.warning("cloud failed %d times in a row: not calling it for %.0f s",
                            self._failures, self._config.cooldown_s)
            self._opened_at = self._clock()
        self._probing = False
