"""The fusion part of an asset's config: evidence weights, failure modes, rules, persistence."""

from __future__ import annotations

import fnmatch
import math
from typing import Literal

from pydantic import Field, model_validator

from edge.config.section import Section, require_unique
from edge.evidence import Condition, Evidence, EvidenceKind

VotingKind = Literal["vision", "vibration", "thermal", "sensor"]
VOTING_KINDS: tuple[VotingKind, ...] = ("vision", "vibration", "thermal", "sensor")
HEALTH_KINDS = frozenset({EvidenceKind.CAMERA_HEALTH, EvidenceKind.SENSOR_HEALTH})  # say whether a device works


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
        if evidence.condition is None or evidence.kind in HEALTH_KINDS:
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
        default_factory=lambda: list(VOTING_KINDS), description="Evidence kinds that vote on the verdict."
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
