"""Fusion: truth tables, rules, unhealthy evidence, calibration pass-through and the monotonicity invariant."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.evidence import Condition, Evidence, EvidenceKind
from edge.fusion.config import FailureMode, FusionConfig, FusionRule, PersistenceConfig
from edge.fusion.fuse import fuse
from edge.fusion.persistence import Persistence

OK, WARNING, FAULT = Condition.OK, Condition.WARNING, Condition.FAULT


def vision(condition: Condition | None, confidence: float, **values: object) -> Evidence:
    return Evidence("vision:top", EvidenceKind.VISION, condition, confidence, values=values)


def vibration(condition: Condition | None, confidence: float, zone: str = "A") -> Evidence:
    return Evidence("vibration:drive_end", EvidenceKind.VIBRATION, condition, confidence,
                    values={"zone": zone, "velocity_rms_mm_s": 1.0})


def thermal(condition: Condition | None, confidence: float) -> Evidence:
    return Evidence("temperature:motor", EvidenceKind.THERMAL, condition, confidence)


CONFIG = FusionConfig()


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        ([vision(OK, 0.9), vibration(OK, 0.9)], OK),
        ([vision(FAULT, 0.9), vibration(FAULT, 0.9)], FAULT),
        ([vision(WARNING, 0.9), vibration(WARNING, 0.8)], WARNING),
        ([vision(FAULT, 0.9), vibration(OK, 0.6)], FAULT),  # strong fault beats weak ok
        ([vision(FAULT, 0.6), vibration(OK, 0.9)], OK),  # strong ok beats weak fault
        ([vision(WARNING, 0.8), vibration(FAULT, 0.8)], WARNING),  # abnormal; fault vs warning cancel
        ([vision(OK, 0.9), vibration(FAULT, 0.95, zone="D")], FAULT),  # the zone D rule wins
        ([vision(OK, 0.9), vibration(WARNING, 0.7, zone="C"), thermal(WARNING, 0.8)], WARNING),
        ([vision(OK, 0.9), vibration(FAULT, 0.5)], OK),
        ([vision(OK, 0.5), vibration(OK, 0.3)], WARNING),  # ok no better than a coin flip: prior tie
    ],
)
def test_truth_table(evidence: list[Evidence], expected: Condition) -> None:
    assert fuse("pump", evidence, CONFIG, 0.0).verdict.condition is expected


def test_single_evidence_passes_its_confidence_through() -> None:
    result = fuse("pump", [vibration(FAULT, 0.8)], CONFIG, 0.0)
    assert result.verdict.condition is FAULT and result.p_fault == pytest.approx(0.8)
    assert result.verdict.confidence == pytest.approx(0.8, abs=1e-3)
    warning = fuse("pump", [thermal(WARNING, 0.7)], CONFIG, 0.0)
    assert warning.verdict.condition is WARNING and warning.p_warning == pytest.approx(0.7)
    ok = fuse("pump", [vision(OK, 0.83)], CONFIG, 0.0)
    assert ok.verdict.condition is OK and ok.verdict.confidence == pytest.approx(0.83, abs=1e-3)


def test_agreeing_evidence_is_more_confident_than_either_alone() -> None:
    alone = fuse("pump", [vision(FAULT, 0.8)], CONFIG, 0.0).verdict.confidence
    together = fuse("pump", [vision(FAULT, 0.8), vibration(FAULT, 0.8)], CONFIG, 0.0).verdict.confidence
    assert together > alone


def test_reasons_cite_evidence_and_rules() -> None:
    evidence = [
        Evidence("vision:top", EvidenceKind.VISION, OK, 0.9, reasons=("vision: 'normal' p=0.90 (zero-shot)",)),
        Evidence("vibration:de", EvidenceKind.VIBRATION, FAULT, 0.9, reasons=("vibration zone D, 12.1 mm/s",),
                 values={"zone": "D"}),
    ]
    verdict = fuse("pump", evidence, CONFIG, 5.0).verdict
    assert verdict.condition is FAULT and verdict.timestamp == 5.0
    assert verdict.reasons[0].startswith("rule 'vibration zone D': vibration:de: vibration zone D, 12.1 mm/s")
    assert any("'normal' p=0.90" in reason for reason in verdict.reasons)
    assert verdict.confidence == pytest.approx(0.9)


def test_dead_sensor_lowers_confidence_instead_of_a_false_ok() -> None:
    healthy = fuse("pump", [vision(OK, 0.9), vibration(OK, 0.9)], CONFIG, 0.0).verdict
    degraded = fuse("pump", [vision(OK, 0.9), vibration(None, 0.0)], CONFIG, 0.0).verdict
    assert degraded.confidence < healthy.confidence
    assert degraded.confidence == pytest.approx(0.9 * 0.5, abs=1e-3)
    assert any("unhealthy" in reason for reason in degraded.reasons)


def test_dark_camera_silences_its_vision_opinion() -> None:
    dark = Evidence("camera_health:top", EvidenceKind.CAMERA_HEALTH, None, 1.0, reasons=("frame is black",))
    result = fuse("pump", [vision(OK, 0.99), dark], CONFIG, 0.0)
    assert result.coverage == 0.0 and result.verdict.confidence == 0.0
    assert any("frame is black" in reason for reason in result.verdict.reasons)
    assert any("no healthy evidence" in reason for reason in result.verdict.reasons)
    half = fuse("pump", [vision(OK, 0.99), dark, vibration(OK, 0.9)], CONFIG, 0.0)
    assert half.coverage == pytest.approx(0.5)  # one device of two is out, counted once
    sensor_down = Evidence("vibration:drive_end", EvidenceKind.SENSOR_HEALTH, None, 0.9, reasons=("stale",))
    assert fuse("pump", [vision(OK, 0.99), sensor_down], CONFIG, 0.0).coverage == pytest.approx(0.5)
    healthy_camera = Evidence("camera_health:top", EvidenceKind.CAMERA_HEALTH, OK, 1.0)
    assert fuse("pump", [vision(OK, 0.99), healthy_camera], CONFIG, 0.0).verdict.confidence == pytest.approx(0.99)


def test_only_counted_kinds_vote_and_weights_apply() -> None:
    evidence = [vision(FAULT, 0.9), vibration(OK, 0.9)]
    assert fuse("pump", evidence, FusionConfig(counts=["vibration"]), 0.0).verdict.condition is OK
    assert fuse("pump", evidence, FusionConfig(weights={"vision": 3.0}), 0.0).verdict.condition is FAULT
    assert fuse("pump", evidence, FusionConfig(weights={"vibration:drive_end": 3.0}), 0.0).verdict.condition is OK


def test_rule_on_value_above() -> None:
    rule = FusionRule(name="hot", kind="thermal", value="temp_c", above=90.0, then="warning")
    hot = Evidence("temperature:motor", EvidenceKind.THERMAL, OK, 0.7, values={"temp_c": 95.0})
    config = FusionConfig(rules=[rule])
    assert fuse("pump", [hot, vision(OK, 0.9)], config, 0.0).verdict.condition is WARNING
    cool = Evidence("temperature:motor", EvidenceKind.THERMAL, OK, 0.7, values={"temp_c": 60.0})
    assert fuse("pump", [cool, vision(OK, 0.9)], config, 0.0).verdict.condition is OK


def test_config_rejects_bad_rules_and_weights() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        FusionRule(name="x", value="zone", then="fault")
    with pytest.raises(ValueError, match="needs 'condition_at_least'"):
        FusionRule(name="x", then="fault")
    with pytest.raises(ValueError, match="finite"):
        FusionConfig(weights={"vision": float("nan")})


# --- the invariant: more evidence of a fault never lowers P(fault), severity or the condition ------

conditions = st.sampled_from([OK, WARNING, FAULT, None])
kinds = st.sampled_from([EvidenceKind.VISION, EvidenceKind.VIBRATION, EvidenceKind.THERMAL, EvidenceKind.SENSOR])
evidence_items = st.builds(
    lambda kind, index, condition, confidence: Evidence(f"{kind.value}:{index}", kind, condition, confidence),
    kinds, st.integers(0, 3), conditions, st.floats(0.0, 1.0),
)
weights = st.dictionaries(st.sampled_from(["vision", "vibration", "thermal", "sensor"]), st.floats(0.0, 5.0),
                          max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.lists(evidence_items, max_size=6), st.floats(0.0, 1.0), kinds, weights)
def test_more_fault_evidence_never_lowers_fault_probability(
    evidence: list[Evidence], confidence: float, kind: EvidenceKind, weight_map: dict[str, float]
) -> None:
    config = FusionConfig(weights=weight_map)
    before = fuse("a", evidence, config, 0.0)
    extra = Evidence(f"{kind.value}:new", kind, FAULT, confidence, values={"zone": "D"})
    after = fuse("a", [*evidence, extra], config, 0.0)
    assert after.p_fault >= before.p_fault - 1e-12
    assert after.expected_severity >= before.expected_severity - 1e-12
    assert after.verdict.condition.rank >= before.verdict.condition.rank


@settings(max_examples=200, deadline=None)
@given(st.lists(evidence_items, max_size=5), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_a_more_confident_fault_never_lowers_fault_probability(
    evidence: list[Evidence], low: float, high: float
) -> None:
    low, high = min(low, high), max(low, high)
    weak = fuse("a", [*evidence, vibration(FAULT, low)], CONFIG, 0.0)
    strong = fuse("a", [*evidence, vibration(FAULT, high)], CONFIG, 0.0)
    assert strong.p_fault >= weak.p_fault - 1e-12
    assert strong.verdict.condition.rank >= weak.verdict.condition.rank


@settings(max_examples=200, deadline=None)
@given(st.lists(evidence_items, max_size=6))
def test_probabilities_are_a_distribution_and_confidence_in_range(evidence: list[Evidence]) -> None:
    result = fuse("a", evidence, CONFIG, 0.0)
    assert min(result.p_ok, result.p_warning, result.p_fault) >= 0.0
    assert result.p_ok + result.p_warning + result.p_fault == pytest.approx(1.0)
    assert 0.0 <= result.verdict.confidence <= 1.0 and 0.0 <= result.coverage <= 1.0


# --- persistence ------------------------------------------------------------------------------------

def _result(condition: Condition):
    confidence = 0.9
    item = vibration(condition, confidence)
    return fuse("pump", [item], FusionConfig(rules=[]), 0.0)


def test_fault_is_raised_only_after_persisting_and_clears_with_hysteresis() -> None:
    tracker = Persistence(PersistenceConfig(raise_after=3, clear_after=2))
    sequence = [FAULT, FAULT, OK, FAULT, FAULT, FAULT, OK, FAULT, OK, OK, OK]
    reported = [tracker.update(_result(c)).condition for c in sequence]
    assert reported == [OK, OK, OK, OK, OK, FAULT, FAULT, FAULT, FAULT, OK, OK]


def test_persistence_explains_a_held_back_fault() -> None:
    tracker = Persistence(PersistenceConfig(raise_after=2, clear_after=2))
    first = tracker.update(_result(FAULT))
    assert first.condition is OK and "fault seen 1 of 2 checks needed" in first.reasons[-1]
    second = tracker.update(_result(FAULT))
    assert second.condition is FAULT and "raised" in second.reasons[-1]
    assert tracker.to_dict()["reported"] == "fault"


def test_persistence_clears_fault_to_warning_not_straight_to_ok() -> None:
    tracker = Persistence(PersistenceConfig(raise_after=1, clear_after=2))
    assert tracker.update(_result(FAULT)).condition is FAULT
    assert tracker.update(_result(WARNING)).condition is FAULT
    assert tracker.update(_result(OK)).condition is WARNING


def test_a_rule_raises_at_once_and_clears_with_hysteresis() -> None:
    tracker = Persistence(CONFIG.persistence)  # defaults: raise after 3, clear after 5
    zone_d = tracker.update(fuse("pump", [vision(OK, 0.9), vibration(OK, 0.6, zone="D")], CONFIG, 0.0))
    assert zone_d.condition is FAULT and zone_d.confidence >= 0.6
    assert "rule 'vibration zone D'" in zone_d.reasons[0] and "raised at once: a rule matched" in zone_d.reasons[-1]
    calm = [tracker.update(fuse("pump", [vibration(OK, 0.9)], CONFIG, 0.0)).condition for _ in range(5)]
    assert calm == [FAULT, FAULT, FAULT, FAULT, OK]
    # the pooled evidence still has to persist: a fault the rules do not name waits for 3 checks
    pooled = [tracker.update(fuse("pump", [vibration(FAULT, 0.9)], CONFIG, 0.0)).condition for _ in range(3)]
    assert pooled == [OK, OK, FAULT]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([OK, WARNING, FAULT]), st.sampled_from(["A", "C", "D"])),
                min_size=1, max_size=15),
       st.integers(1, 4), st.integers(1, 4))
def test_the_reported_condition_is_never_below_a_matching_rule(
    checks: list[tuple[Condition, str]], raise_after: int, clear_after: int
) -> None:
    tracker = Persistence(PersistenceConfig(raise_after=raise_after, clear_after=clear_after))
    for condition, zone in checks:
        result = fuse("pump", [vibration(condition, 0.9, zone=zone)], CONFIG, 0.0)
        assert tracker.update(result).condition.rank >= result.rule_floor.rank


def test_fused_confidence_is_calibrated_for_independent_calibrated_sources() -> None:
    """Simulate 1-3 independent sources, each right with the probability it states (else naming one of
    the other conditions at random); the fused confidence must match the fused verdict's hit rate."""
    import numpy as np

    rng = np.random.default_rng(0)
    kinds = [EvidenceKind.VISION, EvidenceKind.VIBRATION, EvidenceKind.THERMAL]
    conditions = [OK, WARNING, FAULT]
    confidences, hits = [], []
    for _ in range(4000):
        truth = int(rng.integers(3))
        evidence = []
        for index, kind in enumerate(kinds[: int(rng.integers(1, 4))]):
            stated = float(rng.uniform(0.34, 0.95))
            said = truth if rng.random() < stated else int(rng.choice([c for c in range(3) if c != truth]))
            evidence.append(Evidence(f"{kind.value}:{index}", kind, conditions[said], stated))
        verdict = fuse("a", evidence, FusionConfig(rules=[]), 0.0).verdict
        confidences.append(verdict.confidence)
        hits.append(verdict.condition is conditions[truth])
    confidence, hit = np.array(confidences), np.array(hits, dtype=float)
    bins = np.minimum((confidence * 10).astype(int), 9)
    ece = sum(abs(confidence[bins == b].mean() - hit[bins == b].mean()) * (bins == b).mean()
              for b in range(10) if (bins == b).any())
    assert ece < 0.05, f"expected calibration error {ece:.3f}"


