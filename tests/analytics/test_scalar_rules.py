"""Scalar-channel analytics: limits, rate of rise, ambient difference, learned baseline, persistence."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.analytics.baseline import EwmaBaseline
from edge.analytics.scalar_rules import ScalarRules, ScalarState, assess
from edge.evidence import Condition


def run(values: list[float], rules: ScalarRules, step_s: float = 10.0, state: ScalarState | None = None,
        ambient: float | None = None) -> list:
    state = state or ScalarState.for_rules(rules)
    return [assess(v, i * step_s, rules, state, ambient) for i, v in enumerate(values)]


def test_absolute_limits() -> None:
    rules = ScalarRules(unit="degC", warn_above=70, fault_above=85, z_warn=None, z_fault=None)
    conditions = [r.condition for r in run([60.0, 75.0, 90.0], rules)]
    assert conditions == [Condition.OK, Condition.WARNING, Condition.FAULT]
    assert "above the fault limit 85 degC" in run([90.0], rules)[0].reasons[0]


def test_rate_of_rise_is_flagged_below_the_absolute_limit() -> None:
    rules = ScalarRules(unit="degC", fault_above=100, rise_warn_per_min=1.0, rise_fault_per_min=3.0,
                        rise_window_s=120, z_warn=None, z_fault=None)
    steady = run([40.0] * 13, rules)
    assert all(r.condition is Condition.OK for r in steady)
    rising = run([40.0 + 0.3 * i for i in range(13)], rules)  # 0.3 degC / 10 s = 1.8 degC/min
    assert rising[-1].condition is Condition.WARNING
    assert rising[-1].values["rise_per_min"] == pytest.approx(1.8, rel=0.01)
    assert "rising 1.80 degC/min" in rising[-1].reasons[0]


def test_difference_to_ambient() -> None:
    rules = ScalarRules(unit="degC", ambient_warn_delta=30, ambient_fault_delta=45, z_warn=None, z_fault=None)
    assert run([60.0], rules, ambient=25.0)[0].condition is Condition.WARNING
    assert run([60.0], rules, ambient=40.0)[0].condition is Condition.OK
    assert run([75.0], rules, ambient=25.0)[0].values["above_ambient"] == pytest.approx(50.0)


def test_baseline_learns_normal_then_flags_departures() -> None:
    rules = ScalarRules(unit="A", baseline_warmup=20, baseline_alpha=0.05, z_warn=4, z_fault=6)
    normal = [10.0 + 0.1 * math.sin(i) for i in range(40)]
    results = run([*normal, 10.05, 12.0], rules)
    assert all(r.condition is Condition.OK for r in results[:-1])
    assert results[-1].condition is Condition.FAULT
    assert results[-1].values["baseline_z"] > 6
    assert "sigma from its learned normal" in results[-1].reasons[0]


def test_baseline_does_not_learn_from_abnormal_readings() -> None:
    rules = ScalarRules(baseline_warmup=5, z_warn=3, z_fault=5)
    state = ScalarState.for_rules(rules)
    run([1.0, 1.1, 0.9, 1.0, 1.05, 0.95], rules, state=state)
    mean_before = state.baseline.mean
    run([50.0] * 20, rules, state=state)  # a sustained fault stays a fault: not absorbed
    assert state.baseline.mean == pytest.approx(mean_before)


def test_state_round_trips_through_json() -> None:
    rules = ScalarRules(baseline_warmup=3)
    state = ScalarState.for_rules(rules)
    run([1.0, 2.0, 3.0, 2.0], rules, state=state)
    restored = ScalarState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored.baseline == state.baseline
    assert list(restored.history) == list(state.history)
    with pytest.raises(ValueError, match="malformed"):
        EwmaBaseline.from_dict({"mean": 1.0})


def test_non_finite_value_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        assess(float("nan"), 0.0, ScalarRules(), ScalarState.for_rules(ScalarRules()))


values_or_garbage = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([math.nan, math.inf, -math.inf]))


@settings(max_examples=60, deadline=None)
@given(st.lists(values_or_garbage, min_size=1, max_size=60))
def test_baseline_ignores_garbage_and_stays_inside_what_it_saw(values: list[float]) -> None:
    baseline = EwmaBaseline(alpha=0.1, warmup=2)
    for value in values:
        baseline.update(value)
    seen = [v for v in values if math.isfinite(v)]
    assert baseline.count == len(seen)
    if seen:
        assert min(seen) - 1e-6 <= baseline.mean <= max(seen) + 1e-6
        assert baseline.var >= 0.0 and math.isfinite(baseline.var)
