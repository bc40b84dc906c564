"""What another escalation policy would have asked about (pure): the run's checks decided again.

The policy is pure (``decide``), so a run's stored local verdicts can be replayed through other
settings — a lower ``confidence_below``, no disagreement trigger, a shorter cool-down — with the
cool-down memory kept per asset in order, as the outbox keeps it. Budget caps are not replayed:
the figures show what the settings would ask, and the costs what that would spend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from edge.config.loader import first_problem
from edge.errors import UsageError
from edge.escalation.config import PolicyConfig
from edge.escalation.outbox import PastEscalation
from edge.escalation.policy import Decision, decide
from edge.evidence import Verdict
from edge.fusion.config import FusionConfig


@dataclass(frozen=True)
class Check:
    """One stored check as the policy saw it: the local verdict and its frame's difference hash."""

    verdict: Verdict
    frame_hash: int | None


def redecide(checks: Sequence[Check], policy: PolicyConfig,
             fusion: Mapping[str, FusionConfig] | None = None) -> list[Decision]:
    """The decision ``policy`` would have taken on each check (checks of one asset in time order);
    ``fusion``: each asset's fusion settings, which the policy reads."""
    past: dict[str, list[PastEscalation]] = {}
    decisions = []
    for check in checks:
        verdict = check.verdict
        earlier = past.setdefault(verdict.asset_id, [])
        decision = decide(verdict, policy, frame_hash=check.frame_hash, past=earlier, now=verdict.timestamp,
                          fusion=(fusion or {}).get(verdict.asset_id, FusionConfig()))
        if decision.escalate:
            earlier.append(PastEscalation(decision.situation, check.frame_hash, verdict.timestamp))
        decisions.append(decision)
    return decisions


def policy_with(base: PolicyConfig, assignments: Sequence[str]) -> PolicyConfig:
    """``base`` with ``KEY=VALUE`` assignments (values read as YAML); a bad key or value is a UsageError."""
    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--policy wants KEY=VALUE (e.g. confidence_below=0.7), got {assignment!r}")
        changes[key.strip()] = yaml.safe_load(value)
    try:
        return PolicyConfig.model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        known = ", ".join(PolicyConfig.model_fields)
        raise UsageError(f"--policy {first_problem(exc, PolicyConfig)} (policy settings: {known})") from exc

