"""A realistic asset config and verdict (vision, vibration and temperature evidence) for measuring
the outputs, and for the outputs tests that check what consumers receive."""

from __future__ import annotations

from edge.evidence import Condition, Evidence, EvidenceKind, Verdict
from edge.settings import AssetConfig


def asset(asset_id: str = "press-1", name: str = "Hydraulic press 1") -> AssetConfig:
    return AssetConfig.model_validate({
        "id": asset_id, "name": name, "check_interval_s": 30,
        "sensors": [{"name": "drive_end", "type": "command", "command": ["true"], "quantity": "vibration"},
                    {"name": "motor", "type": "command", "command": ["true"], "quantity": "temperature"}],
    })


def verdict(
    asset_id: str = "press-1",
    condition: Condition = Condition.WARNING,
    confidence: float = 0.82,
    timestamp: float = 1_790_000_000.0,
    velocity_rms_mm_s: float = 5.1,
    temp_c: float = 61.5,
    escalated: bool = False,
) -> Verdict:
    evidence = (
        Evidence("vision:top", EvidenceKind.VISION, condition, 0.7, ("oil film on the housing",),
                 {"anomaly_score": 0.64}, timestamp=timestamp),
        Evidence("vibration:drive_end", EvidenceKind.VIBRATION, condition, 0.9, ("ISO zone C",),
                 {"velocity_rms_mm_s": velocity_rms_mm_s, "iso_zone": "C", "kurtosis": 4.2}, timestamp=timestamp),
        Evidence("temperature:motor", EvidenceKind.THERMAL, Condition.OK, 0.8, (), {"temp_c": temp_c},
                 timestamp=timestamp),
    )
    reasons = ("vibration velocity 5.1 mm/s is in ISO zone C", "vision sees an oil film")
    escalation = {"status": "answered", "model": "gpt-test", "condition": "fault", "confidence": 0.9,
                  "explanation": "likely seal leak"} if escalated else None
    return Verdict(asset_id, condition, confidence, reasons if condition is not Condition.OK else (),
                   evidence, timestamp, escalated=escalated, escalation=escalation)
