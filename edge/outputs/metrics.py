"""Prometheus metrics of one edgewatch process, in its own registry (base units, ``_total`` counters).

Labels stay low-cardinality: ``asset``, ``verdict`` (3 values), ``camera``/``sensor`` names from
the config, token ``kind`` (input/output). Never a verdict id, reason text or timestamp.

``Metrics`` is also a ``VerdictSink``: publishing a verdict counts it and updates the health of
the cameras and sensors whose evidence it carries. The service times checks with
``observe_check``; the escalation code reports ``escalated``, ``cloud_usage`` and ``outbox_depth``;
the alert lifecycle ``alert_status`` and the notifier ``notifications_pending``; the service hands
``watch_escalation`` two readers of the escalator's breaker and budget, read at each scrape, and
``watch_rollbacks`` the rollbacks the fleet agent and the A/B health gate keep on disk.
``edgewatch_clock_seconds`` is the board's clock at scrape time, so Prometheus can see skew
(``contrib/prometheus/edgewatch.rules.yml`` holds the fleet's alert rules on these names).
"""

from __future__ import annotations

import functools
import logging
import math
import platform
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from edge import __version__
from edge.errors import StorageError
from edge.evidence import Condition, EvidenceKind, Verdict
from edge.store.trends import trend_values

log = logging.getLogger(__name__)

