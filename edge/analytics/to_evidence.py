"""Adapters from analytics results to ``Evidence``: the only place that knows both shapes."""

from __future__ import annotations

from typing import Any

from edge.analytics.diagnosis import VibrationDiagnosis
from edge.analytics.scalar_rules import ScalarAssessment
from edge.evidence import Evidence, EvidenceKind

HEALTH_CONFIDENCE = 0.9  # how sure we are that the sensor, not the machine, is the problem


def vibration_evidence(source: str, diagnosis: VibrationDiagnosis, timestamp: float) -> Evidence:
    return Evidence(
        source=source,
        kind=EvidenceKind.VIBRATION,
        condition=diagnosis.condition,
        confidence=diagnosis.confidence,
        reasons=diagnosis.reasons,
        values=_features(diagnosis),
        fault_type=diagnosis.fault_type,
        timestamp=timestamp,
    )


def scalar_evidence(source: str, kind: EvidenceKind, unit: str, result: ScalarAssessment, timestamp: float) -> Evidence:
    suffix = _unit_suffix(unit)
    values = {f"{key}_{suffix}" if suffix and key in ("value", "above_ambient", "baseline_mean") else key: v
              for key, v in result.values.items()}
    if suffix and "rise_per_min" in values:
        values[f"rise_{suffix}_per_min"] = values.pop("rise_per_min")
    return Evidence(source, kind, result.condition, result.confidence, result.reasons, values, None, timestamp)


def health_evidence(source: str, problem: str, timestamp: float, values: dict[str, Any] | None = None) -> Evidence:
    """Sensor unhealthy: no opinion about the machine (condition None), a reason saying why."""
    return Evidence(source, EvidenceKind.SENSOR_HEALTH, None, HEALTH_CONFIDENCE,
                    (f"sensor unhealthy: {problem}",), values or {}, None, timestamp)


def _unit_suffix(unit: str) -> str:
    return {"degC": "c", "°C": "c", "C": "c", "degF": "f", "A": "a", "bar": "bar", "kPa": "kpa", "%": "pct",
            "V": "v", "g": "g", "mm/s": "mm_s"}.get(unit, unit.lower().replace("/", "_").replace(" ", "_"))


def _features(diagnosis: VibrationDiagnosis) -> dict[str, Any]:
    """The diagnosis' numbers; the verdict fields live on Evidence itself."""
    return {key: value for key, value in diagnosis.to_dict().items()
            if key not in ("condition", "fault_type", "confidence", "reasons")}
