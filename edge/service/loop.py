"""The check loop: when to check each asset, running checks with bounded work, persisting and publishing.

Wiring only. Every judgement comes from the stages an ``Asset`` is given (vision, sensor analytics,
fusion, escalation policy); ``edge/service/wiring.py`` builds them from the config, tests hand in their own.
One check up to its verdict is ``edge.service.check.assess``, the same path ``edgewatch check`` takes.

    main thread                       worker threads (at most one check per asset)
    -----------                       ---------------------------------------------
    every tick: due? triggered? ----> grab frames -> frame health -> vision evidence
    reap finished checks              + sensor evidence (latest readings, never a blocking read)
    WATCHDOG=1 unless a check stalls  -> fusion -> history (committed) -> escalation (queued) -> sinks
    SIGTERM: stop, let running checks finish (grace), close everything, exit 0

Work is bounded: an asset with a check running is not queued again (a scheduled check that falls
due meanwhile is skipped, not piled up), so the executor never holds more than one item per asset
and memory stays flat. Sensors are polled in their own threads and cloud calls run from the
outbox's worker, so neither can hold up a check.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from edge.errors import EdgewatchError
from edge.evidence import Verdict
from edge.frames.frame import Frame
from edge.logs import FailureLog
from edge.outputs.base import VerdictSink
from edge.service.check import assess
from edge.service.sdnotify import Notifier
from edge.service.stages import AlertGate, Asset, Clock, Escalator, SystemClock
from edge.settings import ServiceSettings
from edge.store.history import History

log = logging.getLogger(__name__)

TICK_S = 0.5  # how often the loop looks at triggers, finished checks and the watchdog


@dataclass
class _Schedule:
    asset: Asset
    next_due: float  # monotonic
    last_trigger: float = -float("inf")
    pending_reason: str | None = None  # at most one triggered/requested check waits while one runs
    pending_escalate: bool = False  # that check must ask the cloud whatever the policy says
    running: concurrent.futures.Future[int | None] | None = None
    started: float = 0.0
    stalled: bool = False


@dataclass
class _Job:
    interval_s: float
    run: Callable[[], object]
    due: float  # monotonic


class Service:
    """Runs checks until ``request_stop`` (SIGTERM) or ``max_checks``; see the module docstring."""

    def __init__(
        self,
        assets: Sequence[Asset],
        history: History,
        *,
        sinks: Sequence[VerdictSink] = (),
        escalator: Escalator | None = None,
        notifier: Notifier | None = None,
        settings: ServiceSettings | None = None,
        clock: Clock | None = None,
        executor: concurrent.futures.Executor | None = None,
        max_checks: int | None = None,
        periodic: Sequence[tuple[float, Callable[[], object]]] = (),
        resources: contextlib.ExitStack | None = None,
        observe_check: Callable[[str, float], None] | None = None,
        observe_store: Callable[[str, float, str | None], None] = lambda asset_id, timestamp_s, error: None,
        alerts: AlertGate | None = None,
    ) -> None:
        self.history = history
        self.sinks = tuple(sinks)
        self.escalator = escalator
        self.notifier = notifier or Notifier(None)
        self.settings = settings or ServiceSettings()
        self.clock: Clock = clock or SystemClock()
        workers = self.settings.workers or max(1, len(assets))
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="check")
        self.max_checks = max_checks
        # closed in reverse start order at shutdown; by default what the loop is handed
        self._resources = resources if resources is not None else _owned(assets, escalator, self.sinks)
        # retention, saving learned state: short jobs run in the main loop between checks
        start = self.clock.monotonic()
        self._periodic = [_Job(interval_s, job, start + interval_s) for interval_s, job in periodic]
        self._observe_check = observe_check
        self._observe_store = observe_store  # (asset id, verdict time, why it was not stored or None)
        self.alerts = alerts
        self._failures = FailureLog(log)  # a full disk fails every check: one line when it starts, one when it ends
        self._stopping = False  # a plain flag: setting it is safe in a signal handler, unlike Event.set
        self._reloading = False
        self._wake = threading.Event()  # set by a finished check or a request: the loop looks at once
        self._requests_lock = threading.Lock()
        # asset id -> (why a check was asked for, whether it must escalate): one waiting request per asset
        self._requests: dict[str, tuple[str, bool]] = {}
        self._started_checks = 0
        self.completed_checks = 0
        self.failed_checks = 0
        self._last_status = -float("inf")
        self._schedules = [self._resume(asset) for asset in assets]

    def _resume(self, asset: Asset) -> _Schedule:
        """After a restart the next check is due one interval after the last stored verdict."""
        now = self.clock.monotonic()
        try:
            latest = self.history.latest(asset.id)
        except EdgewatchError as exc:
            log.warning("asset %s: history unreadable (%s); checking now", asset.id, exc)
            latest = None
        delay = 0.0
        if latest is not None:
            delay = min(asset.check_interval_s, max(0.0, latest.verdict.timestamp + asset.check_interval_s
                                                    - self.clock.time()))
        return _Schedule(asset, now + max(delay, asset.first_check_delay_s))

    def request_stop(self, *, reloading: bool = False) -> None:
        """Ask the loop to stop; safe from a signal handler. The loop notices within one tick.
        ``reloading`` tells systemd a new service follows (RELOADING=1, not STOPPING=1)."""
        self._reloading = reloading and not self._stopping  # a stop asked first (SIGTERM) stays a stop
        self._stopping = True

    def request_check(self, asset_id: str, reason: str, *, escalate: bool = False) -> None:
        """Check ``asset_id`` as soon as it is idle (e.g. an MQTT command); safe from any thread.
        With ``escalate`` that check asks the cloud whatever the escalation policy says (on demand)."""
        if asset_id not in {s.asset.id for s in self._schedules}:
            log.warning("check requested for unknown asset %r (%s); ignored", asset_id, reason)
            return
        with self._requests_lock:
            _, waiting_escalate = self._requests.get(asset_id, ("", False))
            self._requests[asset_id] = (reason, escalate or waiting_escalate)  # a newer plain request keeps it
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        self.notifier.ready(f"watching {len(self._schedules)} asset(s)")
        log.info("service started: %d asset(s)", len(self._schedules))
        try:
            while not self._stopping:
                now = self.clock.monotonic()
                self._reap(now)
                if self._budget_spent() and not self._running():
                    log.info("stopping after %d check(s) (--max-checks)", self.completed_checks + self.failed_checks)
                    break
                for schedule in self._schedules:
                    self._maybe_start(schedule, now)
                self._heartbeat(now)
                self._run_periodic(now)
                self.clock.wait(self._wake, self._sleep_s(now))
                self._wake.clear()  # anything that set it after this is reaped at the top of the loop
        finally:
            self._shutdown()

    def _budget_spent(self) -> bool:
        return self.max_checks is not None and self._started_checks >= self.max_checks

    def _running(self) -> list[_Schedule]:
        return [s for s in self._schedules if s.running is not None]

    def _maybe_start(self, schedule: _Schedule, now: float) -> None:
        asset = schedule.asset
        if asset.triggers is not None and asset.sensors is not None:
            reasons = asset.triggers.update(asset.sensors.readings())
            if reasons and now - schedule.last_trigger >= asset.trigger_cooldown_s:
                schedule.pending_reason = "triggered: " + "; ".join(reasons)
                schedule.last_trigger = now
        with self._requests_lock:
            requested = self._requests.pop(asset.id, None)
        if requested is not None:
            schedule.pending_reason = f"requested: {requested[0]}"
            schedule.pending_escalate = schedule.pending_escalate or requested[1]
        if schedule.running is not None or self._budget_spent():
            return
        due = now >= schedule.next_due
        if schedule.pending_reason is None and not due:
            return
        reason, schedule.pending_reason = schedule.pending_reason or "scheduled", None
        escalate, schedule.pending_escalate = schedule.pending_escalate, False
        if due:  # one check serves both; a check that fell behind is skipped, never queued twice
            schedule.next_due = max(schedule.next_due + asset.check_interval_s, now)
        self._started_checks += 1
        schedule.started = now
        schedule.stalled = False
        schedule.running = self._executor.submit(self.check, asset, reason, escalate)
        schedule.running.add_done_callback(lambda _: self._wake.set())

    def _reap(self, now: float) -> None:
        for schedule in self._running():
            future = schedule.running
            assert future is not None
            if future.done():
                schedule.running = None
                schedule.stalled = False
                error = future.exception()
                what = f"asset {schedule.asset.id}: check failed"
                if error is None:
                    self.completed_checks += 1
                    self._failures.ok(what)
                else:
                    self.failed_checks += 1
                    self._failures.failed(what, error, traceback=not isinstance(error, EdgewatchError))
            elif not schedule.stalled and now - schedule.started > self.settings.stall_after_s:
                schedule.stalled = True
                log.error("asset %s: check running for %.0f s; watchdog pings stop so systemd restarts the service",
                          schedule.asset.id, now - schedule.started)

    def _heartbeat(self, now: float) -> None:
        if not any(s.stalled for s in self._schedules):
            self.notifier.watchdog()
        if now - self._last_status >= self.settings.status_interval_s:
            self._last_status = now
            self.notifier.status(f"{self.completed_checks} check(s) done, {self.failed_checks} failed, "
                                 f"{len(self._running())} running")

    def _run_periodic(self, now: float) -> None:
        for job in self._periodic:
            if now >= job.due:
                job.due = now + job.interval_s
                name = getattr(job.run, "__qualname__", job.run)
                with self._failures.attempt(f"periodic job {name} failed", Exception):  # the checks go on
                    job.run()

    def _sleep_s(self, now: float) -> float:
        idle_due = [s.next_due - now for s in self._schedules if s.running is None]
        return max(0.0, min([TICK_S, *idle_due]))

    def _shutdown(self) -> None:
        if self._reloading:
            self.notifier.reloading("reloading the config: finishing running checks")
        else:
            self.notifier.stopping("finishing running checks")
        running = [s.running for s in self._running() if s.running is not None]
        if running:
            log.info("waiting up to %.0f s for %d running check(s)", self.settings.shutdown_grace_s, len(running))
            _, unfinished = concurrent.futures.wait(running, timeout=self.settings.shutdown_grace_s)
            if unfinished:
                log.warning("%d check(s) did not finish in time; their verdicts are lost", len(unfinished))
        self._reap(self.clock.monotonic())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for job in self._periodic:
            _quietly(job.run, "final maintenance")
        self._resources.close()
        log.info("service stopped: %d check(s) done, %d failed", self.completed_checks, self.failed_checks)

    # -- one check (worker thread) -----------------------------------------------------------------

    def check(self, asset: Asset, reason: str = "on demand", escalate: bool = False) -> int | None:
        """Run one check of ``asset``; returns the stored verdict's id (None if history refused it).
        ``escalate`` asks the cloud about it whatever the policy says."""
        started = time.perf_counter()
        try:
            return self._check(asset, reason, escalate)
        finally:
            if self._observe_check is not None:
                self._observe_check(asset.id, time.perf_counter() - started)

    def _check(self, asset: Asset, reason: str, escalate: bool) -> int | None:
        quiet = self._quiet(asset.id)  # planned maintenance: no alerts, no escalation, no learning
        found = assess(asset, self.clock.time, learn=not quiet)
        verdict = found.verdict
        if reason != "scheduled":
            verdict = replace(verdict, reasons=(*verdict.reasons, f"check {reason}"))
        verdict_id = self._store(verdict, found.frames[0] if found.frames else None, found.anomaly_map)
        if self.escalator is not None and verdict_id is not None and not quiet:
            verdict = self.escalator.submit(verdict_id, verdict, found.frames, found.embedding(), on_demand=escalate)
            if verdict.escalation is not None:
                self._note_escalation(verdict_id, verdict)
        if self.alerts is not None:  # the verdict is stored and published all the same
            with self._failures.attempt(f"asset {asset.id}: alert not updated"):
                self.alerts.observe(verdict, verdict_id)
        for sink in self.sinks:  # one broken output must not cost the others their verdict
            with self._failures.attempt(f"asset {asset.id}: output {type(sink).__name__} failed", Exception):
                sink.publish(verdict)
        return verdict_id

    def _quiet(self, asset_id: str) -> bool:
        try:
            return self.alerts is not None and self.alerts.quiet(asset_id)
        except EdgewatchError as exc:  # an unreadable alert store must not stop the checks
            log.error("asset %s: maintenance state unknown (%s); checking as usual", asset_id, exc)
            return False

    def _store(self, verdict: Verdict, frame: Frame | None, anomaly_map: np.ndarray | None = None) -> int | None:
        try:
            verdict_id = self.history.add(verdict, frame.image if frame is not None else None, anomaly_map)
        except EdgewatchError as exc:
            # outputs still get the verdict; the history error is loud (once), not fatal
            self._failures.failed(f"asset {verdict.asset_id}: verdict not stored", exc)
            self._observe_store(verdict.asset_id, verdict.timestamp, f"verdicts cannot be stored: {exc}")
            return None
        self._failures.ok(f"asset {verdict.asset_id}: verdict not stored")
        self._observe_store(verdict.asset_id, verdict.timestamp, None)
        return verdict_id

    def _note_escalation(self, verdict_id: int, verdict: Verdict) -> None:
        """Store the escalation decision (queued, or why not); the cloud's answer replaces it later."""
        assert verdict.escalation is not None
        with self._failures.attempt(f"asset {verdict.asset_id}: escalation decision not stored"):
            self.history.set_escalation(verdict_id, verdict.escalation, verdict.escalated)


def own(resources: contextlib.ExitStack, close: Callable[[], object], what: str) -> None:
    """Close ``what`` when ``resources`` unwinds; a failing close is logged and the others still run."""
    resources.callback(_quietly, close, what)


def _owned(assets: Sequence[Asset], escalator: Escalator | None, sinks: Sequence[VerdictSink]) -> contextlib.ExitStack:
    """What a loop built by hand runs, in start order: outputs, escalation, then each asset's devices."""
    resources = contextlib.ExitStack()
    for sink in sinks:
        own(resources, sink.close, type(sink).__name__)
    if escalator is not None:
        own(resources, escalator.close, "escalation")
    for asset in assets:
        for camera in asset.cameras:
            own(resources, camera.close, f"camera {camera.name}")
        if asset.sensors is not None:
            own(resources, asset.sensors.close, f"sensors of {asset.id}")
    return resources


def _quietly(close: Callable[[], object], what: str) -> None:
    try:
        close()
    except Exception:
        log.exception("closing %s failed", what)