# --- failure modes: kinds that watch different faults are judged apart ------------------------------

SURFACE_AND_BEARING = FusionConfig(modes=[FailureMode(name="surface", kinds=["vision"]),
                                          FailureMode(name="bearing", kinds=["vibration"])])


def test_an_ok_from_the_bearing_does_not_cancel_a_camera_fault() -> None:
    evidence = [vision(FAULT, 0.8), vibration(OK, 0.95)]
    assert fuse("pump", evidence, CONFIG, 0.0).verdict.condition is OK  # pooled: the confident ok wins
    apart = fuse("pump", evidence, SURFACE_AND_BEARING, 0.0)
    assert apart.verdict.condition is FAULT and apart.p_fault >= 0.8  # the bearing adds its own small risk
    assert fuse("pump", [vision(WARNING, 0.7), vibration(OK, 0.95)], SURFACE_AND_BEARING, 0.0).verdict.condition \
        is WARNING


def test_ok_across_modes_is_as_sure_as_all_modes_together() -> None:
    result = fuse("pump", [vision(OK, 0.6), vibration(OK, 0.9)], SURFACE_AND_BEARING, 0.0)
    assert result.verdict.condition is OK and result.p_ok == pytest.approx(0.54)
    assert result.verdict.confidence == pytest.approx(0.54, abs=1e-3)  # pooled, the sure bearing hid the camera
    assert fuse("pump", [vision(OK, 0.6), vibration(OK, 0.9)], CONFIG, 0.0).verdict.confidence > 0.9