# Checks run from tens of milliseconds (sensor only) to tens of seconds (slow camera, cloud).
CHECK_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, check_intervals_s: Mapping[str, float] | None = None) -> None:
        """``check_intervals_s``: asset id -> seconds between checks, for every asset watched (an alert
        rule tells a silent asset from one that checks rarely by it)."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.check_seconds = Histogram(
            "edgewatch_check_duration_seconds", "Time of one check: capture, score, fuse, store.",
            ["asset"], buckets=CHECK_BUCKETS_S, registry=r)
        self.verdicts = Counter(
            "edgewatch_verdicts", "Verdicts produced, by outcome.", ["asset", "verdict"], registry=r)
        self.escalations = Counter(
            "edgewatch_escalations", "Verdicts escalated to the cloud model.", ["asset"], registry=r)
        self.cloud_tokens = Counter(
            "edgewatch_cloud_tokens", "Tokens used by the cloud model.", ["kind"], registry=r)
        self.cloud_cost = Counter(
            "edgewatch_cloud_cost_usd", "Estimated cloud model cost in US dollars.", registry=r)
        self.outbox_depth = Gauge(
            "edgewatch_outbox_depth", "Escalations waiting in the outbox for the network.", registry=r)
        self.camera_up = Gauge(
            "edgewatch_camera_up", "1 when the camera delivered a usable frame at the last check.",
            ["asset", "camera"], registry=r)
        self.sensor_up = Gauge(
            "edgewatch_sensor_up", "1 when the sensor delivered valid readings at the last check.",
            ["asset", "sensor"], registry=r)
        self.last_verdict = Gauge(
            "edgewatch_last_verdict_timestamp_seconds", "Unix time of the asset's last stored verdict.",
            ["asset"], registry=r)
        self.check_interval = Gauge(
            "edgewatch_check_interval_seconds", "Seconds between the asset's scheduled checks (config).",
            ["asset"], registry=r)
        for asset, interval_s in (check_intervals_s or {}).items():
            self.check_interval.labels(asset=asset).set(interval_s)
        self.storage_up = Gauge(
            "edgewatch_storage_up", "1 when the last verdict was stored, 0 while history refuses writes.",
            registry=r)
        self.storage_problem: str | None = None  # why the last verdict could not be stored
        self.condition = Gauge(
            "edgewatch_condition", "Current condition: 0 ok, 1 warning, 2 fault.", ["asset"], registry=r)
        self.alert_unacknowledged = Gauge(
            "edgewatch_alert_unacknowledged", "1 while the asset has a raised alert nobody acknowledged.",
            ["asset"], registry=r)
        self.maintenance = Gauge(
            "edgewatch_maintenance", "1 while the asset is in planned maintenance (no alerts, no escalations).",
            ["asset"], registry=r)
        self.notifications_pending = Gauge(
            "edgewatch_notifications_pending", "Alert notifications waiting for their receiver.", registry=r)
        self.vibration = Gauge(
            "edgewatch_vibration", "Trended vibration values of the last burst (metric: velocity_rms_mm_s, "
            "envelope_band_rms_g, line_db_outer_race, ...); deriv() shows the trend.",
            ["asset", "sensor", "metric"], registry=r)
        self.breaker_open = Gauge(
            "edgewatch_escalation_breaker_open",
            "1 while the circuit breaker stops cloud calls after repeated failures.", registry=r)
        self.budget_used = Gauge(
            "edgewatch_escalation_budget_used_ratio",
            "Cloud spend in the window over its cap (1 = the budget refuses escalations).",
            ["window"], registry=r)
        Gauge("edgewatch_clock_seconds", "The board's clock (unix time) when scraped: compare with the "
              "scrape time for skew.", registry=r).set_function(time.time)
        Info("edgewatch_build", "Version of edgewatch and the Python it runs on.", registry=r).info(
            {"version": __version__, "python": platform.python_version()})
        for asset in check_intervals_s or {}:  # series exist at 0 from the start, so rate() sees the first verdict
            for condition in Condition:
                self.verdicts.labels(asset=asset, verdict=condition.value)
            self.escalations.labels(asset=asset)
        for kind in ("input", "output"):
            self.cloud_tokens.labels(kind=kind)

    def observe_check(self, asset_id: str, duration_s: float) -> None:
        self.check_seconds.labels(asset=asset_id).observe(duration_s)

    def cloud_usage(self, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        self.cloud_tokens.labels(kind="input").inc(input_tokens)
        self.cloud_tokens.labels(kind="output").inc(output_tokens)
        self.cloud_cost.inc(cost_usd)

    def set_outbox_depth(self, depth: int) -> None:
        self.outbox_depth.set(depth)

    def observe_store(self, asset_id: str, timestamp_s: float, error: str | None) -> None:
        """Whether a verdict reached history: only a stored verdict advances the last-verdict time,
        so the stalled alert fires while nothing can be stored (disk full, read-only database)."""
        self.storage_problem = error
        self.storage_up.set(error is None)
        if error is None:
            self.last_verdict.labels(asset=asset_id).set(timestamp_s)
    def alert_status(self, asset_id: str, status: Mapping[str, Any]) -> None:
        """An ``AlertBook`` listener: the asset's alert and maintenance as gauges."""
        alert = status.get("alert")
        self.alert_unacknowledged.labels(asset=asset_id).set(alert is not None and alert["state"] == "raised")
        self.maintenance.labels(asset=asset_id).set(status.get("mode") == "maintenance")

    def watch_escalation(self, breaker_open: Callable[[], bool],
                         budget_used: Callable[[], Mapping[str, float]]) -> None:
        """Read the escalator's breaker and budget (``{"hour": ratio, "day": ratio}``) at each scrape; a
        ledger that cannot be read (closing, disk trouble) shows as NaN, never as a failed scrape."""

        def used(window: str) -> float:
            try:
                return budget_used()[window]
            except StorageError:
                return math.nan

        self.breaker_open.set_function(lambda: float(breaker_open()))
        for window in ("hour", "day"):
            self.budget_used.labels(window=window).set_function(functools.partial(used, window))

    def watch_rollbacks(self, releases: Callable[[], int], systems: Callable[[], int]) -> None:
        """``edgewatch_rollbacks_total`` (releases, from where the fleet agent keeps it) and
        ``edgewatch_system_rollbacks_total`` (A/B slots, as the health gate noted them): read at each
        scrape from disk, so the counters survive the reloads and reboots a rollback itself causes."""
        self.registry.register(_RollbackCollector(releases, systems))

    def set_notifications_pending(self, pending: int) -> None:
        self.notifications_pending.set(pending)

    def escalated(self, asset_id: str) -> None:
        """Count an escalation decided after the verdict was published (e.g. a forced one)."""
        self.escalations.labels(asset=asset_id).inc()

    # -- VerdictSink ---------------------------------------------------------------------------

    def publish(self, verdict: Verdict) -> None:
        asset = verdict.asset_id
        self.verdicts.labels(asset=asset, verdict=verdict.condition.value).inc()
        if verdict.escalated:
            self.escalations.labels(asset=asset).inc()
        self.condition.labels(asset=asset).set(verdict.condition.rank)
        for item in verdict.evidence:
            # a scored frame or an analysed reading means up; health evidence means it was not usable
            name = item.source.split(":", 1)[-1]
            if item.kind in (EvidenceKind.VISION, EvidenceKind.CAMERA_HEALTH):
                self.camera_up.labels(asset=asset, camera=name).set(item.kind is EvidenceKind.VISION)
            else:
                self.sensor_up.labels(asset=asset, sensor=name).set(item.kind is not EvidenceKind.SENSOR_HEALTH)
            if item.kind is EvidenceKind.VIBRATION:
                for metric, value in trend_values(item.values).items():
                    self.vibration.labels(asset=asset, sensor=name, metric=metric).set(value)

    def close(self) -> None:
        """Nothing to release; present so Metrics is a VerdictSink."""

    def exposition(self) -> bytes:
        """The registry in Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


class _RollbackCollector(Collector):
    def __init__(self, releases: Callable[[], int], systems: Callable[[], int]) -> None:
        self.releases, self.systems = releases, systems

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily("edgewatch_rollbacks", "Releases this board switched to and then went back "
                                  "from by itself (failed health check).", value=self.releases())
        try:
            systems: float = self.systems()
        except StorageError as exc:  # an unreadable note shows as NaN, never as a failed scrape
            log.warning("metrics: %s", exc)
            systems = math.nan
        yield CounterMetricFamily("edgewatch_system_rollbacks", "System updates (A/B slots) that did not pass "
                                  "their health gate: the bootloader went back to the other slot.", value=systems)
