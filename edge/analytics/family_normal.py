"""A named bearing defect against this machine's own learned normal: the same lines, then and now.

A defect family that stands clear of the envelope spectrum's floor may still be how this machine
always looked: a neighbour striking near BPFO, a gear's sideband, a coupling's comb. The learned
normal keeps every defect type's line heights (dB above the envelope floor) as the healthy machine
showed them, labelled by order ("2x BPFO", "BPFI+1x") so one normal serves any shaft speed. A
fault's family must stand ``NEW_FAULT_DB`` above the same lines there; one within
``SAME_AS_NORMAL_DB`` of them is the machine's normal, not a new fault. Pure logic; the sensor
stage (or ``edgewatch vibration analyze --reference``) keeps the normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from edge.analytics import bearings, iso
from edge.analytics.diagnosis import VibrationDiagnosis
from edge.evidence import Condition

# A line's height in a noise bin wanders by about 3 dB from burst to burst (Welch-averaged
# envelope, 5+ segments); the family's mean over 2-5 lines by less. A family 6 dB (twice the
# amplitude) above its own normal has grown; one within 3 dB has not.
NEW_FAULT_DB = 6.0
SAME_AS_NORMAL_DB = 3.0
AS_NORMAL_CONFIDENCE = 0.7  # the family is explained; whether nothing else is wrong is less sure
_BEARING = (bearings.OUTER_RACE, bearings.INNER_RACE, bearings.ROLLING_ELEMENT, bearings.CAGE)


@dataclass
class FamilyNormal:
    """Mean height (dB above the envelope floor) of each defect line, keyed "<fault type>/<label>",
    over the bursts learned (exponentially weighted once ``1 / count`` falls below ``alpha``)."""

    heights_db: dict[str, float] = field(default_factory=dict)
    count: int = 0
    warmup: int = 1  # bursts to learn before the normal judges
    alpha: float = 0.01

    @property
    def ready(self) -> bool:
        return self.count >= self.warmup

    def learn(self, found: VibrationDiagnosis) -> None:
        """Add one burst's defect lines (every type's harmonics and sidebands) to the normal."""
        if not found.matches:  # no bearing analysis ran: nothing to learn
            return
        self.count += 1
        weight = max(self.alpha, 1.0 / self.count)
        for match in found.matches:
            for line in (*match.harmonics, *match.sidebands):
                key = f"{match.fault_type}/{line.label}"
                old = self.heights_db.get(key, line.above_floor_db)
                self.heights_db[key] = old + weight * (line.above_floor_db - old)

    def height_db(self, fault_type: str, label: str) -> float:
        """A line the normal never held sat on the floor: 0 dB."""
        return self.heights_db.get(f"{fault_type}/{label}", 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"heights_db": dict(self.heights_db), "count": self.count, "warmup": self.warmup, "alpha": self.alpha}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FamilyNormal:
        try:
            heights = {str(k): float(v) for k, v in dict(data["heights_db"]).items()}
            normal = cls(heights, int(data["count"]), int(data["warmup"]), float(data["alpha"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"defect-line normal is incomplete or malformed: {exc}") from exc
        if not all(math.isfinite(v) for v in heights.values()) or normal.count < 0 or not 0 < normal.alpha <= 1:
            raise ValueError("defect-line normal holds non-finite heights, a negative count or an alpha outside (0, 1]")
        return normal


@dataclass(frozen=True)
class Margin:
    """How far the named family stands above the same lines in the learned normal."""

    margin_db: float  # mean over the family's lines of (now - normal)
    reason: str


def margin(found: VibrationDiagnosis, normal: FamilyNormal) -> Margin | None:
    """The named bearing family's margin over the learned normal; None when nothing is named or
    the normal is not learned yet."""
    match = next((m for m in found.matches if m.fault_type == found.fault_type and m.family), None)
    if match is None or found.fault_type not in _BEARING or not normal.ready:
        return None
    pairs = [(line, normal.height_db(match.fault_type, line.label)) for line in match.family]
    margin_db = sum(line.above_floor_db - then_db for line, then_db in pairs) / len(pairs)
    lines = ", ".join(f"{line.label} {line.above_floor_db:.1f} (normal {then_db:.1f})" for line, then_db in pairs)
    name = match.fault_type.replace("_", "-")
    return Margin(margin_db, f"{name} family ({lines} dB) stands {margin_db:+.1f} dB above the same lines in this "
                             f"machine's learned normal ({NEW_FAULT_DB:g} dB for a new fault)")


def against_normal(found: VibrationDiagnosis, normal: FamilyNormal) -> VibrationDiagnosis:
    """``found`` judged against the learned normal: a family as strong as it was there is no
    bearing finding, one grown less than ``NEW_FAULT_DB`` is at most a warning."""
    measured = margin(found, normal)
    if measured is None:
        return found
    values = {**found.values, "family_over_normal_db": round(measured.margin_db, 1)}
    reasons = (*found.reasons, measured.reason)
    if measured.margin_db < SAME_AS_NORMAL_DB:
        reason = "the family is as strong as in the machine's normal: no new bearing fault"
        return replace(found, condition=iso.ZONE_CONDITION[found.zone], fault_type=None,
                       confidence=AS_NORMAL_CONFIDENCE, reasons=(*reasons, reason), values=values)
    if measured.margin_db < NEW_FAULT_DB and found.condition is Condition.FAULT:
        reason = "held at warning: the family has grown, but less than a new fault shows"
        return replace(found, condition=Condition.WARNING, reasons=(*reasons, reason), values=values)
    return replace(found, reasons=reasons, values=values)
