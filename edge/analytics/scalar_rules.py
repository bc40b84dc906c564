"""Scalar channels (temperature, current, pressure): absolute limits, rate of rise, difference to
ambient and a learned baseline, each turned into a condition with a reason carrying numbers. Vibration
levels (edge/analytics/levels.py) are judged by the same rules.

Pure functions over a small state object; the same rules serve every scalar quantity.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from edge.analytics.baseline import EwmaBaseline
from edge.evidence import Condition


@dataclass(frozen=True)
class ScalarRules:
    """Limits for one channel; None switches a rule off."""

    unit: str = ""
    warn_above: float | None = None
    fault_above: float | None = None
    rise_warn_per_min: float | None = None  # e.g. degC per minute
    rise_fault_per_min: float | None = None
    rise_window_s: float = 300.0  # rate of rise is the slope over this window
    ambient_warn_delta: float | None = None  # value - ambient above this: warning
    ambient_fault_delta: float | None = None
    z_warn: float | None = 4.0  # baseline z-score limits (learned normal)
    z_fault: float | None = 6.0
    baseline_alpha: float = 0.01
    baseline_warmup: int = 30
    # z-scores use at least this fraction of the learned mean as the deviation: for a level such
    # as vibration RMS, a steady machine's tiny spread would otherwise make a 5 % change "6 sigma"
    min_relative_std: float = 0.0


@dataclass
class ScalarState:
    """What a channel remembers between readings: recent history and its baseline."""

    baseline: EwmaBaseline
    history: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=512))  # (t_s, value)

    @classmethod
    def for_rules(cls, rules: ScalarRules) -> ScalarState:
        return cls(EwmaBaseline(alpha=rules.baseline_alpha, warmup=rules.baseline_warmup))

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline.to_dict(), "history": [list(item) for item in self.history]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScalarState:
        state = cls(EwmaBaseline.from_dict(data["baseline"]))
        state.history.extend((float(t), float(v)) for t, v in data.get("history", []))
        return state


@dataclass(frozen=True)
class ScalarAssessment:
    condition: Condition
    confidence: float
    reasons: tuple[str, ...]
    values: dict[str, Any]


def assess(
    value: float,
    timestamp_s: float,
    rules: ScalarRules,
    state: ScalarState,
    ambient: float | None = None,
    learn: bool = True,
) -> ScalarAssessment:
    """Judge one healthy reading and learn from it when judged ok (``learn=False``: the caller
    decides, e.g. only when the other analytics found nothing either)."""
    if not math.isfinite(value):
        raise ValueError(f"a scalar reading must be finite, got {value!r}")
    unit = f" {rules.unit}" if rules.unit else ""
    checks: list[tuple[Condition, str]] = []
    values: dict[str, Any] = {"value": value}

    level = _above(value, rules.warn_above, rules.fault_above)
    if level is not Condition.OK:
        limit = rules.fault_above if level is Condition.FAULT else rules.warn_above
        checks.append((level, f"{value:.2f}{unit} is above the {level.value} limit {limit:g}{unit}"))

    state.history.append((timestamp_s, value))
    while state.history and state.history[0][0] < timestamp_s - rules.rise_window_s:
        state.history.popleft()
    rise = _slope_per_min(state.history)
    if rise is not None:
        values["rise_per_min"] = round(rise, 4)
        level = _above(rise, rules.rise_warn_per_min, rules.rise_fault_per_min)
        if level is not Condition.OK:
            checks.append((level, f"rising {rise:.2f}{unit}/min over {rules.rise_window_s:g} s "
                                  f"(limit {rules.rise_warn_per_min}{unit}/min)"))

    if ambient is not None and math.isfinite(ambient):
        delta = value - ambient
        values["above_ambient"] = round(delta, 4)
        level = _above(delta, rules.ambient_warn_delta, rules.ambient_fault_delta)
        if level is not Condition.OK:
            checks.append((level, f"{delta:.2f}{unit} above ambient {ambient:.2f}{unit}"))

    z = state.baseline.zscore(value, min_std=max(1e-9, rules.min_relative_std * abs(state.baseline.mean)))
    if z is not None:
        values["baseline_z"] = round(z, 3)
        values["baseline_mean"] = round(state.baseline.mean, 4)
        level = _above(abs(z), rules.z_warn, rules.z_fault)
        if level is not Condition.OK:
            mean = state.baseline.mean
            # a ratio means something for levels (RMS), not for an offset scale such as degC
            ratio = f" ({value / mean:.2f} x)" if rules.min_relative_std > 0 and mean > 0 else ""
            checks.append((level, f"{value:.4g}{unit} is {z:+.1f} sigma from its learned normal "
                                  f"{mean:.4g}{unit}{ratio}"))

    condition = Condition.worst([c for c, _ in checks])
    reasons: tuple[str, ...]
    if condition is Condition.OK:
        if learn:
            state.baseline.update(value)  # learn only from normal operation
        reasons = (f"{value:.2f}{unit} within limits",)
        confidence = 0.8 if state.baseline.ready else 0.6
    else:
        reasons = tuple(reason for c, reason in checks if c is condition) + tuple(
            reason for c, reason in checks if c is not condition
        )
        confidence = min(0.95, 0.7 + 0.1 * len(checks))
    return ScalarAssessment(condition, confidence, reasons, values)


def _above(value: float, warn: float | None, fault: float | None) -> Condition:
    if fault is not None and value > fault:
        return Condition.FAULT
    if warn is not None and value > warn:
        return Condition.WARNING
    return Condition.OK


def _slope_per_min(history: deque[tuple[float, float]]) -> float | None:
    """Least-squares slope over the window; None until two readings 10 s apart exist."""
    if len(history) < 2 or history[-1][0] - history[0][0] < 10.0:
        return None
    n = len(history)
    mean_t = sum(t for t, _ in history) / n
    mean_v = sum(v for _, v in history) / n
    denominator = sum((t - mean_t) ** 2 for t, _ in history)
    if denominator <= 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in history) / denominator * 60.0
