"""Reading -> Evidence for one asset's sensors, keeping each channel's learned state.

The service calls ``evaluate`` with the poller's statuses each check and persists
``state_dict()`` (plain JSON) so baselines survive restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from edge.analytics import bearings, diagnosis, family_normal, fixed_lines, iso, levels, speed
from edge.analytics.scalar_rules import ScalarRules, ScalarState, assess
from edge.analytics.to_evidence import health_evidence, scalar_evidence, vibration_evidence
from edge.evidence import Condition, Evidence, EvidenceKind
from edge.sensors import health
from edge.sensors.base import Reading
from edge.sensors.config import SensorBase
from edge.sensors.poller import SensorStatus

log = logging.getLogger(__name__)

_KIND = {"vibration": EvidenceKind.VIBRATION, "temperature": EvidenceKind.THERMAL}


def source_name(config: SensorBase) -> str:
    return f"{config.quantity}:{config.name}"


def vibration_settings(config: SensorBase) -> tuple[float | None, bearings.DefectOrders | None, iso.ZoneLimits]:
    """Shaft Hz, defect orders and zone limits from a sensor's ``vibration`` section; without
    one, only the overall level is judged (ISO group 2, rigid)."""
    settings = config.vibration
    if settings is None:
        return None, None, iso.ZoneLimits.for_machine()
    if settings.multiples is not None:
        orders: bearings.DefectOrders | None = bearings.DefectOrders(*settings.multiples)
    elif settings.bearing is not None:
        orders = bearings.bearing(settings.bearing)
    else:
        orders = None
    limits = (iso.ZoneLimits(*settings.zone_limits_mm_s) if settings.zone_limits_mm_s is not None
              else iso.ZoneLimits.for_machine(settings.machine_group, settings.foundation))
    return settings.rpm / 60.0, orders, limits


def level_channel(sensor: str, level: levels.Level) -> str:
    """Key of a vibration level's learned state: the sensor name for velocity (as saved before
    the bearing band was trended), ``<sensor>/<level>`` for the others."""
    return sensor if level.name == "velocity" else f"{sensor}/{level.name}"


def lines_channel(sensor: str) -> str:
    """Key of a vibration sensor's envelope-line memory in the saved state."""
    return f"{sensor}/envelope_lines"


def family_channel(sensor: str) -> str:
    """Key of a vibration sensor's learned defect-line normal in the saved state."""
    return f"{sensor}/defect_lines"


def scalar_rules(config: SensorBase, level_unit: str | None = None) -> ScalarRules:
    """Rules for a scalar channel; ``level_unit``: only the learned baseline, for one of a
    vibration sensor's levels (its limits and valid range are about the raw samples in g)."""
    a = config.analytics
    z_warn = a.baseline.z_warn if a.baseline.enabled else None
    z_fault = a.baseline.z_fault if a.baseline.enabled else None
    if level_unit is not None:
        return levels.level_rules(level_unit, z_warn, z_fault, alpha=a.baseline.alpha, warmup=a.baseline.warmup)
    return ScalarRules(
        unit=config.unit, warn_above=config.warn_above, fault_above=config.fault_above,
        rise_warn_per_min=a.rise_warn_per_min, rise_fault_per_min=a.rise_fault_per_min, rise_window_s=a.rise_window_s,
        ambient_warn_delta=a.ambient_warn_delta, ambient_fault_delta=a.ambient_fault_delta,
        baseline_alpha=a.baseline.alpha, baseline_warmup=a.baseline.warmup, z_warn=z_warn, z_fault=z_fault,
    )