def test_kinds_not_in_a_mode_pool_together_and_a_mode_without_evidence_is_left_out() -> None:
    config = FusionConfig(modes=[FailureMode(name="surface", kinds=["vision"])])
    pooled = fuse("pump", [vibration(FAULT, 0.6), thermal(OK, 0.9)], config, 0.0)
    assert pooled.verdict.condition is OK  # vibration and thermal share the unnamed mode; no vision: no factor
    assert pooled.p_ok == pytest.approx(fuse("pump", [vibration(FAULT, 0.6), thermal(OK, 0.9)], CONFIG, 0.0).p_ok)


def test_config_rejects_a_kind_in_two_modes() -> None:
    with pytest.raises(ValueError, match="one mode each"):
        FusionConfig(modes=[FailureMode(name="a", kinds=["vision"]), FailureMode(name="b", kinds=["vision"])])
    with pytest.raises(ValueError, match="failure mode names"):
        FusionConfig(modes=[FailureMode(name="a", kinds=["vision"]), FailureMode(name="a", kinds=["thermal"])])


all_kinds = ["vision", "vibration", "thermal", "sensor"]
mode_configs = st.lists(st.integers(0, 2), min_size=4, max_size=4).map(
    lambda groups: FusionConfig(modes=[FailureMode(name=f"m{g}", kinds=[k for k, gk in zip(all_kinds, groups,
                                                                                               strict=True) if gk == g])
                                       for g in sorted(set(groups))]))


