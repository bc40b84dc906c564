"""A vibration burst's overall levels against the machine's learned normal.

The envelope analysis names a defect only when its frequency pattern shows; a bearing can wear
without one (CWRU's OR014 record shows no BPFO series, yet its bearing band rings 1.5 x the
healthy machine's). Trending two levels against what this sensor saw while the machine was
healthy catches that: velocity RMS (10-1000 Hz, the machine gets rougher) and bearing-band
acceleration RMS (1-10 kHz, impacts ring structural resonances). The service learns the normal
burst by burst; ``edgewatch vibration analyze --reference`` learns it from a healthy recording.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from edge.analytics.diagnosis import VibrationDiagnosis
from edge.analytics.scalar_rules import ScalarRules, ScalarState, assess
from edge.analytics.vibration import BEARING_BAND_HZ, Severity
from edge.evidence import Condition

# A level's learned normal never counts a change below 10 % of it as spread: with z_warn 4 a
# level must rise 40 % (about 3 dB) above its normal to warn, however steady the machine was.
MIN_RELATIVE_STD = 0.10


@dataclass(frozen=True)
class Level:
    name: str  # key in values ("<name>_baseline_z") and in the learned state
    label: str  # as reasons say it
    unit: str

    def of(self, severity: Severity) -> float | None:
        return severity.velocity_rms_mm_s if self.name == "velocity" else severity.bearing_band_rms_g


LEVELS = (
    Level("velocity", "velocity RMS", "mm/s"),
    Level("bearing_band", f"bearing-band ({BEARING_BAND_HZ[0] / 1000:g}-{BEARING_BAND_HZ[1] / 1000:g} kHz) "
                          "acceleration RMS", "g"),
)


def level_rules(
    unit: str, z_warn: float | None = 4.0, z_fault: float | None = 6.0, alpha: float = 0.01, warmup: int = 30
) -> ScalarRules:
    """Only the learned-baseline rule: a level has no absolute limit of its own here (the ISO
    zones judge velocity already)."""
    return ScalarRules(unit=unit, z_warn=z_warn, z_fault=z_fault, baseline_alpha=alpha, baseline_warmup=warmup,
                       min_relative_std=MIN_RELATIVE_STD)


def learn(states: Mapping[str, ScalarState], severity: Severity) -> None:
    """Add one burst's levels to the learned normal; a level the sample rate cannot reach is skipped."""
    for level in LEVELS:
        value = level.of(severity)
        if value is not None:
            states[level.name].baseline.update(value)


def against_normal(
    found: VibrationDiagnosis,
    states: Mapping[str, ScalarState],
    rules: Mapping[str, ScalarRules],
    timestamp_s: float,
) -> VibrationDiagnosis:
    """``found`` with each level's z-score added and its condition raised where a level departs
    from its learned normal. The states learn only from a burst judged ok on every count."""
    values = dict(found.values)
    judged = []
    for level in LEVELS:
        value = level.of(found.severity)
        if value is None:  # the sample rate cannot reach the bearing band
            continue
        result = assess(value, timestamp_s, rules[level.name], states[level.name], learn=False)
        values.update({f"{level.name}_{k}": v for k, v in result.values.items() if k.startswith("baseline")})
        judged.append((level, value, result))
    if found.condition is Condition.OK and all(result.condition is Condition.OK for _, _, result in judged):
        learn(states, found.severity)
    worst = max((result for _, _, result in judged), key=lambda r: r.condition.rank, default=None)
    if worst is None or worst.condition.rank <= found.condition.rank:
        return replace(found, values=values)
    reasons = (*found.reasons, *(f"{level.label} {reason}" for level, _, result in judged
                                 if result.condition is not Condition.OK for reason in result.reasons))
    return replace(found, condition=worst.condition, confidence=round(worst.confidence, 3), reasons=reasons,
                   values=values)
