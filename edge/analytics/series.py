"""The strongest harmonic series in an envelope spectrum, whatever its source.

When no bearing defect pattern shows, a periodic train of impacts at some other frequency is still
worth naming (a loose part, a neighbour, a defect of a bearing other than the one configured):
``edge.analytics.diagnosis`` reports it as an unexplained series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.analytics.bearings import (
    LINE_DB,
    MAINS_HZ,
    SPEED_TOLERANCE,
    Line,
    half_order_comb,
    line_heights_db,
    not_bearing_line,
)


@dataclass(frozen=True)
class Series:
    """The strongest harmonic series in an envelope spectrum, whatever its source."""

    harmonics: tuple[Line, ...]  # 1x .. n x the fundamental
    score_db: float  # sum of dB above floor over the present harmonics
    spectrum: str

    @property
    def fundamental(self) -> Line:
        return self.harmonics[0]


MIN_SERIES_LINES = 3  # 1x, 2x and 3x present: fewer is too easily a coincidence


def strongest_series(
    freqs_hz: np.ndarray,
    amplitude: np.ndarray,
    shaft_hz: float,
    band_hz: tuple[float, float],
    spectrum: str = "envelope",
    n_harmonics: int = 5,
    mains_hz: tuple[float, ...] = MAINS_HZ,
) -> Series | None:
    """The harmonic series with the highest summed SNR whose fundamental lies in ``band_hz``.

    Scoring a series by the sum of dB above floor over several harmonics, not by one peak,
    is what separates a periodic train of impacts from a noise bin. A train of impacts shows
    its fundamental and its first harmonics, so 1x, 2x and 3x must all stand out. Lines on
    shaft or mains harmonics count as nothing (shaft modulation is normal), and a fundamental within
    ``SPEED_TOLERANCE`` of a shaft harmonic is no candidate.
    """
    df_hz = float(freqs_hz[1] - freqs_hz[0])
    prominence_db = line_heights_db(amplitude, df_hz, shaft_hz)
    loose = half_order_comb(freqs_hz, prominence_db, shaft_hz, mains_hz)
    prominence_db = np.where(not_bearing_line(freqs_hz, shaft_hz, df_hz, mains_hz, half_orders=loose), 0.0,
                             prominence_db)
    low_hz, high_hz = band_hz
    candidates = np.flatnonzero((freqs_hz >= max(low_hz, 3 * df_hz)) & (freqs_hz <= high_hz)
                                & (prominence_db >= LINE_DB))
    best: Series | None = None
    for index in candidates:
        f0_hz = float(freqs_hz[index])
        step_hz = shaft_hz / 2.0 if loose else shaft_hz
        k = round(f0_hz / step_hz)
        if k >= 1 and abs(f0_hz - k * step_hz) <= SPEED_TOLERANCE * k * step_hz:
            continue
        lines = [Line("1x", f0_hz, f0_hz / shaft_hz, float(prominence_db[index]))]
        for k in range(2, n_harmonics + 1):
            inside = np.flatnonzero(np.abs(freqs_hz - k * f0_hz) <= 1.5 * df_hz + 0.002 * k * f0_hz)
            if inside.size == 0:
                break
            at = int(inside[np.argmax(prominence_db[inside])])
            lines.append(Line(f"{k}x", float(freqs_hz[at]), float(freqs_hz[at]) / shaft_hz, float(prominence_db[at])))
        if len(lines) < MIN_SERIES_LINES or not all(line.present for line in lines[:MIN_SERIES_LINES]):
            continue
        present = [line for line in lines if line.present]
        score = sum(line.above_floor_db for line in present)
        if best is None or score > best.score_db:
            best = Series(tuple(lines), float(score), spectrum)
    return best
