"""Envelope lines that stay put while the shaft speed changes are not bearing lines.

A bearing's defect frequencies are fixed multiples of shaft speed; a neighbouring machine, a pump's
blade pass or a fan on its own motor strikes at a fixed frequency in Hz. In one burst a fixed line
that happens to sit on BPFO at this speed cannot be told from a defect; across bursts at different
speeds it can: a bearing line moves with the shaft, a fixed one does not. ``LineMemory`` keeps the
strong envelope lines seen per speed (from ``values["envelope_lines_hz"]``), and ``discount`` takes
back a named defect (or an unexplained series) whose line was already seen at the same frequency
while the shaft ran at a clearly different speed. Pure logic; the sensor stage keeps the memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from edge.analytics import bearings, iso
from edge.analytics.diagnosis import VibrationDiagnosis

MIN_SPEED_CHANGE = 0.03  # a bearing line moves at least this much (relative) between the two sightings
SAME_LINE = 0.005  # relative: the same line in Hz, within half a percent (and 1.5 Hz bins)
MIN_SIGHTINGS = 2  # one burst is not a pattern: the line must have been there at that speed twice
MAX_ENTRIES = 256
FIXED_LINE_CONFIDENCE = 0.7  # the line is explained; whether nothing else is wrong is less sure
_BEARING = (bearings.OUTER_RACE, bearings.INNER_RACE, bearings.ROLLING_ELEMENT, bearings.CAGE)


@dataclass
class LineMemory:
    """Entries [line Hz, shaft Hz, sightings, last seen unix s], the most recent MAX_ENTRIES."""

    entries: list[list[float]] = field(default_factory=list)

    def remember(self, lines_hz: list[float], shaft_hz: float, timestamp: float) -> None:
        for line_hz in lines_hz:
            entry = next((e for e in self.entries if _same(e[0], line_hz) and abs(e[1] / shaft_hz - 1) < 0.01), None)
            if entry is None:
                self.entries.append([line_hz, shaft_hz, 1, timestamp])
            else:
                entry[2] += 1
                entry[3] = timestamp
        if len(self.entries) > MAX_ENTRIES:
            self.entries = sorted(self.entries, key=lambda e: e[3])[-MAX_ENTRIES:]

    def seen_at_another_speed(self, line_hz: float, shaft_hz: float) -> float | None:
        """The other shaft speed (Hz) at which a line at ``line_hz`` was seen, if any."""
        # the speed change must move a bearing line by well over the tolerance of "same line"
        min_change = max(MIN_SPEED_CHANGE, 3 * _tolerance_hz(line_hz) / line_hz)
        for seen_hz, seen_shaft_hz, sightings, _ in self.entries:
            moved = abs(seen_shaft_hz / shaft_hz - 1) >= min_change
            if sightings >= MIN_SIGHTINGS and moved and _same(seen_hz, line_hz):
                return seen_shaft_hz
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"entries": self.entries}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LineMemory:
        entries = data.get("entries")
        if not isinstance(entries, list) or not all(isinstance(e, list) and len(e) == 4 for e in entries):
            raise ValueError("line memory must hold entries [line Hz, shaft Hz, sightings, last seen]")
        return cls([[float(v) for v in e] for e in entries])


def _tolerance_hz(line_hz: float) -> float:
    return max(SAME_LINE * line_hz, 1.5)


def _same(a_hz: float, b_hz: float) -> bool:
    return abs(a_hz - b_hz) <= _tolerance_hz(max(a_hz, b_hz))


def discount(found: VibrationDiagnosis, memory: LineMemory, timestamp: float) -> VibrationDiagnosis:
    """``found`` without the bearing finding whose line does not follow the shaft; ``memory``
    then learns this burst's lines. Only a burst whose speed was measured teaches or is judged."""
    values = found.values
    shaft_hz = values.get("shaft_hz")
    if values.get("speed_source") not in ("signal", "channel") or not shaft_hz:
        return found
    line_hz = values.get("defect_freq_hz") if found.fault_type in _BEARING else values.get("unexplained_series_hz")
    other_hz = None if line_hz is None else memory.seen_at_another_speed(line_hz, shaft_hz)
    memory.remember(list(values.get("envelope_lines_hz", ())), shaft_hz, timestamp)
    if other_hz is None:
        return found
    condition = iso.ZONE_CONDITION[found.zone]
    reason = (f"the {line_hz:.1f} Hz envelope line was there too at {other_hz * 60:.0f} rpm (now {shaft_hz * 60:.0f} "
              "rpm): it does not follow the shaft, so it is no bearing line (a fixed source nearby)")
    return replace(found, condition=condition, fault_type=None, confidence=FIXED_LINE_CONFIDENCE,
                   reasons=(*found.reasons, reason), values={**values, "fixed_line_hz": line_hz})
