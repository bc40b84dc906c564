"""Hysteresis: pointwise fusion results -> the condition an asset reports, raised and cleared over checks."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from edge.evidence import Condition, Verdict
from edge.fusion.config import PersistenceConfig
from edge.fusion.fuse import FusionResult


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
