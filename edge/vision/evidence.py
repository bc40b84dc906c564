"""A vision result -> the ``Evidence`` fusion consumes, and the JSON ``edgewatch check`` prints.

The decision rule, in order:
  * with a profile, the calibrated ``p_anomaly`` (temporally smoothed when a window is given)
    decides normal vs anomalous; the winning label, when it is a non-ok condition, names the fault
    type and its severity, otherwise an unexplained anomaly is a warning;
  * without a profile, the label heads decide alone (a non-ok label winning gives its severity);
  * with neither, vision has no opinion (condition None), which fusion treats as missing evidence.
``confidence`` is the probability that the stated condition is right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.evidence import Condition, Evidence, EvidenceKind
from edge.vision.pipeline import OK_SEVERITY, VisionResult
from edge.vision.temporal import TemporalState

ANOMALY_THRESHOLD = 0.5


@dataclass(frozen=True)
class Decision:
    condition: Condition | None
    confidence: float
    fault_type: str | None
    reasons: tuple[str, ...]


def decide(result: VisionResult, state: TemporalState | None = None) -> Decision:
    top = result.top_label
    severity = result.severities.get(top, OK_SEVERITY) if top else OK_SEVERITY
    label_note = ""
    if top is not None:
        source = "few-shot" if result.few_shot else "zero-shot"
        label_note = f"{source} label '{top}' ({(result.few_shot or result.labels)[top]:.2f})"
    if result.p_anomaly is not None:
        p_anomaly = state.smoothed_p_anomaly if state else result.p_anomaly
        anomalous = state.anomalous if state else p_anomaly >= ANOMALY_THRESHOLD
        window = f" over the last {state.frames} frames" if state else ""
        if not anomalous:
            reasons = [f"frame within the normal baseline (p_anomaly {p_anomaly:.2f}{window})"]
            if severity != OK_SEVERITY:
                reasons.append(f"{label_note} not supported by the baseline")
            return Decision(Condition.OK, 1.0 - p_anomaly, None, tuple(reasons))
        reason = (f"frame unlike the enrolled normal frames (p_anomaly {p_anomaly:.2f}, "
                  f"p-value {result.p_value:.2g}{window})")
        if severity != OK_SEVERITY:
            return Decision(Condition(severity), p_anomaly, top, (reason, label_note))
        return Decision(Condition.WARNING, p_anomaly, None, (reason, "no enrolled condition matches"))
    abnormal = result.heads.get("labels_abnormal")
    if abnormal is None:
        return Decision(None, 0.0, None, ("no profile and no labels: vision cannot judge this frame",))
    if severity != OK_SEVERITY:
        return Decision(Condition(severity), abnormal, top, (label_note,))
    return Decision(Condition.OK, 1.0 - abnormal, None, (label_note,))


def to_evidence(result: VisionResult, camera: str, timestamp: float = 0.0,
                state: TemporalState | None = None) -> Evidence:
    """The fusion input for one camera's frame (``source`` is ``vision:<camera>``)."""
    decision = decide(result, state)
    values: dict[str, Any] = {
        "anomaly_score": result.anomaly_score,
        "p_anomaly": result.p_anomaly,
        "p_value": result.p_value,
        "labels": dict(result.few_shot or result.labels),
        "top_label": result.top_label,
        "heads": dict(result.heads),
    }
    if state is not None:
        values["smoothed_p_anomaly"] = state.smoothed_p_anomaly
        values["window_frames"] = state.frames
    return Evidence(source=f"vision:{camera}", kind=EvidenceKind.VISION, condition=decision.condition,
                    confidence=min(max(decision.confidence, 0.0), 1.0), reasons=decision.reasons,
                    values=values, fault_type=decision.fault_type, timestamp=timestamp)


def vision_json(result: VisionResult, state: TemporalState | None = None) -> dict[str, Any]:
    """The ``vision`` object of ``edgewatch check --json``: every head plus the decision."""
    decision = decide(result, state)
    return {
        **result.to_dict(),
        "condition": None if decision.condition is None else decision.condition.value,
        "confidence": decision.confidence,
        "fault_type": decision.fault_type,
        "reasons": list(decision.reasons),
    }