@settings(max_examples=200, deadline=None)
@given(st.lists(evidence_items, max_size=6))
def test_one_mode_of_every_kind_is_the_default_pooling(evidence: list[Evidence]) -> None:
    one = fuse("a", evidence, FusionConfig(modes=[FailureMode(name="all", kinds=all_kinds)]), 0.0)
    default = fuse("a", evidence, CONFIG, 0.0)
    assert one.verdict == default.verdict and one.p_fault == pytest.approx(default.p_fault)


@settings(max_examples=300, deadline=None)
@given(st.lists(evidence_items, max_size=6), st.floats(0.0, 1.0), kinds, mode_configs)
def test_with_modes_more_fault_evidence_never_lowers_fault_probability(
    evidence: list[Evidence], confidence: float, kind: EvidenceKind, config: FusionConfig
) -> None:
    before = fuse("a", evidence, config, 0.0)
    after = fuse("a", [*evidence, Evidence(f"{kind.value}:new", kind, FAULT, confidence)], config, 0.0)
    assert after.p_fault >= before.p_fault - 1e-12
    assert after.expected_severity >= before.expected_severity - 1e-12
    assert after.verdict.condition.rank >= before.verdict.condition.rank


@settings(max_examples=200, deadline=None)
@given(st.lists(evidence_items, max_size=5), st.floats(0.0, 1.0), st.floats(0.0, 1.0), mode_configs)
def test_with_modes_a_more_confident_fault_never_lowers_severity(
    evidence: list[Evidence], low: float, high: float, config: FusionConfig
) -> None:
    low, high = min(low, high), max(low, high)
    weak = fuse("a", [*evidence, vision(FAULT, low)], config, 0.0)
    strong = fuse("a", [*evidence, vision(FAULT, high)], config, 0.0)
    assert strong.p_fault >= weak.p_fault - 1e-12 and strong.expected_severity >= weak.expected_severity - 1e-12
    assert strong.verdict.condition.rank >= weak.verdict.condition.rank


