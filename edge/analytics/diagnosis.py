"""One accelerometer burst -> condition, fault type, confidence and reasons with numbers.

Combines overall severity (velocity RMS and ISO zone) with bearing envelope analysis in two
envelope spectra: full band after cepstral prewhitening, and the band chosen by spectral
kurtosis. Imbalance and looseness are only named when the overall level is already high
(zone C/D) and the velocity spectrum shows their pattern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.analytics import bearings, confirm, envelope, iso, mains, speed, vibration
from edge.analytics.series import Series, strongest_series
from edge.evidence import Condition

IMBALANCE = "imbalance"
LOOSENESS = "looseness"
MAX_ANALYSIS_FS_HZ = 25_600.0  # bearing resonances of small machines sit below 10 kHz
WARNING_SCORE_DB = 12.0  # sum of dB above floor over the defect pattern's present lines
FAULT_SCORE_DB = 24.0
# An impact series that no defect frequency explains is only a warning, and a doubtful one: it
# says "something strikes periodically", not what.
UNEXPLAINED_CONFIDENCE = 0.45
# Below this Nyquist frequency less than half the ISO band (on a log scale) is carried: no zone at all.
MIN_ISO_NYQUIST_HZ = 100.0
# The envelope band must lie above the defect lines and hold their harmonics: Nyquist >= 4x the highest.
BEARING_NYQUIST_ORDERS = 4.0
# A defect named at a guessed speed (no shaft comb, no speed channel) is a warning at most, and
# its type is less sure: the widened windows of the defect types overlap.
SPEED_GUESSED_CONFIDENCE = 0.8
# The squared envelope of a smooth (sinusoidal) modulation holds lines at 1x and 2x only; a train
# of impacts holds every harmonic, and an inner-race or ball defect its sidebands too.
FAULT_MIN_LINES = 3


@dataclass(frozen=True)
class VibrationDiagnosis:
    condition: Condition
    fault_type: str | None
    confidence: float
    severity: vibration.Severity
    zone: iso.Zone
    reasons: tuple[str, ...]
    matches: tuple[bearings.DefectMatch, ...] = ()  # best match per defect type
    band: envelope.Band | None = None  # the kurtogram band
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "condition": self.condition.value,
            "fault_type": self.fault_type,
            "confidence": self.confidence,
            "velocity_rms_mm_s": self.severity.velocity_rms_mm_s,
            "zone": self.zone,
            "reasons": list(self.reasons),
            **{k: v for k, v in self.values.items() if k not in ("velocity_rms_mm_s", "zone")},
        }


def diagnose(
    accel_g: np.ndarray,
    fs_hz: float,
    shaft_hz: float | None,
    orders: bearings.DefectOrders | None,
    limits: iso.ZoneLimits,
    speed_range: float = speed.DEFAULT_RANGE,
    measured_shaft_hz: float | None = None,
) -> VibrationDiagnosis:
    """Raise ValueError on unusable input (NaN, too short, bad rate); never returns a silent ok.

    ``shaft_hz`` is the nominal speed: the true one is read from ``measured_shaft_hz`` (a speed
    channel) or estimated from the signal within ``speed_range`` of it (0: take it as exact), and
    the bearing analysis runs at that speed. Without ``shaft_hz`` only the overall severity and
    zone are judged; without ``orders`` the bearing analysis is skipped.
    """
    x = vibration.check_burst(accel_g, fs_hz, min_samples=256)
    if shaft_hz is not None and (not math.isfinite(shaft_hz) or shaft_hz <= 0):
        raise ValueError(f"shaft speed must be positive, got {shaft_hz!r} Hz")
    iso_low_hz, iso_high_hz = vibration.ISO_BAND_HZ
    if fs_hz / 2.0 < MIN_ISO_NYQUIST_HZ:
        raise ValueError(f"a sample rate of {fs_hz:g} Hz cannot carry the {iso_low_hz:g}-{iso_high_hz:g} Hz "
                         f"vibration band: give at least {2 * MIN_ISO_NYQUIST_HZ:g} Hz "
                         f"({2 * iso_high_hz:g} Hz for the whole band)")
    if fs_hz > MAX_ANALYSIS_FS_HZ:
        x, fs_hz = vibration.resample(x, fs_hz, MAX_ANALYSIS_FS_HZ), MAX_ANALYSIS_FS_HZ
    overall = vibration.severity(x, fs_hz)
    zone = iso.zone(overall.velocity_rms_mm_s, limits)
    condition = iso.ZONE_CONDITION[zone]
    confidence = _zone_confidence(overall.velocity_rms_mm_s, limits)
    fault_type: str | None = None
    reasons = [
        f"velocity RMS {overall.velocity_rms_mm_s:.2f} mm/s (10-1000 Hz): ISO 10816-3 zone {zone} "
        f"(limits {limits.a_b_mm_s}/{limits.b_c_mm_s}/{limits.c_d_mm_s} mm/s)"
    ]
    values: dict[str, Any] = {**overall.to_dict(), "zone": zone, "shaft_hz": shaft_hz}
    coverage = iso_band_coverage(fs_hz)
    if coverage < 1.0:  # a partial band can only under-read: zones C/D stand, A/B are less sure
        values["iso_band_coverage"] = round(coverage, 3)
        reasons.append(f"the {fs_hz:g} Hz sample rate carries only {iso_low_hz:g}-{fs_hz / 2:g} Hz of the "
                       f"{iso_low_hz:g}-{iso_high_hz:g} Hz band: the velocity RMS is a lower bound")
        if zone in ("A", "B"):
            confidence *= coverage
    if shaft_hz is not None:
        running = _speed(x, fs_hz, shaft_hz, speed_range, measured_shaft_hz)
        shaft_hz = running.shaft_hz
        values.update(shaft_hz=round(shaft_hz, 3), rpm=round(running.rpm, 1), speed_source=running.source,
                      speed_uncertainty=running.uncertainty)
        reasons.append(running.describe())

    matches: tuple[bearings.DefectMatch, ...] = ()
    band = None
    unreachable = _unreachable_bearing_lines(fs_hz, shaft_hz, orders)
    if unreachable is not None:
        reasons.append(unreachable)
        if condition is Condition.OK:  # a bearing defect cannot be ruled out
            confidence = min(confidence, 0.5)
    elif orders is not None and shaft_hz is not None:
        matches, impulsive, series, lines_hz = _bearing_matches(x, fs_hz, shaft_hz, orders, running.uncertainty)
        band = impulsive.band
        top = max(matches, key=lambda m: m.score_db)
        values.update(envelope_band_hz=[round(band.low_hz, 1), round(band.high_hz, 1)],
                      spectral_kurtosis=band.spectral_kurtosis, band_kurtosis=round(impulsive.kurtosis, 2),
                      bearing_scores_db={m.fault_type: round(m.score_db, 1) for m in matches},
                      # trended per asset (edge/store/trends.py): the impacts' band level and each
                      # defect line's height grow with wear before a pattern is complete
                      envelope_band_rms_g=vibration.band_rms_g(x, fs_hz, (band.low_hz, band.high_hz)),
                      bearing_lines_db={m.fault_type: round(m.fundamental.above_floor_db, 1) for m in matches},
                      envelope_lines_hz=lines_hz)
        if top.score_db >= WARNING_SCORE_DB:
            found = Condition.FAULT if top.score_db >= FAULT_SCORE_DB else Condition.WARNING
            fault_type = top.fault_type  # a named defect outranks an anonymous zone
            checks = confirm.checks(top, impulsive)  # their figures first, the finding after them
            reasons.extend(check.reason for check in checks)
            reasons.append(_describe(top))
            if found is Condition.FAULT and top.family_lines < FAULT_MIN_LINES:
                found = Condition.WARNING
                reasons.append(f"only {top.family_lines} lines of the pattern: a smooth modulation shows 1x and 2x "
                               "too; a fault needs a third (3x or a sideband)")
            if found is Condition.FAULT and not all(check.passed for check in checks):
                found = Condition.WARNING
                reasons.append("held at warning: a fault needs its pattern clear of the floor, sidebands that fit "
                               "the race and an impulsive band (figures above)")
            values["fault_clearance_db"] = round(confirm.clearance_db(top), 1)
            guessed = running.uncertainty > bearings.SPEED_TOLERANCE
            if guessed and found is Condition.FAULT:  # windows this wide let one defect pass for another
                found = Condition.WARNING
                reasons.append("a fault needs the shaft speed: measured from the signal or a speed channel")
            if found.rank >= condition.rank:
                confidence = _score_confidence(top.score_db) * (SPEED_GUESSED_CONFIDENCE if guessed else 1.0)
                condition = found
            values["defect_freq_hz"] = round(top.fundamental.freq_hz, 2)
        else:
            reasons.append(f"no bearing defect pattern in the envelope spectrum (best {top.fault_type} "
                           f"{top.score_db:.1f} dB < {WARNING_SCORE_DB:.0f} dB)")
            if series is not None and not _near_defect(series, shaft_hz, orders, running.uncertainty):
                values["unexplained_series_hz"] = round(series.fundamental.freq_hz, 2)
                reasons.append(_describe_unexplained(series, shaft_hz, orders))
                if condition is Condition.OK:
                    condition, confidence = Condition.WARNING, UNEXPLAINED_CONFIDENCE
            elif condition is Condition.OK:  # ok is as sure as the weaker of its two arguments
                confidence = min(confidence, _margin_confidence(WARNING_SCORE_DB - top.score_db, 6.0))
    if zone in ("C", "D") and fault_type is None and shaft_hz is not None:
        shaft_fault = _shaft_fault(x, fs_hz, shaft_hz, overall.velocity_rms_mm_s)
        if shaft_fault is not None:
            fault_type, reason = shaft_fault
            reasons.append(reason)
    return VibrationDiagnosis(condition, fault_type, round(confidence, 3), overall, zone, tuple(reasons),
                              matches, band, values)


def _speed(x: np.ndarray, fs_hz: float, nominal_hz: float, range_frac: float,
           measured_hz: float | None) -> speed.SpeedEstimate:
    if measured_hz is not None:
        return speed.from_channel(measured_hz, nominal_hz, max(range_frac, speed.DEFAULT_RANGE))
    if range_frac <= 0:
        return speed.nominal(nominal_hz, 0.0)
    return speed.estimate(x, fs_hz, nominal_hz, range_frac)


def _bearing_matches(
    x: np.ndarray, fs_hz: float, shaft_hz: float, orders: bearings.DefectOrders, speed_uncertainty: float
) -> tuple[tuple[bearings.DefectMatch, ...], confirm.Impulsiveness, Series | None, list[float]]:
    """Best match per defect type over the full-band and the kurtogram-band envelope spectra of the
    prewhitened signal, how impulsive the kurtogram band is, the strongest harmonic series of any
    kind in either spectrum (fundamental 0.3-7 x shaft), and the strong lines of both (Hz).

    Both start from the prewhitened signal: two discrete lines inside a band beat in its envelope
    at their spacing, so a healthy machine's rig lines 162 Hz apart read as BPFI in a raw band.
    """
    # the band must start well above the highest defect harmonic searched (3 x BPFI)
    min_low_hz = min(fs_hz / 4.0, 4.0 * orders.bpfi * shaft_hz)
    # ... and be wide enough for its envelope to carry the highest line matched (3 x BPFI + 1 x shaft,
    # or 6 x BSF + FTF for a ball's 2-4-6 x BSF series)
    min_width_hz = max(3.0 * orders.bpfi + 1.0, 6.0 * orders.bsf + orders.ftf) * shaft_hz
    white = envelope.prewhiten(x)
    supply_hz = mains.supply_hz(x, fs_hz, shaft_hz)
    spectra = {
        "prewhitened full band": envelope.full_band_envelope_spectrum(white, fs_hz),
        "kurtogram band": envelope.envelope_spectrum(white, fs_hz, min_low_hz=min_low_hz, min_width_hz=min_width_hz),
    }
    best: dict[str, bearings.DefectMatch] = {}
    series: Series | None = None
    lines_hz: set[float] = set()
    top_hz = max(3.0 * orders.bpfi, 6.0 * orders.bsf) * shaft_hz
    for name, spec in spectra.items():
        lines_hz.update(bearings.strong_lines_hz(spec.freqs_hz, spec.amplitude, shaft_hz, top_hz))
        for match in bearings.match_defects(spec.freqs_hz, spec.amplitude, shaft_hz, orders, spectrum=name,
                                            speed_uncertainty=speed_uncertainty, mains_hz=supply_hz):
            if match.fault_type not in best or match.score_db > best[match.fault_type].score_db:
                best[match.fault_type] = match
        found = strongest_series(spec.freqs_hz, spec.amplitude, shaft_hz, (0.3 * shaft_hz, 7.0 * shaft_hz),
                                 spectrum=name, mains_hz=supply_hz)
        if found is not None and (series is None or found.score_db > series.score_db):
            series = found
    impulsive = confirm.impulsiveness(white, fs_hz, spectra["kurtogram band"].band)
    return tuple(best.values()), impulsive, series, sorted(lines_hz)


def _near_defect(series: Series, shaft_hz: float, orders: bearings.DefectOrders,
                 speed_uncertainty: float) -> bool:
    """A series whose fundamental sits on a defect frequency was judged by that pattern already."""
    f0_hz = series.fundamental.freq_hz
    nominal_hz = orders.frequencies_hz(shaft_hz).values()
    tolerance = bearings.SPEED_TOLERANCE + speed_uncertainty
    return any(abs(f0_hz - f_hz) <= tolerance * f_hz for f_hz in nominal_hz)


def _describe_unexplained(series: Series, shaft_hz: float, orders: bearings.DefectOrders) -> str:
    f = series.fundamental
    present = ", ".join(f"{line.freq_hz:.1f} Hz {line.above_floor_db:.1f} dB" for line in series.harmonics
                        if line.present)
    nominal = orders.frequencies_hz(shaft_hz)
    expected = ", ".join(f"{bearings.symbol(name)} {f_hz:.1f} Hz" for name, f_hz in nominal.items())
    return (
        f"unexplained impulsive envelope series: {f.freq_hz:.1f} Hz = {f.order:.2f} x shaft with harmonics "
        f"({present}; {series.score_db:.1f} dB summed, {series.spectrum}) matches no bearing defect frequency "
        f"({expected}) nor a shaft harmonic: periodic impacts of unknown source, inspect"
    )


def _describe(match: bearings.DefectMatch) -> str:
    f = match.fundamental
    extra = [line for line in (*match.harmonics[1:], *match.sidebands) if line.present
             and (line in match.harmonics or match.fault_type != bearings.OUTER_RACE)]
    also = f"; also {', '.join(f'{line.label} {line.above_floor_db:.1f} dB' for line in extra)}" if extra else ""
    name = match.fault_type.replace("_", "-")
    if match.line_hidden:
        return (f"{bearings.symbol(match.fault_type)} at {f.freq_hz:.1f} Hz = {f.order:.2f} x shaft is hidden under a "
                f"shaft or supply line ({match.spectrum}){also}: {name} defect (pattern score {match.score_db:.1f} dB)")
    return (
        f"envelope peak at {f.freq_hz:.1f} Hz = {f.order:.2f} x shaft, {f.above_floor_db:.1f} dB above floor "
        f"({match.spectrum}){also}: {name} defect (pattern score {match.score_db:.1f} dB)"
    )


def iso_band_coverage(fs_hz: float) -> float:
    """The share (log frequency) of the ISO band below the Nyquist frequency: 1.0 from 2000 Hz."""
    low_hz, high_hz = vibration.ISO_BAND_HZ
    top_hz = min(high_hz, fs_hz / 2.0)
    return max(0.0, math.log(top_hz / low_hz) / math.log(high_hz / low_hz))


def _unreachable_bearing_lines(
    fs_hz: float, shaft_hz: float | None, orders: bearings.DefectOrders | None
) -> str | None:
    """Why the bearing lines asked for cannot be analysed at this sample rate, or None when they can."""
    if orders is None or shaft_hz is None:
        return None
    name, highest_hz = max(orders.frequencies_hz(shaft_hz).items(), key=lambda item: item[1])
    needed_hz = 2.0 * BEARING_NYQUIST_ORDERS * highest_hz
    if fs_hz >= needed_hz:
        return None
    return (f"bearing lines not analysed: the {name} line at {highest_hz:.1f} Hz needs a sample rate of at least "
            f"{needed_hz:.0f} Hz, the burst has {fs_hz:g} Hz")


def _margin_confidence(margin: float, scale: float) -> float:
    """0.5 on the decision line, rising towards 0.95 as the margin grows (in units of ``scale``)."""
    return 0.5 + 0.45 * math.tanh(max(margin, 0.0) / scale)


def _zone_confidence(velocity_mm_s: float, limits: iso.ZoneLimits) -> float:
    """Distance (log ratio) to the nearest boundary that changes the condition: B/C or C/D."""
    velocity_mm_s = max(velocity_mm_s, 1e-9)
    distance = min(abs(math.log(velocity_mm_s / limits.b_c_mm_s)), abs(math.log(velocity_mm_s / limits.c_d_mm_s)))
    return _margin_confidence(distance, 0.3)


def _score_confidence(score_db: float) -> float:
    """Pattern score -> confidence: 0.5 at the warning line, ~0.95 well past the fault line."""
    return _margin_confidence(score_db - WARNING_SCORE_DB, FAULT_SCORE_DB)


def _shaft_fault(x: np.ndarray, fs_hz: float, shaft_hz: float, velocity_rms_mm_s: float) -> tuple[str, str] | None:
    """Imbalance (1x dominates) or looseness (many shaft harmonics) in the velocity spectrum."""
    freqs_hz, velocity = vibration.velocity_spectrum_mm_s(x, fs_hz)
    df_hz = freqs_hz[1] - freqs_hz[0]

    def rms_at(order: float) -> float:
        near = np.abs(freqs_hz - order * shaft_hz) <= max(2 * df_hz, 0.02 * order * shaft_hz)
        return float(velocity[near].max() / math.sqrt(2)) if near.any() else 0.0

    one_x = rms_at(1)
    share = one_x / velocity_rms_mm_s if velocity_rms_mm_s > 0 else 0.0
    if share >= 0.7:
        return IMBALANCE, (f"1x shaft ({shaft_hz:.1f} Hz) carries {one_x:.2f} mm/s = {share:.0%} of velocity RMS: "
                           "imbalance")
    harmonics = [rms_at(k) for k in range(2, 7)]
    strong = [k + 2 for k, v in enumerate(harmonics) if v >= 0.3 * one_x and v >= 0.1 * velocity_rms_mm_s]
    if len(strong) >= 3:
        return LOOSENESS, f"shaft harmonics {', '.join(f'{k}x' for k in strong)} are strong (>=30% of 1x): looseness"
    return None
