"""Shaft speed from the vibration itself: the 1x line and its harmonics, near the nameplate speed.

Real machines run off their nameplate: an induction motor slips 1-5 % under load, a VFD sets
any speed. Defect frequencies scale with the true speed, so diagnosing at the nominal one puts
the search windows in the wrong place. Every rotating machine shows its shaft harmonics in the
acceleration spectrum (residual imbalance, misalignment); the speed whose harmonic comb
(1x .. 10x) stands highest above the floor, within the configured range of the nominal speed, is
the estimate. Mains lines (50/60 Hz and harmonics) do not follow the shaft and are left out of
the comb. When no comb stands out, the nominal speed is kept and its uncertainty is the whole
range, which widens the defect search and demands more of a pattern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.analytics.bearings import LINE_DB, MAINS_HZ, local_floor
from edge.analytics.vibration import check_burst

DEFAULT_RANGE = 0.08  # induction-motor slip and VFD set-point error around the nameplate speed
COMB_HARMONICS = 10
MIN_COMB_LINES = 2  # 1x and one more harmonic standing >= LINE_DB above the floor for the comb to be believed
LINE_CAP_DB = 20.0  # one huge line (a gear mesh, a resonance) must not carry the comb alone
ZERO_PAD = 8
MAX_FFT = 2**20  # 16 MB of spectrum: bounded on a Pi whatever the burst length
ONE_X_DB = 12.0
MIN_OBSERVABLE = 4  # comb harmonics clear of mains lines


@dataclass(frozen=True)
class SpeedEstimate:
    """The shaft speed diagnosed at, where it came from and how sure it is (relative, +-)."""

    shaft_hz: float
    nominal_hz: float
    source: str  # "signal" | "channel" | "nominal"
    uncertainty: float  # relative half-width of where the true speed may lie
    comb_lines: int = 0  # shaft harmonics found (signal only)

    @property
    def rpm(self) -> float:
        return self.shaft_hz * 60.0

    @property
    def offset(self) -> float:
        """Estimated over nominal speed, minus one: +0.05 runs 5 % fast."""
        return self.shaft_hz / self.nominal_hz - 1.0

    def describe(self) -> str:
        if self.source == "nominal":
            return (f"shaft speed {self.rpm:.0f} rpm (nominal; no shaft-harmonic comb found in the signal, "
                    f"defect search widened to +-{self.uncertainty:.0%})")
        origin = (f"{self.comb_lines} shaft harmonics in the spectrum" if self.source == "signal"
                  else "the speed channel")
        return (f"shaft speed {self.rpm:.0f} rpm from {origin} ({self.offset:+.1%} against nominal "
                f"{self.nominal_hz * 60.0:.0f} rpm, +-{self.uncertainty:.1%})")


def nominal(nominal_hz: float, range_frac: float = DEFAULT_RANGE) -> SpeedEstimate:
    return SpeedEstimate(nominal_hz, nominal_hz, "nominal", range_frac)


def from_channel(speed_hz: float, nominal_hz: float, range_frac: float = DEFAULT_RANGE,
                 uncertainty: float = 0.002) -> SpeedEstimate:
    """A tachometer, a VFD's measured motor speed or a published shaft speed: believed only inside
    the range (outside it, a scaling error is likelier than the shaft)."""
    if not math.isfinite(speed_hz) or speed_hz <= 0:
        raise ValueError(f"speed channel reads {speed_hz!r} Hz, not a positive number")
    if abs(speed_hz / nominal_hz - 1.0) > range_frac:
        raise ValueError(f"speed channel reads {speed_hz * 60:.0f} rpm, outside +-{range_frac:.0%} of the nominal "
                         f"{nominal_hz * 60:.0f} rpm: check its scaling or the configured rpm")
    return SpeedEstimate(speed_hz, nominal_hz, "channel", uncertainty)


def estimate(
    accel_g: np.ndarray,
    fs_hz: float,
    nominal_hz: float,
    range_frac: float = DEFAULT_RANGE,
    mains_hz: tuple[float, ...] = MAINS_HZ,
) -> SpeedEstimate:
    """The speed within ``range_frac`` of ``nominal_hz`` whose harmonic comb stands highest."""
    x = check_burst(accel_g, fs_hz, min_samples=256)
    n_fft = max(x.size, min(ZERO_PAD * x.size, MAX_FFT))  # a long record resolves its lines without padding
    window = np.hanning(x.size)
    amplitude = np.abs(np.fft.rfft((x - x.mean()) * window, n=n_fft))  # (n_fft/2+1,)
    freqs_hz = np.fft.rfftfreq(n_fft, 1.0 / fs_hz)
    df_hz = float(freqs_hz[1])
    resolution_hz = 2.0 * fs_hz / x.size  # Hann main-lobe half-width
    top_hz = min(COMB_HARMONICS * nominal_hz * (1.0 + range_frac) + resolution_hz, 0.45 * fs_hz)
    used = freqs_hz <= top_hz
    freqs_hz, amplitude = freqs_hz[used], amplitude[used]
    floor = local_floor(amplitude, round(max(10.0 * resolution_hz, nominal_hz) / df_hz))
    heights_db = np.maximum(20.0 * np.log10(np.maximum(amplitude, np.finfo(float).tiny) / floor), 0.0)
    heights_db[freqs_hz < max(2.0 * resolution_hz, 1.0)] = 0.0
    capped_db = np.minimum(heights_db, LINE_CAP_DB)

    step = df_hz / (2.0 * COMB_HARMONICS)
    candidates_hz = np.arange(nominal_hz * (1.0 - range_frac), nominal_hz * (1.0 + range_frac) + step, step)  # (C,)
    orders = np.arange(1, COMB_HARMONICS + 1)  # (K,)
    comb_hz = np.outer(candidates_hz, orders)  # (C, K)
    # a harmonic on a mains line cannot be told from it: such harmonics are left out of that
    # candidate's comb, which is scored by its mean line so that leaving some out is no penalty
    observable = comb_hz <= freqs_hz[-1]
    for line_hz in mains_hz:
        observable &= np.abs(comb_hz - np.round(comb_hz / line_hz) * line_hz) > resolution_hz
    lines_db = np.where(observable, capped_db[_bins(comb_hz, df_hz, freqs_hz.size)], 0.0)  # (C, K)
    counted = observable.sum(axis=1)
    present = (lines_db >= LINE_DB).sum(axis=1)
    score = lines_db.sum(axis=1) / np.maximum(counted, 1)
    # the 1x line is the one every rotating machine shows, and it must stand clear of the noise
    # (a bin 6 dB up is common among thousands): a comb without it is some other family, e.g.
    # the harmonics of a defect's impacts seen as every 4th harmonic of a quarter of their rate.
    # Only a 1x hidden under a mains line (a 2-pole motor) is excused, for one more harmonic.
    one_x = np.where(observable[:, 0], lines_db[:, 0] >= ONE_X_DB, present >= MIN_COMB_LINES + 1)
    score[(counted < MIN_OBSERVABLE) | ~one_x | (present < MIN_COMB_LINES)] = 0.0
    best = int(np.argmax(score))
    if score[best] <= 0.0:
        return nominal(nominal_hz, range_frac)
    found = orders[lines_db[best] >= LINE_DB]  # the harmonics that make the comb
    shaft_hz = _refine(candidates_hz[best], found, heights_db, df_hz, resolution_hz)
    highest = int(found.max())
    uncertainty = max(0.002, resolution_hz / 2.0 / (highest * shaft_hz))
    return SpeedEstimate(shaft_hz, nominal_hz, "signal", round(uncertainty, 4), int(found.size))


def _bins(freqs_hz: np.ndarray, df_hz: float, size: int) -> np.ndarray:
    bins: np.ndarray = np.minimum(np.rint(freqs_hz / df_hz).astype(int), size - 1)
    return bins


def _refine(coarse_hz: float, orders: np.ndarray, heights_db: np.ndarray, df_hz: float, resolution_hz: float) -> float:
    """The speed near ``coarse_hz`` where the comb's own harmonics peak, uncapped.

    The coarse search caps each line (so no single line carries it), which flattens the tops of
    the lines: many candidates tie and the first wins. Summing the same harmonics' heights as
    amplitude ratios (not dB, so a weak line that is half noise cannot pull the strong ones off
    their peaks) over one main lobe of the 1x line puts the speed on their peaks.
    """
    step = df_hz / (2.0 * orders.max())
    candidates_hz = np.arange(coarse_hz - resolution_hz / 2.0, coarse_hz + resolution_hz / 2.0 + step, step)  # (C,)
    heights_db = heights_db[_bins(np.outer(candidates_hz, orders), df_hz, heights_db.size)]  # (C, P)
    return float(candidates_hz[int(np.argmax((10.0 ** (heights_db / 20.0)).sum(axis=1)))])
