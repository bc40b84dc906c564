"""Cost control: tokens -> money with configured prices, and per-hour / per-day caps on spending."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from edge.escalation.config import BudgetConfig, ModelPricing

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S


class UsageLedger(Protocol):
    """Where spending is recorded; the outbox's SQLite file, so caps survive a restart."""

    def add_usage(self, at: float, input_tokens: int, output_tokens: int, usd: float) -> None: ...

    def spent_usd_since(self, since: float) -> float: ...


@dataclass(frozen=True)
class Cost:
    input_tokens: int
    output_tokens: int
    usd: float

    def to_dict(self) -> dict[str, float | int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "usd": round(self.usd, 6)}


def price(pricing: ModelPricing, input_tokens: int, output_tokens: int) -> Cost:
    usd = (input_tokens * pricing.input_usd_per_mtok + output_tokens * pricing.output_usd_per_mtok) / 1e6
    return Cost(input_tokens, output_tokens, usd)


class Budget:
    def __init__(self, config: BudgetConfig, pricing: ModelPricing, ledger: UsageLedger,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._pricing = pricing
        self._ledger = ledger
        self._clock = clock

    def blocked_by(self, estimate: Cost) -> str | None:
        """Why this request may not be sent now (a sentence for the verdict), or None when it fits."""
        now = self._clock()
        for window_s, cap, name in ((HOUR_S, self._config.max_usd_per_hour, "hourly"),
                                    (DAY_S, self._config.max_usd_per_day, "daily")):
            spent = self._ledger.spent_usd_since(now - window_s)
            if spent + estimate.usd > cap:
                return (f"cloud escalation skipped: the {name} budget of ${cap:.2f} would be exceeded "
                        f"(spent ${spent:.4f}, this request ~${estimate.usd:.4f})")
        return None

    def record(self, input_tokens: int, output_tokens: int) -> Cost:
        """Count what the provider says it billed."""
        cost = price(self._pricing, input_tokens, output_tokens)
        self._ledger.add_usage(self._clock(), input_tokens, output_tokens, cost.usd)
        return cost

    def used_ratio(self) -> dict[str, float]:
        """Spend in the last hour and day over each cap (a cap of 0 counts as used up)."""
        now = self._clock()
        return {name: (self._ledger.spent_usd_since(now - window_s) / cap if cap > 0 else 1.0)
                for name, window_s, cap in (("hour", HOUR_S, self._config.max_usd_per_hour),
                                            ("day", DAY_S, self._config.max_usd_per_day))}

    def spent(self) -> dict[str, float]:
        now = self._clock()
        return {"last_hour_usd": round(self._ledger.spent_usd_since(now - HOUR_S), 6),
                "last_day_usd": round(self._ledger.spent_usd_since(now - DAY_S), 6)}
