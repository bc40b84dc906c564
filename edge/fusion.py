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

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import Field, model_validator

from edge.config.section import Section, require_unique
from edge.evidence import Condition, Evidence, EvidenceKind, Verdict

_HEALTH_KINDS = frozenset({EvidenceKind.CAMERA_HEALTH, EvidenceKind.SENSOR_HEALTH})
VotingKind = Literal["vision", "vibration", "thermal", "sensor"]
_VOTING_KINDS: tuple[VotingKind, ...] = ("vision", "vibration", "thermal", "sensor")
_MAX_CONFIDENCE = 0.999  # keeps logit finite: no single opinion is certain


class FusionRule(Section):
    """'When this evidence says this, the verdict is at least that', whatever the rest says."""

    name: str = Field(min_length=1, description="Shown in the verdict's reasons.")
    kind: Literal["vision", "vibration", "thermal", "sensor"] | None = Field(
        None, description="Only evidence of this kind matches."
    )
    source: str = Field("*", description="Glob on the evidence source, e.g. 'vibration:*'.")
    condition_at_least: Literal["warning", "fault"] | None = Field(
        None, description="The evidence's own condition must be at least this."
    )
    value: str | None = Field(None, description="Key in the evidence's values to compare, e.g. 'zone'.")
    equals: str | float | None = Field(None, description="Match when values[value] equals this.")
    above: float | None = Field(None, description="Match when values[value] is above this.")
    min_confidence: float = Field(0.0, ge=0, le=1, description="Ignore evidence less confident than this.")
    then: Literal["warning", "fault"] = Field(description="The least severe verdict when the rule matches.")

    @model_validator(mode="after")
    def _has_test(self) -> FusionRule:
        if self.value is None and (self.equals is not None or self.above is not None):
            raise ValueError("'equals'/'above' need 'value' naming the evidence value to compare")
        if self.value is not None and (self.equals is None) == (self.above is None):
            raise ValueError("with 'value', give exactly one of 'equals' or 'above'")
        if self.value is None and self.condition_at_least is None:
            raise ValueError("a rule needs 'condition_at_least' or 'value' with 'equals'/'above'")
        return self

    def matches(self, evidence: Evidence) -> bool:
        if evidence.condition is None or evidence.kind in _HEALTH_KINDS:
            return False
        if self.kind is not None and evidence.kind.value != self.kind:
            return False
        if not fnmatch.fnmatchcase(evidence.source, self.source) or evidence.confidence < self.min_confidence:
            return False
        if self.condition_at_least is not None and evidence.condition.rank < Condition(self.condition_at_least).rank:
            return False
        if self.value is None:
            return True
        found = evidence.values.get(self.value)
        if self.equals is not None:
            return found is not None and str(found) == str(self.equals)
        return isinstance(found, (int, float)) and math.isfinite(found) and found > (self.above or 0.0)


def _default_rules() -> list[FusionRule]:
    return [
        FusionRule(name="vibration zone D", kind="vibration", value="zone", equals="D", then="fault"),
    ]


class PersistenceConfig(Section):
    raise_after: int = Field(3, ge=1, description="Consecutive checks at a worse condition before it is raised "
                                 "(a matching rule raises at once).")
    clear_after: int = Field(5, ge=1, description="Consecutive better checks before a raised condition clears.")


class FailureMode(Section):
    """Evidence kinds that watch the same way of failing: they pool; other modes cannot outvote them."""

    name: str = Field(min_length=1, description="What fails, e.g. 'surface' or 'bearing'.")
    kinds: list[VotingKind] = Field(min_length=1, description="Evidence kinds that watch this failure mode.")


class FusionConfig(Section):
    """Per-asset fusion settings (the asset's ``fusion:`` section)."""

    counts: list[VotingKind] = Field(
        default_factory=lambda: list(_VOTING_KINDS), description="Evidence kinds that vote on the verdict."
    )
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="Weight per evidence kind ('vibration') or exact source ('vibration:drive_end'); default 1.",
    )
    prior_abnormal: float = Field(0.5, gt=0, lt=1, description="P(warning or fault) before any evidence "
                                  "(of each failure mode, with modes).")
    fault_threshold: float = Field(0.5, gt=0, lt=1, description="P(fault) at or above which the verdict is fault.")
    warning_threshold: float = Field(0.5, gt=0, lt=1, description="P(abnormal) at or above which it is warning.")
    rules: list[FusionRule] = Field(default_factory=_default_rules, description="Rules that always win.")
    modes: list[FailureMode] = Field(default_factory=list, description="Failure modes watched by different "
                                     "evidence kinds, judged apart (kinds not listed pool in one more mode); "
                                     "empty: all kinds pool.")
    persistence: PersistenceConfig = Field(default_factory=PersistenceConfig, description="Raise/clear hysteresis.")

    @model_validator(mode="after")
    def _weights_valid(self) -> FusionConfig:
        bad = sorted(key for key, weight in self.weights.items() if not (math.isfinite(weight) and weight >= 0))
        if bad:
            raise ValueError(f"weights must be finite and >= 0: {', '.join(bad)}")
        require_unique([mode.name for mode in self.modes], "failure mode names")
        require_unique([kind for mode in self.modes for kind in mode.kinds], "kinds in failure modes (one mode each)")
        return self

    def mode_of(self, evidence: Evidence) -> str:
        """The failure mode an opinion speaks for ('' = the mode of every kind not listed)."""
        return next((mode.name for mode in self.modes if evidence.kind.value in mode.kinds), "")

    def weight(self, evidence: Evidence) -> float:
        return self.weights.get(evidence.source, self.weights.get(evidence.kind.value, 1.0))


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
    return {_device(e) for e in evidence if e.kind in _HEALTH_KINDS and e.condition is not Condition.OK}


