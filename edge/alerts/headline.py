"""One line a technician acts on, from a verdict: what is wrong, where, and what to do (pure).

"Outer-race bearing defect, drive end - plan a bearing replacement". The evidence that drove the
verdict names the fault type (bearing analytics, vibration diagnosis, a vision label) and the place
(the sensor or camera name); the recommended action comes from ``alerts.actions`` or the built-ins.
The engineering reasons stay in the verdict, one tap away on the status page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edge.evidence import Condition, Evidence, EvidenceKind, Verdict

# fault type -> what it is called on the floor; unknown types (vision labels) are shown as written
FAULT_NAMES: Mapping[str, str] = {
    "outer_race": "Outer-race bearing defect",
    "inner_race": "Inner-race bearing defect",
    "rolling_element": "Rolling-element bearing defect",
    "cage": "Bearing cage defect",
    "imbalance": "Imbalance",
    "looseness": "Mechanical looseness",
}
DEFAULT_ACTIONS: Mapping[str, str] = {
    "outer_race": "plan a bearing replacement",
    "inner_race": "plan a bearing replacement",
    "rolling_element": "plan a bearing replacement",
    "cage": "plan a bearing replacement and check the lubrication",
    "imbalance": "check the rotor for build-up and balance it",
    "looseness": "check the mounting bolts and fits",
}
# without a fault type, by the kind of evidence that raised the verdict
KIND_NAMES: Mapping[EvidenceKind, str] = {
    EvidenceKind.VIBRATION: "High vibration",
    EvidenceKind.THERMAL: "Running hot",
    EvidenceKind.SENSOR: "Reading out of range",
    EvidenceKind.VISION: "Looks different from normal",
    EvidenceKind.CAMERA_HEALTH: "Camera cannot see the machine",
    EvidenceKind.SENSOR_HEALTH: "Sensor not reporting",
}
KIND_ACTIONS: Mapping[EvidenceKind, str] = {
    EvidenceKind.CAMERA_HEALTH: "check the camera, its lens and its light",
    EvidenceKind.SENSOR_HEALTH: "check the sensor and its cable",
}
CONDITION_ACTIONS: Mapping[Condition, str] = {
    Condition.FAULT: "inspect the machine now",
    Condition.WARNING: "inspect it on the next round",
    Condition.OK: "no action needed",
}


@dataclass(frozen=True)
class Headline:
    text: str  # the whole line
    problem: str
    place: str | None
    action: str
    fault_type: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"text": self.text, "problem": self.problem, "place": self.place, "action": self.action,
                "fault_type": self.fault_type}


def headline(verdict: Verdict, actions: Mapping[str, str] | None = None) -> Headline:
    """The line for ``verdict``; ``actions`` (fault type -> action) override the built-in ones."""
    if verdict.condition is Condition.OK:
        return Headline("Running normally", "Running normally", None, CONDITION_ACTIONS[Condition.OK], None)
    cause = _cause(verdict)
    if cause is None:
        action = CONDITION_ACTIONS[verdict.condition]
        return Headline(f"Needs a look - {action}", "Needs a look", None, action, None)
    fault_type = cause.fault_type
    chosen = {**DEFAULT_ACTIONS, **(actions or {})}
    if fault_type is not None:
        problem = FAULT_NAMES.get(fault_type) or fault_type.replace("_", " ").capitalize()
        action = chosen.get(fault_type) or KIND_ACTIONS.get(cause.kind) or CONDITION_ACTIONS[verdict.condition]
    else:
        problem = KIND_NAMES[cause.kind]
        action = KIND_ACTIONS.get(cause.kind) or CONDITION_ACTIONS[verdict.condition]
    place = cause.source.split(":", 1)[-1].replace("_", " ") or None
    text = f"{problem}, {place} - {action}" if place else f"{problem} - {action}"
    return Headline(text, problem, place, action, fault_type)


def _cause(verdict: Verdict) -> Evidence | None:
    """The evidence behind the verdict: worst condition first, a named fault type, then confidence."""
    judged = [e for e in verdict.evidence if e.condition is not None and e.condition is not Condition.OK]
    if not judged:
        return None
    return max(judged, key=lambda e: (e.condition.rank if e.condition else 0, e.fault_type is not None,
                                      e.confidence))