class SensorAnalyzer:
    """Analytics for the sensors of one asset; not thread-safe (the check loop owns it)."""

    def __init__(self, sensors: Sequence[SensorBase], state: Mapping[str, Any] | None = None) -> None:
        self.configs = {config.name: config for config in sensors}
        self.states: dict[str, ScalarState] = {}
        self.lines: dict[str, fixed_lines.LineMemory] = {}  # vibration sensor -> envelope lines per speed
        self.families: dict[str, family_normal.FamilyNormal] = {}  # vibration sensor -> its defect lines' normal
        # the check loop may see the same reading twice: judge (and learn from) it only once
        self._last: dict[str, tuple[float, Evidence]] = {}
        for config in sensors:
            channels = ([(level_channel(config.name, level), scalar_rules(config, level.unit))
                         for level in levels.LEVELS]
                        if config.quantity == "vibration" else [(config.name, scalar_rules(config))])
            if config.quantity == "vibration":
                self.lines[config.name] = self._saved_lines(config.name, (state or {}).get(lines_channel(config.name)))
                self.families[config.name] = self._saved_family(config, (state or {}).get(family_channel(config.name)))
            for channel, rules in channels:
                saved = (state or {}).get(channel)
                try:
                    self.states[channel] = (ScalarState.from_dict(saved) if saved is not None
                                            else ScalarState.for_rules(rules))
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("sensor %s: saved baseline unusable (%s); learning again", channel, exc)
                    self.states[channel] = ScalarState.for_rules(rules)

    def evaluate(self, statuses: Mapping[str, SensorStatus]) -> list[Evidence]:
        """One Evidence per configured sensor: unhealthy or missing sensors give SENSOR_HEALTH."""
        evidence = []
        for name, config in self.configs.items():
            status = statuses.get(name)
            if status is None or not status.healthy or status.reading is None:
                problem = "not polled" if status is None else (status.problem or "no reading")
                evidence.append(health_evidence(source_name(config), problem, time.time()))
                continue
            evidence.append(self.analyse(status.reading, statuses))
        return evidence

    def analyse(self, reading: Reading, statuses: Mapping[str, SensorStatus] | None = None) -> Evidence:
        """Judge one reading; bad data or failed analytics become SENSOR_HEALTH, never an exception."""
        config = self.configs[reading.sensor]
        cached = self._last.get(reading.sensor)
        if cached is not None and cached[0] == reading.timestamp:
            return cached[1]
        evidence = self._judge(config, reading, statuses)
        self._last[reading.sensor] = (reading.timestamp, evidence)
        return evidence

    def _judge(self, config: SensorBase, reading: Reading, statuses: Mapping[str, SensorStatus] | None) -> Evidence:
        source = source_name(config)
        trouble = health.problem(config, reading)
        if trouble is not None:
            return health_evidence(source, trouble, reading.timestamp)
        try:
            if config.quantity == "vibration":
                if reading.samples is None or reading.rate_hz is None:
                    problem = "a vibration sensor delivered a scalar, not a burst"
                    return health_evidence(source, problem, reading.timestamp)
                shaft_hz, orders, limits = vibration_settings(config)
                speed_range = config.vibration.speed_range if config.vibration is not None else 0.0
                found = diagnosis.diagnose(reading.samples, reading.rate_hz, shaft_hz, orders, limits, speed_range,
                                           self._measured_shaft_hz(config, statuses))
                found = fixed_lines.discount(found, self.lines[config.name], reading.timestamp)
                found = self._against_family_normal(config, found)
                found = self._against_baseline(config, found, reading.timestamp)
                return vibration_evidence(source, found, reading.timestamp)
            if reading.value is None:
                return health_evidence(source, "a scalar sensor delivered a burst", reading.timestamp)
            ambient = self._ambient(config, statuses)
            result = assess(reading.value, reading.timestamp, scalar_rules(config), self.states[config.name], ambient)
            kind = _KIND.get(config.quantity, EvidenceKind.SENSOR)
            return scalar_evidence(source, kind, config.unit, result, reading.timestamp)
        except ValueError as exc:
            return health_evidence(source, f"analytics rejected the reading: {exc}", reading.timestamp)

    def _against_baseline(
        self, config: SensorBase, found: diagnosis.VibrationDiagnosis, timestamp: float
    ) -> diagnosis.VibrationDiagnosis:
        states = {level.name: self.states[level_channel(config.name, level)] for level in levels.LEVELS}
        rules = {level.name: scalar_rules(config, level.unit) for level in levels.LEVELS}
        return levels.against_normal(found, states, rules, timestamp)

    def _against_family_normal(
        self, config: SensorBase, found: diagnosis.VibrationDiagnosis
    ) -> diagnosis.VibrationDiagnosis:
        """Judged against the defect lines' normal (when the baseline is enabled), which learns,
        like the levels, only from bursts judged ok: a fault seen while it learns never becomes normal."""
        if not config.analytics.baseline.enabled:
            return found
        judged = family_normal.against_normal(found, self.families[config.name])
        if judged.condition is Condition.OK:
            self.families[config.name].learn(judged)
        return judged

    def _measured_shaft_hz(self, config: SensorBase, statuses: Mapping[str, SensorStatus] | None) -> float | None:
        """The speed channel's reading in Hz, or None (then the speed is estimated from the burst).

        A missing, unhealthy or implausible speed channel is logged and not used: the vibration
        is still judged, at the speed its own shaft lines show.
        """
        settings = config.vibration
        if settings is None or settings.speed_sensor is None or statuses is None:
            return None
        status = statuses.get(settings.speed_sensor)
        value = None if status is None or not status.healthy or status.reading is None else status.reading.value
        if value is None:
            log.warning("sensor %s: speed sensor %s has no healthy reading; speed from the burst",
                        config.name, settings.speed_sensor)
            return None
        unit = self.configs[settings.speed_sensor].unit if settings.speed_sensor in self.configs else "rpm"
        speed_hz = value if unit.lower() == "hz" else value / 60.0
        if not abs(speed_hz * 60.0 / settings.rpm - 1.0) <= max(settings.speed_range, speed.DEFAULT_RANGE):
            log.warning("sensor %s: speed sensor %s reads %.0f rpm, far from the nominal %.0f rpm; speed from "
                        "the burst", config.name, settings.speed_sensor, speed_hz * 60.0, settings.rpm)
            return None
        return speed_hz

    def _ambient(self, config: SensorBase, statuses: Mapping[str, SensorStatus] | None) -> float | None:
        name = config.analytics.ambient_sensor
        if name is None or statuses is None:
            return None
        status = statuses.get(name)
        if status is None or not status.healthy or status.reading is None:
            return None
        return status.reading.value

    def _saved_lines(self, sensor: str, saved: Any) -> fixed_lines.LineMemory:
        try:
            return fixed_lines.LineMemory.from_dict(saved) if saved is not None else fixed_lines.LineMemory()
        except (AttributeError, TypeError, ValueError) as exc:
            log.warning("sensor %s: saved envelope lines unusable (%s); learning again", sensor, exc)
            return fixed_lines.LineMemory()

    def _saved_family(self, config: SensorBase, saved: Any) -> family_normal.FamilyNormal:
        learning = config.analytics.baseline
        fresh = family_normal.FamilyNormal(warmup=learning.warmup, alpha=learning.alpha)
        try:
            return family_normal.FamilyNormal.from_dict(saved) if saved is not None else fresh
        except ValueError as exc:
            log.warning("sensor %s: saved defect-line normal unusable (%s); learning again", config.name, exc)
            return fresh

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable learned state, keyed by sensor name (pass back to the constructor)."""
        return {**{name: state.to_dict() for name, state in self.states.items()},
                **{lines_channel(name): memory.to_dict() for name, memory in self.lines.items()},
                **{family_channel(name): normal.to_dict() for name, normal in self.families.items()}}
