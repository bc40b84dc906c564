"""ISO 10816-3 vibration severity zones A/B/C/D.

Default zone boundaries (velocity RMS, mm/s, 10-1000 Hz) from ISO 10816-3:2009 Table A.1/A.2,
which ISO 20816-3 keeps for these machine classes:

    group 1 (large machines, 300 kW - 50 MW)   rigid: 2.3 / 4.5 / 7.1   flexible: 3.5 / 7.1 / 11.0
    group 2 (medium machines, 15 - 300 kW)     rigid: 1.4 / 2.8 / 4.5   flexible: 2.3 / 4.5 / 7.1

The three numbers are the A/B, B/C and C/D boundaries. Zone A: newly commissioned; B: fine for
unrestricted long-term operation; C: not for long-term operation (warning); D: damage likely
(fault). Smaller machines than the standard covers are commonly judged with group 2; every
boundary can be overridden from config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.evidence import Condition

MachineGroup = Literal[1, 2]
Foundation = Literal["rigid", "flexible"]
Zone = Literal["A", "B", "C", "D"]

DEFAULT_LIMITS_MM_S: dict[tuple[int, str], tuple[float, float, float]] = {
    (1, "rigid"): (2.3, 4.5, 7.1),
    (1, "flexible"): (3.5, 7.1, 11.0),
    (2, "rigid"): (1.4, 2.8, 4.5),
    (2, "flexible"): (2.3, 4.5, 7.1),
}

ZONE_CONDITION: dict[str, Condition] = {
    "A": Condition.OK, "B": Condition.OK, "C": Condition.WARNING, "D": Condition.FAULT,
}


@dataclass(frozen=True)
class ZoneLimits:
    """Upper boundaries of zones A, B and C in mm/s; above ``c_d_mm_s`` is zone D."""

    a_b_mm_s: float
    b_c_mm_s: float
    c_d_mm_s: float

    def __post_init__(self) -> None:
        if not 0 < self.a_b_mm_s < self.b_c_mm_s < self.c_d_mm_s:
            raise ValueError(
                f"zone limits must rise strictly above 0, got {self.a_b_mm_s}/{self.b_c_mm_s}/{self.c_d_mm_s} mm/s"
            )

    @classmethod
    def for_machine(cls, group: int = 2, foundation: str = "rigid") -> ZoneLimits:
        try:
            return cls(*DEFAULT_LIMITS_MM_S[(int(group), foundation)])
        except KeyError as exc:
            raise ValueError(
                f"no ISO 10816-3 limits for machine group {group!r} on a {foundation!r} foundation"
            ) from exc


def zone(velocity_rms_mm_s: float, limits: ZoneLimits) -> Zone:
    """The zone of a velocity RMS; NaN is refused rather than silently called zone A."""
    if velocity_rms_mm_s != velocity_rms_mm_s or velocity_rms_mm_s < 0:
        raise ValueError(f"velocity RMS must be a non-negative number, got {velocity_rms_mm_s!r}")
    if velocity_rms_mm_s <= limits.a_b_mm_s:
        return "A"
    if velocity_rms_mm_s <= limits.b_c_mm_s:
        return "B"
    if velocity_rms_mm_s <= limits.c_d_mm_s:
        return "C"
    return "D"
