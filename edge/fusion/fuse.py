"""Fusion: evidence from vision and sensors -> one verdict per asset (pure, no I/O).

Each evidence is read as a three-way distribution — its confidence ``c`` on the condition it names,
the rest split evenly over the other two — and split into two binary likelihood ratios, pooled over
all evidence as weighted log-odds:

    P(abnormal)          = sigmoid(logit(prior_abnormal) + sum_e w_e * a_e)
    P(fault | abnormal)  = sigmoid(                        sum_e w_e * f_e)
    P(ok) = 1 - P(abnormal);  P(fault) = P(abnormal) * P(fault | abnormal);  P(warning) = the rest

    evidence says   a_e (abnormal vs ok)          f_e (fault vs warning, given abnormal)
    ok              -max(0, logit(c))             0
    warning         +logit((1 + c) / 2)           -max(0, -logit((1 - c) / (1 + c)))
    fault           +logit((1 + c) / 2)           +max(0, logit(2c / (1 + c)))

One evidence alone passes its confidence through (fault at 0.8 -> P(fault) = 0.8 with the neutral
prior), agreeing evidence adds up, and the clamps mean no opinion ever argues against its own
condition: evidence of a fault can only raise P(abnormal) and P(fault | abnormal), hence P(fault)
and the expected severity — the invariant the property tests pin.

Kinds that watch different failure modes (a camera on the product's surface, an accelerometer on
the drive's bearing) are declared as ``modes``: each mode pools its own evidence as above, the
verdict is the worst of the modes' verdicts (an ``ok`` from the bearing says nothing about a crack),
and the modes are taken as independent: P(ok) = prod P(ok_m), P(fault) = 1 - prod (1 - P(fault_m)),
so a mode that is unsure lowers the confidence of an ``ok`` instead of being outvoted. Modes with no
evidence this check are left out; without ``modes`` every kind pools in one. Missing evidence (below)
lowers a ``fault`` only when it is of the faulty mode: other modes cannot argue against it.

Evidence that cannot vote (a dead sensor, a dark camera) shrinks the reported confidence by the
share of weight it would have carried (``coverage``) instead of letting silence read as ``ok``.
Rules always win: a matching rule raises the condition to at least its ``then`` value.

``Persistence`` is the only state: it turns pointwise results into raised/cleared conditions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from edge.evidence import Condition, Evidence, EvidenceKind, Verdict
from edge.fusion.config import HEALTH_KINDS, FusionConfig

_MAX_CONFIDENCE = 0.999  # keeps logit finite: no single opinion is certain


@dataclass(frozen=True)
class FusionResult:
    """The pointwise verdict plus the probabilities behind it (persistence and escalation read these)."""

    verdict: Verdict
    p_ok: float
    p_warning: float
    p_fault: float
    coverage: float  # share of voting weight that came from healthy evidence, in [0, 1]
    rule_floor: Condition  # the least severe condition the rules allow

    def probability(self, condition: Condition) -> float:
        return {Condition.OK: self.p_ok, Condition.WARNING: self.p_warning, Condition.FAULT: self.p_fault}[condition]

    def probabilities(self) -> dict[str, float]:
        return {"ok": round(self.p_ok, 4), "warning": round(self.p_warning, 4), "fault": round(self.p_fault, 4)}

    @property
    def expected_severity(self) -> float:
        """0 = surely ok, 2 = surely fault."""
        return self.p_warning + 2.0 * self.p_fault


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _votes(condition: Condition, confidence: float) -> tuple[float, float]:
    """(abnormal-vs-ok, fault-vs-warning) log-likelihood ratios of one opinion, see the module doc."""
    c = min(max(confidence, 1.0 - _MAX_CONFIDENCE), _MAX_CONFIDENCE)
    if condition is Condition.OK:
        return -max(0.0, _logit(c)), 0.0
    abnormal = _logit((1.0 + c) / 2.0)
    if condition is Condition.FAULT:
        return abnormal, max(0.0, _logit(2.0 * c / (1.0 + c)))
    return abnormal, min(0.0, _logit((1.0 - c) / (1.0 + c)))


def _device(evidence: Evidence) -> tuple[str, str]:
    """Which camera or sensor an evidence comes from: 'camera:top' health belongs to 'vision:top'."""
    if evidence.kind in (EvidenceKind.VISION, EvidenceKind.CAMERA_HEALTH):
        return "camera", evidence.source.split(":", 1)[-1]
    return "sensor", evidence.source


def _broken_devices(evidence: Sequence[Evidence]) -> set[tuple[str, str]]:
    return {_device(e) for e in evidence if e.kind in HEALTH_KINDS and e.condition is not Condition.OK}


def trusted_opinions(evidence: Sequence[Evidence]) -> list[Evidence]:
    """Opinions about the machine from cameras and sensors that are healthy this check."""
    broken = _broken_devices(evidence)
    return [e for e in evidence if e.kind not in HEALTH_KINDS and e.condition is not None
            and _device(e) not in broken]


def _cite(evidence: Evidence) -> str:
    if evidence.reasons:
        return f"{evidence.source}: {'; '.join(evidence.reasons)}"
    label = f" '{evidence.fault_type}'" if evidence.fault_type else ""
    state = "unhealthy" if evidence.condition is None else evidence.condition.value
    return f"{evidence.source}: {state}{label} p={evidence.confidence:.2f}"


def _health_mode(config: FusionConfig, evidence: Evidence) -> str | None:
    """The mode a camera's health speaks for (None: a sensor's, whose kind the health does not say)."""
    return config.mode_of(replace(evidence, kind=EvidenceKind.VISION)) if evidence.kind is \
        EvidenceKind.CAMERA_HEALTH else None


def _share(healthy: dict[str | None, float], unhealthy: dict[str | None, float],
           modes: set[str | None] | None) -> float:
    """The share of the voting weight (of ``modes``; None: all) that came from healthy evidence."""
    voted = sum(w for mode, w in healthy.items() if modes is None or mode in modes)
    total = voted + sum(w for mode, w in unhealthy.items() if modes is None or mode in modes)
    return voted / total if total > 0 else 0.0


def fuse(asset_id: str, evidence: list[Evidence], config: FusionConfig, timestamp: float) -> FusionResult:
    """Combine one check's evidence into a pointwise verdict (no memory of earlier checks)."""
    counted = {EvidenceKind(kind) for kind in config.counts}
    # a camera/sensor whose health evidence is bad: its own opinion is not trusted this check
    broken = _broken_devices(evidence)
    opinions = {_device(e) for e in evidence if e.kind not in HEALTH_KINDS}

    pooled: dict[str, tuple[float, float]] = {}  # failure mode -> (abnormal, fault-vs-warning) log-odds
    healthy: dict[str | None, float] = {}  # voting weight per failure mode (None: unknown) ...
    unhealthy: dict[str | None, float] = {}  # ... and the weight that could not vote
    voters: list[Evidence] = []
    silenced: list[Evidence] = []
    for item in evidence:
        weight = config.weight(item)
        if item.kind in HEALTH_KINDS:
            if item.condition is not Condition.OK:
                # counted once per device: through its silenced opinion when there is one
                mode = _health_mode(config, item)
                unhealthy[mode] = unhealthy.get(mode, 0.0) + (0.0 if _device(item) in opinions else weight)
                silenced.append(item)
            continue
        if item.kind not in counted or weight == 0.0:
            continue
        if item.condition is None or _device(item) in broken:
            unhealthy[config.mode_of(item)] = unhealthy.get(config.mode_of(item), 0.0) + weight
            silenced.append(item)
            continue
        healthy[config.mode_of(item)] = healthy.get(config.mode_of(item), 0.0) + weight
        voters.append(item)
        abnormal_vote, fault_vote = _votes(item.condition, item.confidence)
        abnormal_logit, fault_logit = pooled.get(config.mode_of(item), (_logit(config.prior_abnormal), 0.0))
        pooled[config.mode_of(item)] = (abnormal_logit + weight * abnormal_vote, fault_logit + weight * fault_vote)

    p_ok = p_not_fault = 1.0
    fused = Condition.OK
    at_fault: set[str | None] = {None}  # the modes a fault verdict rests on (and those of unknown health)
    for mode, (abnormal_logit, fault_logit) in (pooled or {"": (_logit(config.prior_abnormal), 0.0)}).items():
        p_abnormal = _sigmoid(abnormal_logit)
        p_fault = p_abnormal * _sigmoid(fault_logit)
        p_ok *= 1.0 - p_abnormal
        p_not_fault *= 1.0 - p_fault
        if p_fault >= config.fault_threshold:
            fused = Condition.FAULT
            at_fault.add(mode)
        elif p_abnormal >= config.warning_threshold:
            fused = Condition.worst([fused, Condition.WARNING])
    p_fault = 1.0 - p_not_fault
    p_warning = max(0.0, 1.0 - p_ok - p_fault)
    coverage = _share(healthy, unhealthy, None)

    fired = [(rule, item) for rule in config.rules for item in voters if rule.matches(item)]
    floor = Condition.worst([Condition(rule.then) for rule, _ in fired])
    probabilities = {Condition.OK: p_ok, Condition.WARNING: p_warning, Condition.FAULT: p_fault}

    condition = Condition.worst([fused, floor])
    # missing evidence lowers the confidence as far as it could have argued against the verdict: any
    # of it against ok or warning, against a fault only what pools with the evidence of that fault
    confidence = probabilities[condition] * (_share(healthy, unhealthy, at_fault) if fused is Condition.FAULT
                                             and condition is Condition.FAULT else coverage)
    if fired and floor is condition:
        # the rule's evidence vouches for the verdict as far as that evidence is trusted
        confidence = max(confidence, *(item.confidence for rule, item in fired if Condition(rule.then) is floor))

    reasons = [f"rule '{rule.name}': {_cite(item)}" for rule, item in fired]
    ranked = sorted(voters, key=lambda e: (-(e.condition.rank if e.condition else 0), -e.confidence))
    reasons += [_cite(item) for item in ranked]
    reasons += [f"not counted ({'unhealthy' if item.condition is None else 'camera/sensor unhealthy'}): {_cite(item)}"
                for item in silenced]
    if not voters:
        reasons.append("no healthy evidence: the verdict is a guess")
    elif coverage < 1.0:
        reasons.append(f"confidence lowered: only {coverage:.0%} of the expected evidence is healthy")

    verdict = Verdict(
        asset_id=asset_id,
        condition=condition,
        confidence=round(min(1.0, max(0.0, confidence)), 4),
        reasons=tuple(reasons),
        evidence=tuple(evidence),
        timestamp=timestamp,
    )
    return FusionResult(
        verdict=verdict, p_ok=p_ok, p_warning=p_warning, p_fault=p_fault, coverage=coverage, rule_floor=floor
    )
