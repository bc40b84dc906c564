"""Poll every sensor in its own thread so a slow or hung sensor never blocks the others.

Each read runs under the sensor's timeout, failed reads are retried with doubling back-off,
readings pass the health rules, and a sensor with no good reading for ``stale_after_s`` is
reported stale. State changes are logged once when a sensor goes bad and once when it recovers.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.errors import SensorError
from edge.sensors import health
from edge.sensors.base import Reader, Reading
from edge.sensors.config import SensorBase

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class SensorStatus:
    """What is known about one sensor now. ``reading`` is the last good one (may be stale)."""

    name: str
    healthy: bool
    reading: Reading | None
    problem: str | None  # why it is unhealthy
    last_ok_s: float | None
    consecutive_failures: int


def _start_read(reader: Reader, name: str) -> concurrent.futures.Future[Reading]:
    """Run one read in a daemon thread: a driver wedged in the kernel cannot hold up shutdown."""
    future: concurrent.futures.Future[Reading] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(reader.read())
        except BaseException as exc:  # handed to the poller, which decides what it means
            future.set_exception(exc)

    threading.Thread(target=run, name=f"read-{name}", daemon=True).start()
    return future


class _Channel:
    def __init__(self, config: SensorBase, reader: Reader) -> None:
        self.config = config
        self.reader = reader
        self.pending: concurrent.futures.Future[Reading] | None = None
        self.reading: Reading | None = None
        self.last_ok_s: float | None = None
        self.problem: str | None = "no reading yet"
        self.failures = 0
        self.was_healthy = True  # so the first failure is logged
        self.lock = threading.Lock()


class SensorPoller:
    """Owns the readers it is given; ``close`` (or leaving the ``with`` block) closes them."""

    def __init__(
        self,
        sensors: list[tuple[SensorBase, Reader]],
        clock: Callable[[], float] = time.time,
        wait: Callable[[threading.Event, float], bool] = threading.Event.wait,
    ) -> None:
        """``clock`` (unix seconds) stamps good readings; ``wait(stop, seconds)`` sleeps between
        polls and retries and returns True when stopped (tests inject both instead of waiting)."""
        self.clock = clock
        self._wait = wait
        self.channels = {config.name: _Channel(config, reader) for config, reader in sensors}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> SensorPoller:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        for name, channel in self.channels.items():
            thread = threading.Thread(target=self._loop, args=(channel,), name=f"poll-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        for channel in self.channels.values():
            try:
                channel.reader.close()
            except Exception:  # closing must never stop the others from closing
                log.exception("sensor %s: close failed", channel.config.name)

    def _loop(self, channel: _Channel) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.poll(channel.config.name)
            self._wait(self._stop, max(0.0, channel.config.interval_s - (time.monotonic() - started)))

    def poll(self, name: str) -> SensorStatus:
        """One read with retries, now, in the caller's thread (the loop and tests use it)."""
        channel = self.channels[name]
        config = channel.config
        for attempt in range(config.retries + 1):
            trouble = self._attempt(channel)
            if trouble is None:
                break
            with channel.lock:
                channel.problem = trouble
                channel.failures += 1
            backoff_s = min(0.5 * 2**attempt, MAX_BACKOFF_S, config.interval_s)
            if attempt < config.retries and self._wait(self._stop, backoff_s):
                break
        return self.status(name)

    def _attempt(self, channel: _Channel) -> str | None:
        config = channel.config
        if channel.pending is not None and not channel.pending.done():
            return f"previous read still hanging (>{config.timeout_s:g} s)"
        channel.pending = _start_read(channel.reader, config.name)
        try:
            reading = channel.pending.result(timeout=config.timeout_s)
        except concurrent.futures.TimeoutError:
            return f"read timed out after {config.timeout_s:g} s"
        except SensorError as exc:
            return str(exc)
        except Exception as exc:  # a reader bug must not kill the poller
            log.debug("sensor %s: unexpected error", config.name, exc_info=True)
            return f"reader failed: {type(exc).__name__}: {exc}"
        previous = channel.reading.value if channel.reading is not None else None
        trouble = health.problem(config, reading, previous)
        if trouble is not None:
            return trouble
        with channel.lock:
            channel.reading, channel.last_ok_s, channel.problem, channel.failures = reading, self.clock(), None, 0
        return None

    def status(self, name: str) -> SensorStatus:
        channel = self.channels[name]
        config = channel.config
        now = self.clock()
        with channel.lock:
            problem = channel.problem
            if problem is None and channel.last_ok_s is not None and now - channel.last_ok_s > config.stale_after_s:
                problem = f"stale: no good reading for {now - channel.last_ok_s:.0f} s"
            healthy = problem is None
            status = SensorStatus(name, healthy, channel.reading, problem, channel.last_ok_s, channel.failures)
            if healthy != channel.was_healthy:
                channel.was_healthy = healthy
                if healthy:
                    log.info("sensor %s: healthy again", name)
                else:
                    log.warning("sensor %s: unhealthy: %s", name, problem)
        return status

    def snapshot(self) -> dict[str, SensorStatus]:
        return {name: self.status(name) for name in self.channels}
