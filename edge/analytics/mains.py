"""Which supply frequency, 50 or 60 Hz, a burst shows: the one whose lines stand out.

The supply's lines in the envelope (multiples of twice the line frequency, ``bearings.MAINS_HZ``)
do not follow the shaft and are never taken for bearing lines. Both families together mask a good
part of the envelope spectrum (with 1.5 Hz bins, every multiple of 100 and 120 Hz +-2.25 Hz: about
8 % of it), so a defect line near 120 Hz on a 50 Hz grid would be lost for nothing. A motor shows
its supply in the acceleration spectrum, at the line frequency and, from the magnetic forces, at
twice it; when exactly one of the two families stands out, only that one is masked. When
neither or both do, both are (a defect line may not be taken for an electrical one).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from edge.analytics.bearings import LINE_DB, MAINS_HZ, local_floor, not_bearing_line

SUPPLY_LINES = 3  # 1x, 2x and 3x the line frequency
MIN_SUPPLY_LINES = 2


def supply_hz(x: np.ndarray, fs_hz: float, shaft_hz: float) -> tuple[float, ...]:
    """``MAINS_HZ`` narrowed to the supply frequency the burst shows, when it shows exactly one.
    A mains harmonic on a shaft harmonic is no evidence either way."""
    nperseg = int(min(x.size, round(fs_hz)))  # 1 Hz bins, averaged when the burst is longer than 1 s
    freqs_hz, power = signal.welch(x - x.mean(), fs=fs_hz, window="hann", nperseg=nperseg)
    df_hz = float(freqs_hz[1] - freqs_hz[0])
    amplitude = np.maximum(np.sqrt(power), np.finfo(float).tiny)
    heights_db = 20.0 * np.log10(amplitude / local_floor(amplitude, round(20.0 / df_hz)))
    shown = []
    for line_hz in MAINS_HZ:
        lines = [heights_db[np.abs(freqs_hz - k * line_hz) <= 1.5 * df_hz].max(initial=0.0)
                 for k in range(1, SUPPLY_LINES + 1) if k * line_hz < fs_hz / 2.0
                 and not not_bearing_line(np.array([k * line_hz]), shaft_hz, df_hz, ())[0]]
        if sum(height >= LINE_DB for height in lines) >= MIN_SUPPLY_LINES:
            shown.append(line_hz)
    return tuple(shown) if len(shown) == 1 else MAINS_HZ