@settings(max_examples=200, deadline=None)
@given(st.lists(evidence_items, max_size=6), mode_configs)
def test_with_modes_probabilities_are_a_distribution(evidence: list[Evidence], config: FusionConfig) -> None:
    result = fuse("a", evidence, config, 0.0)
    assert min(result.p_ok, result.p_warning, result.p_fault) >= 0.0
    assert result.p_ok + result.p_warning + result.p_fault == pytest.approx(1.0)
    assert 0.0 <= result.verdict.confidence <= 1.0


def test_a_dark_camera_does_not_lower_a_bearing_fault_it_could_not_have_argued_against() -> None:
    dark = Evidence("camera:top", EvidenceKind.CAMERA_HEALTH, FAULT, 1.0, reasons=("frame too dark",))
    dead = Evidence("sensor:drive_end", EvidenceKind.SENSOR_HEALTH, FAULT, 1.0, reasons=("flat at 0 g",))
    pooled = fuse("pump", [vibration(FAULT, 0.92), dark], CONFIG, 0.0).verdict
    assert pooled.condition is FAULT and pooled.confidence == pytest.approx(0.46, abs=1e-3)  # its ok could cancel
    apart = fuse("pump", [vibration(FAULT, 0.92), dark], SURFACE_AND_BEARING, 0.0).verdict
    assert apart.condition is FAULT and apart.confidence == pytest.approx(0.92, abs=1e-3)
    healthy = fuse("pump", [vision(OK, 0.9), dead], SURFACE_AND_BEARING, 0.0).verdict
    assert healthy.condition is OK and healthy.confidence == pytest.approx(0.45, abs=1e-3)  # the bearing is unknown
