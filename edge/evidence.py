"""The data that flows between stages: evidence from vision and sensors, and the fused verdict.

Pure data (frozen dataclasses), no I/O; every stage speaks these types. Their wire form is
``to_dict``/``from_dict`` (plain JSON types: what the history stores, MQTT and the HTTP API send
and ``edgewatch check --json`` prints); ``jsonable`` is the one numpy -> JSON conversion, ``dumps``
the one strict JSON encoding and ``iso_time`` the one timestamp form consumers see.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Condition(str, enum.Enum):
    """Ordered severity of a machine's state."""

    OK = "ok"
    WARNING = "warning"
    FAULT = "fault"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def worst(cls, conditions: list[Condition]) -> Condition:
        return max(conditions, key=lambda c: c.rank, default=cls.OK)


_RANK = {Condition.OK: 0, Condition.WARNING: 1, Condition.FAULT: 2}


class EvidenceKind(str, enum.Enum):
    VISION = "vision"
    VIBRATION = "vibration"
    THERMAL = "thermal"
    SENSOR = "sensor"  # current, pressure and other scalar channels
    CAMERA_HEALTH = "camera_health"
    SENSOR_HEALTH = "sensor_health"


@dataclass(frozen=True)
class Evidence:
    """One stage's opinion about one asset at one time.

    ``condition`` is None when the source could not form an opinion (an unhealthy sensor, a
    black frame): fusion then lowers its confidence instead of treating silence as ``ok``.
    ``confidence`` is the probability, in [0, 1], that ``condition`` is right.
    """

    source: str  # e.g. "vision:top", "vibration:drive_end", "temperature:motor"
    kind: EvidenceKind
    condition: Condition | None
    confidence: float
    reasons: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)  # features with units in their names
    fault_type: str | None = None  # e.g. "outer_race", "oil leak"
    timestamp: float = 0.0  # unix seconds

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence!r}")

    @property
    def healthy(self) -> bool:
        return self.condition is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind.value,
            "condition": None if self.condition is None else self.condition.value,
            "confidence": self.confidence,
            "fault_type": self.fault_type,
            "reasons": list(self.reasons),
            "values": jsonable(self.values),
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """The inverse of ``to_dict``."""
        condition = data.get("condition")
        return cls(
            source=data["source"],
            kind=EvidenceKind(data["kind"]),
            condition=None if condition is None else Condition(condition),
            confidence=float(data["confidence"]),
            reasons=tuple(data.get("reasons", ())),
            values=dict(data.get("values", {})),
            fault_type=data.get("fault_type"),
            timestamp=float(data.get("timestamp", 0.0)),
        )


@dataclass(frozen=True)
class Verdict:
    """The fused maintenance verdict for one asset at one check."""

    asset_id: str
    condition: Condition
    confidence: float
    reasons: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    timestamp: float
    escalated: bool = False
    escalation: Mapping[str, Any] | None = None  # the cloud's answer, or why it was not asked

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset_id,
            "verdict": self.condition.value,
            "confidence": self.confidence,
            "reasons": list(self.reasons),
            "escalated": self.escalated,
            "escalation": None if self.escalation is None else jsonable(self.escalation),
            "evidence": [item.to_dict() for item in self.evidence],
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """The inverse of ``to_dict`` (extra keys such as the history's ``id`` and ``frame`` are
        ignored); KeyError, ValueError or TypeError when ``data`` is not a verdict."""
        return cls(
            asset_id=data["asset"],
            condition=Condition(data["verdict"]),
            confidence=float(data["confidence"]),
            reasons=tuple(data["reasons"]),
            evidence=tuple(Evidence.from_dict(item) for item in data["evidence"]),
            timestamp=float(data["timestamp"]),
            escalated=bool(data.get("escalated", False)),
            escalation=data.get("escalation"),
        )


def jsonable(value: Any, finite: bool = False) -> Any:
    """``value`` with numpy scalars and arrays (analytics put them in ``Evidence.values``) turned
    into Python numbers and lists, mappings into dicts with str keys, tuples and sets into lists.
    With ``finite``, NaN and infinities become None, for strict JSON consumers (browsers, Home
    Assistant); the history keeps them."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item, finite) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item, finite) for item in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays, without importing numpy here
        return jsonable(value.tolist(), finite)
    if finite and isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any) -> bytes:
    """Strict JSON for consumers (Home Assistant, browsers): numpy -> Python, NaN/inf -> null."""
    return json.dumps(jsonable(value, finite=True), separators=(",", ":"), allow_nan=False).encode()


def iso_time(timestamp_s: float) -> str:
    return dt.datetime.fromtimestamp(timestamp_s, dt.timezone.utc).isoformat(timespec="seconds")
