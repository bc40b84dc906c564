"""The fusion stage of one asset: pointwise fusion (``edge.fusion``), then hysteresis over checks.

Apart from ``wiring.py`` so that a one-frame check (``edgewatch check``) builds the service's own
stage without loading the service's other parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge.evidence import Condition, Evidence, Verdict
from edge.fusion.config import FusionConfig
from edge.fusion.fuse import FusionResult, fuse
from edge.fusion.persistence import Persistence


class FusionWithPersistence:
    """Pointwise fusion, then raise/clear hysteresis over checks (``hysteresis=False``: a lone check,
    with no earlier checks to wait for, reports what it sees). ``last`` keeps the pointwise result
    behind the latest verdict: its probabilities and evidence coverage."""

    def __init__(self, asset_id: str, config: FusionConfig, persistence: Persistence | None = None,
                 hysteresis: bool = True) -> None:
        self.asset_id = asset_id
        self.config = config
        self.persistence = persistence or Persistence(config.persistence)
        self.hysteresis = hysteresis
        self.last: FusionResult | None = None

    def __call__(self, evidence: list[Evidence], timestamp: float) -> Verdict:
        self.last = fuse(self.asset_id, evidence, self.config, timestamp)
        return self.persistence.update(self.last) if self.hysteresis else self.last.verdict

    def state_dict(self) -> dict[str, Any]:
        return self.persistence.to_dict()

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.persistence = Persistence(self.config.persistence, Condition(state["reported"]),
                                       [Condition(c) for c in state["history"]])
