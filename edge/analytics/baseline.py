"""A learned per-channel baseline: exponentially weighted mean and variance, giving z-scores.

The state is a small dataclass that round-trips through ``to_dict`` / ``from_dict`` (plain JSON),
so the service can persist it and a restart does not forget what normal looks like.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EwmaBaseline:
    """EWMA mean/variance (West 1979 incremental form); ``alpha`` is the weight of a new value."""

    alpha: float = 0.01
    warmup: int = 30  # values to see before z-scores are trusted
    mean: float = 0.0
    var: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"baseline alpha must be in (0, 1], got {self.alpha!r}")

    @property
    def ready(self) -> bool:
        return self.count >= self.warmup

    @property
    def std(self) -> float:
        return math.sqrt(max(self.var, 0.0))

    def zscore(self, value: float, min_std: float = 1e-9) -> float | None:
        """How many baseline standard deviations ``value`` is from the mean; None while learning."""
        if not self.ready or not math.isfinite(value):
            return None
        return (value - self.mean) / max(self.std, min_std)

    def update(self, value: float) -> None:
        """Learn from a value; non-finite values are ignored (they are a sensor problem, not data)."""
        if not math.isfinite(value):
            return
        self.count += 1
        if self.count == 1:
            self.mean, self.var = value, 0.0
            return
        # during warm-up weigh values equally so the first reading does not dominate
        alpha = max(self.alpha, 1.0 / self.count)
        delta = value - self.mean
        self.mean += alpha * delta
        self.var = (1.0 - alpha) * (self.var + alpha * delta * delta)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EwmaBaseline:
        try:
            return cls(**{key: data[key] for key in ("alpha", "warmup", "mean", "var", "count")})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"baseline state is incomplete or malformed: {exc}") from exc