def trusted_opinions(evidence: Sequence[Evidence]) -> list[Evidence]:
    """Opinions about the machine from cameras and sensors that are healthy this check."""
    broken = _broken_devices(evidence)
    return [e for e in evidence if e.kind not in _HEALTH_KINDS and e.condition is not None
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
    opinions = {_device(e) for e in evidence if e.kind not in _HEALTH_KINDS}

    pooled: dict[str, tuple[float, float]] = {}  # failure mode -> (abnormal, fault-vs-warning) log-odds
    healthy: dict[str | None, float] = {}  # voting weight per failure mode (None: unknown) ...
    unhealthy: dict[str | None, float] = {}  # ... and the weight that could not vote
    voters: list[Evidence] = []
    silenced: list[Evidence] = []
    for item in evidence:
        weight = config.weight(item)
        if item.kind in _HEALTH_KINDS:
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


@dataclass
class Persistence:
    """Hysteresis between pointwise results and the reported condition of one asset.

    A worse condition is raised only after ``raise_after`` consecutive checks at least that bad;
    a raised condition clears only after ``clear_after`` consecutive checks better than it, and
    then drops to the worst condition seen during those checks.

    The wait before raising is for the pooled evidence, whose single checks can be noise. A rule
    always wins, so its floor (``FusionResult.rule_floor``) is raised in the check it fires; once
    raised it clears like any other condition, so a reading hovering at a rule's edge does not
    flap the alarm.
    """

    config: PersistenceConfig
    reported: Condition = Condition.OK
    _history: list[Condition] = field(default_factory=list)

    def update(self, result: FusionResult) -> Verdict:
        raw = result.verdict.condition
        keep = max(self.config.raise_after, self.config.clear_after)
        self._history = [*self._history, raw][-keep:]
        previous = self.reported

        for level in (Condition.FAULT, Condition.WARNING):
            recent = self._history[-self.config.raise_after:]
            if level.rank > self.reported.rank and len(recent) == self.config.raise_after and all(
                c.rank >= level.rank for c in recent
            ):
                self.reported = level
                break
        else:
            recent = self._history[-self.config.clear_after:]
            if len(recent) == self.config.clear_after and all(c.rank < self.reported.rank for c in recent):
                self.reported = Condition.worst(recent)
        by_rule = result.rule_floor.rank > self.reported.rank
        if by_rule:
            self.reported = result.rule_floor

        if self.reported is raw and previous is raw:
            return result.verdict
        note = self._note(raw, previous, by_rule)
        confidence = result.probability(self.reported) * result.coverage
        if self.reported is raw:
            confidence = result.verdict.confidence
        return replace(
            result.verdict,
            condition=self.reported,
            confidence=round(confidence, 4),
            reasons=(*result.verdict.reasons, note),
        )

    def _note(self, raw: Condition, previous: Condition, by_rule: bool) -> str:
        if by_rule and self.reported.rank > previous.rank:
            return f"{self.reported.value} raised at once: a rule matched"
        if self.reported.rank > previous.rank:
            return f"{self.reported.value} raised: seen in {self.config.raise_after} consecutive checks"
        if self.reported.rank < previous.rank:
            return f"{previous.value} cleared to {self.reported.value} after {self.config.clear_after} better checks"
        if raw.rank > self.reported.rank:
            streak = 0
            for c in reversed(self._history):
                if c.rank < raw.rank:
                    break
                streak += 1
            return f"{raw.value} seen {streak} of {self.config.raise_after} checks needed; still {self.reported.value}"
        return f"{raw.value} not yet for {self.config.clear_after} checks; still {self.reported.value}"

    def to_dict(self) -> dict[str, Any]:
        return {"reported": self.reported.value, "history": [c.value for c in self._history]}
