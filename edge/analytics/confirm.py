"""What a named bearing defect must show before it is a ``fault``, beyond its pattern score.

The pattern score counts lines at the defect frequencies; three physical checks decide whether
those lines are a bearing's. Each one that fails holds the verdict at ``warning``, and every one
gives its figures (margins in dB) in the reasons:

- **clearance**: the family's lines stand well clear of the envelope spectrum's noise floor (a
  noise bin stands 6 dB up about once in a thousand bins; three lines averaging 10 dB do not
  happen by chance);
- **sidebands**: an inner-race defect turns through the load zone once per turn, so its lines
  carry +-1x shaft sidebands (weak at light load: CWRU's IR007 shows 5 dB, under the 6 dB of a
  line, so they confirm an inner race but their absence does not refute one); a stationary outer
  race does not turn, and its +-1x lines come only from a load that turns with the shaft
  (imbalance: CWRU's OR021 shows them 2 dB under BPFO). Sidebands as strong as the line they
  flank are 100 % modulation: the lines are a comb spaced at the shaft speed (looseness, a rub, a
  coupling) with BPFO among them, not a race defect;
- **a visible defect line**: when the defect line sits on a shaft or supply line and no harmonic
  clears it, an inner race still shows its +-1x sidebands, but the line itself cannot be told from the
  machine's own: such a pattern is a warning, never a fault;
- **impulsiveness**: a defect strikes, so the demodulated band must be impulsive on both counts,
  spectral kurtosis (Gaussian noise: 0) and kurtosis (Gaussian: 3), each beyond what noise
  reaches by chance: over 54 white-noise bursts of 0.16-6 s at 8-25.6 kHz the kurtogram band's
  spectral kurtosis reached 0.68 at most and its kurtosis 3.96. Lines that chance or two beating
  discrete components draw in the envelope of a stationary signal fail it. CWRU's race faults
  show 3-19 and 12-130; a housing ringing through most of the defect period (light damping, a
  fast defect rate) shows about 1 and 4.5, so the limits sit just above noise, not near CWRU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal, stats

from edge.analytics import bearings
from edge.analytics.envelope import Band

FAULT_CLEARANCE_DB = 10.0  # mean height of the family's lines above the envelope floor
MIN_SPECTRAL_KURTOSIS = 0.7
MIN_KURTOSIS = 4.0  # Pearson: Gaussian noise 3


@dataclass(frozen=True)
class Impulsiveness:
    """Spectral kurtosis (kurtogram) and kurtosis of the prewhitened signal in the demodulated band."""

    spectral_kurtosis: float
    kurtosis: float
    band: Band

    @property
    def impulsive(self) -> bool:
        return self.spectral_kurtosis >= MIN_SPECTRAL_KURTOSIS and self.kurtosis >= MIN_KURTOSIS


@dataclass(frozen=True)
class Check:
    passed: bool
    reason: str


def impulsiveness(white: np.ndarray, fs_hz: float, band: Band) -> Impulsiveness:
    """``white``: the prewhitened burst; ``band``: the kurtogram band its envelope was taken in."""
    sos = signal.butter(4, [band.low_hz, band.high_hz], btype="bandpass", fs=fs_hz, output="sos")
    in_band = signal.sosfiltfilt(sos, white)
    kurtosis = float(stats.kurtosis(in_band, fisher=False)) if np.std(in_band) > 0 else 0.0
    return Impulsiveness(band.spectral_kurtosis, kurtosis, band)


def clearance_db(match: bearings.DefectMatch) -> float:
    """Mean height (dB above the envelope floor) of the lines that make the pattern's family."""
    return float(np.mean([line.above_floor_db for line in match.family])) if match.family else 0.0


def checks(match: bearings.DefectMatch, found: Impulsiveness) -> list[Check]:
    """The checks a named defect must pass to be a fault, each with its figures."""
    name = match.fault_type.replace("_", "-")
    lines = ", ".join(f"{line.label} {line.above_floor_db:.1f}" for line in match.family)
    clear_db = clearance_db(match)
    result = [Check(clear_db >= FAULT_CLEARANCE_DB,
                    f"{name} family ({lines} dB) stands {clear_db:.1f} dB above the envelope floor on average: "
                    f"{clear_db - FAULT_CLEARANCE_DB:+.1f} dB against the {FAULT_CLEARANCE_DB:g} dB a fault needs")]
    sidebands = match.shaft_sidebands
    described = ", ".join(f"{line.label} {line.above_floor_db:.1f} dB" for line in sidebands) or "none"
    if match.fault_type == bearings.INNER_RACE:
        result.append(Check(True, f"+-1x shaft sidebands: {described} ("
                                  + ("the inner race turning through the load zone)" if sidebands else
                                     "none: a lightly loaded inner race)")))
    elif match.fault_type == bearings.OUTER_RACE and match.family:
        anchor_db = match.family[0].above_floor_db
        comb = len(sidebands) == 2 and max(line.above_floor_db for line in sidebands) >= anchor_db
        result.append(Check(not comb, f"+-1x shaft sidebands: {described} against {anchor_db:.1f} dB at BPFO ("
                                      + ("as strong as the line: a shaft-spaced comb, not a stationary outer race)"
                                         if comb else "a stationary outer race: none, or weaker than the line)")))
    if match.line_hidden:
        result.append(Check(False, f"{bearings.symbol(match.fault_type)} sits on a shaft or supply line and no "
                                   "harmonic clears it: the pattern shows only in its sidebands"))
    result.append(Check(found.impulsive, (
        f"demodulated band {found.band.low_hz:.0f}-{found.band.high_hz:.0f} Hz: spectral kurtosis "
        f"{found.spectral_kurtosis:.1f} (impacts >= {MIN_SPECTRAL_KURTOSIS:g}), kurtosis {found.kurtosis:.1f} "
        f"(>= {MIN_KURTOSIS:g})" + ("" if found.impulsive else ": not impulsive on both counts"))))
    return result
