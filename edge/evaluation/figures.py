"""The evaluation's figures from labelled checks (pure): is escalating worth it, and does the policy pick
the checks the device got wrong?

Every check carries the local verdict, what the policy did, and the cloud's answer had it been
asked, so three arms are compared on the same checks: local only, always cloud, and the policy.
A verdict is right when it flags (warning or fault) a machine labelled faulty, or says ok about a
healthy one. The cloud's answer settles a verdict by the device's own rule
(``settled_condition``: the cloud wins when more confident, never below what the rules demand).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge.escalation.escalator import settled_condition
from edge.evidence import Condition

TARGET_SHARE_OF_CLOUD = 0.95  # the policy should keep 95 % of always-cloud accuracy ...
TARGET_ESCALATION_RATE = 0.15  # ... while asking about at most 15 % of checks
COVERAGES = (1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.5)  # risk-coverage points reported


@dataclass(frozen=True)
class CheckOutcome:
    """One labelled check: what was true, what the device said, what the cloud would have said."""

    asset_id: str
    case: str
    truth: Condition
    local: Condition
    local_confidence: float
    escalated: bool  # the policy asked the cloud about this check
    cloud: Condition | None = None  # the cloud's answer to this check (None: it gave none)
    cloud_confidence: float = 0.0
    floor: Condition = Condition.OK  # the least severe condition the fusion rules allow
    cost_usd: Mapping[str, float] = field(default_factory=dict)  # asking about this check, per model
    held_back: bool = False  # the policy wanted to ask, but a cool-down, a duplicate frame or the budget held it back

    @property
    def local_right(self) -> bool:
        return right(self.local, self.truth)

    @property
    def with_cloud(self) -> Condition:
        """The verdict had the cloud been asked."""
        if self.cloud is None:
            return self.local
        return settled_condition(self.local, self.local_confidence, self.cloud, self.cloud_confidence, self.floor)

    @property
    def policy(self) -> Condition:
        return self.with_cloud if self.escalated else self.local


def right(condition: Condition, truth: Condition) -> bool:
    return (condition is not Condition.OK) == (truth is not Condition.OK)


@dataclass(frozen=True)
class CoveragePoint:
    """Keep the ``coverage`` most confident checks local and ask the cloud about the rest."""

    coverage: float  # share of checks judged locally
    local_risk: float  # error rate among the checks kept local
    confidence_at_least: float  # the lowest local confidence kept
    accuracy: float  # accuracy of all checks, the rest answered by the cloud


@dataclass(frozen=True)
class Report:
    checks: int
    local_accuracy: float
    cloud_accuracy: float  # always cloud
    policy_accuracy: float
    escalations: int
    fixed: int  # escalations that turned a wrong local verdict right
    broken: int  # escalations that turned a right local verdict wrong
    wasted: int  # escalations about a verdict that was already right and stayed right
    unfixed: int  # escalations that left a wrong verdict wrong
    missed: int  # wrong local verdicts the policy did not escalate
    missed_held_back: int  # of the missed ones, those the policy wanted to ask about but was held back
    missed_confidence: tuple[float, float] | None  # (lowest, highest) local confidence of the missed ones
    right_less_confident: float  # share of right local verdicts less confident than every missed one
    cost_per_1000_usd: Mapping[str, Mapping[str, float]]  # model -> {"policy", "always_cloud"} USD per 1,000 checks
    curve: tuple[CoveragePoint, ...]
    needed: CoveragePoint | None  # the most coverage that reaches the target's accuracy; None: none does
    per_case: Mapping[str, Mapping[str, float]]  # case -> {"checks", "local", "policy", "escalation_rate"}

    @property
    def escalation_rate(self) -> float:
        return self.escalations / self.checks if self.checks else 0.0

    @property
    def target_met(self) -> bool:
        return (self.policy_accuracy >= TARGET_SHARE_OF_CLOUD * self.cloud_accuracy
                and self.escalation_rate <= TARGET_ESCALATION_RATE)


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _accuracy(conditions: Sequence[Condition], truths: Sequence[Condition]) -> float:
    return _share([right(c, t) for c, t in zip(conditions, truths, strict=True)])


def evaluate(outcomes: Sequence[CheckOutcome]) -> Report:
    truths = [o.truth for o in outcomes]
    cloud_accuracy = _accuracy([o.with_cloud for o in outcomes], truths)
    escalated = [o for o in outcomes if o.escalated]
    fixed = sum(not o.local_right and right(o.policy, o.truth) for o in escalated)
    broken = sum(o.local_right and not right(o.policy, o.truth) for o in escalated)
    unfixed = sum(not o.local_right and not right(o.policy, o.truth) for o in escalated)
    curve = risk_coverage(outcomes)
    missed = [o for o in outcomes if not o.escalated and not o.local_right]
    missed_confidence = [o.local_confidence for o in missed]
    return Report(
        checks=len(outcomes),
        local_accuracy=_accuracy([o.local for o in outcomes], truths),
        cloud_accuracy=cloud_accuracy,
        policy_accuracy=_accuracy([o.policy for o in outcomes], truths),
        escalations=len(escalated),
        fixed=fixed,
        broken=broken,
        wasted=len(escalated) - fixed - broken - unfixed,
        unfixed=unfixed,
        missed=len(missed),
        missed_held_back=sum(o.held_back for o in missed),
        missed_confidence=(min(missed_confidence), max(missed_confidence)) if missed else None,
        right_less_confident=_share([o.local_confidence < min(missed_confidence, default=0.0)
                                     for o in outcomes if o.local_right]),
        cost_per_1000_usd=_costs(outcomes),
        curve=tuple(_point(curve, coverage) for coverage in COVERAGES) if outcomes else (),
        needed=next((p for p in curve if p.accuracy >= TARGET_SHARE_OF_CLOUD * cloud_accuracy), None),
        per_case=_per_case(outcomes),
    )


def risk_coverage(outcomes: Sequence[CheckOutcome]) -> list[CoveragePoint]:
    """One point per number of checks kept local, most confident first (n, n-1, ..., 0 kept).

    When low local confidence marks the wrong verdicts, local risk falls fast as coverage drops.
    """
    ranked = sorted(outcomes, key=lambda o: o.local_confidence, reverse=True)
    total = len(ranked)
    points = []
    for kept in range(total, -1, -1):
        local, asked = ranked[:kept], ranked[kept:]
        errors = sum(not o.local_right for o in local)
        right_total = sum(o.local_right for o in local) + sum(right(o.with_cloud, o.truth) for o in asked)
        points.append(CoveragePoint(
            coverage=kept / total if total else 0.0,
            local_risk=errors / kept if kept else 0.0,
            confidence_at_least=local[-1].local_confidence if local else 1.0,
            accuracy=right_total / total if total else 0.0,
        ))
    return points


def _point(curve: Sequence[CoveragePoint], coverage: float) -> CoveragePoint:
    """The curve's point with the most checks kept at or below ``coverage``."""
    return next(p for p in curve if p.coverage <= coverage + 1e-9)


def _costs(outcomes: Sequence[CheckOutcome]) -> dict[str, dict[str, float]]:
    models = sorted({model for o in outcomes for model in o.cost_usd})
    per = 1000.0 / len(outcomes) if outcomes else 0.0
    return {model: {"policy": per * sum(o.cost_usd.get(model, 0.0) for o in outcomes if o.escalated),
                    "always_cloud": per * sum(o.cost_usd.get(model, 0.0) for o in outcomes)} for model in models}


def _per_case(outcomes: Sequence[CheckOutcome]) -> dict[str, dict[str, float]]:
    cases: dict[str, list[CheckOutcome]] = {}
    for outcome in outcomes:
        cases.setdefault(outcome.case or outcome.asset_id, []).append(outcome)
    return {case: {"checks": len(items),
                   "local": _accuracy([o.local for o in items], [o.truth for o in items]),
                   "policy": _accuracy([o.policy for o in items], [o.truth for o in items]),
                   "escalation_rate": _share([o.escalated for o in items]),
                   "missed": sum(not o.escalated and not o.local_right for o in items)}
            for case, items in cases.items()}
