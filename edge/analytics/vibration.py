"""Overall vibration severity from an accelerometer burst: velocity RMS, peak, crest factor, kurtosis,
and the acceleration RMS in the bearing band.

Velocity is obtained by integrating acceleration in the frequency domain (divide the spectrum by
2*pi*f), which avoids the drift of time-domain integration and band-limits the result to the
10-1000 Hz range that ISO 10816-3 / ISO 20816 severity is defined over. Bearing wear shows first
above that range, as impacts ringing structural resonances at 1-10 kHz, long before velocity
moves: the bearing-band acceleration RMS is the level to trend for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal, stats

STANDARD_GRAVITY_M_S2 = 9.80665
ISO_BAND_HZ = (10.0, 1000.0)
BEARING_BAND_HZ = (1000.0, 10_000.0)
MIN_SAMPLES = 64


@dataclass(frozen=True)
class Severity:
    """Time- and frequency-domain overall features of one burst."""

    velocity_rms_mm_s: float  # ISO band, frequency-domain integration
    acceleration_rms_g: float
    acceleration_peak_g: float
    crest_factor: float
    kurtosis: float  # Pearson (normal noise = 3)
    band_hz: tuple[float, float]
    bearing_band_rms_g: float | None = None  # BEARING_BAND_HZ; None when the sample rate cannot reach it


    def to_dict(self) -> dict[str, float | None]:
        return {
            "velocity_rms_mm_s": self.velocity_rms_mm_s,
            "acceleration_rms_g": self.acceleration_rms_g,
            "acceleration_peak_g": self.acceleration_peak_g,
            "crest_factor": self.crest_factor,
            "kurtosis": self.kurtosis,
            "bearing_band_rms_g": self.bearing_band_rms_g,
        }


def check_burst(samples: np.ndarray, fs_hz: float, min_samples: int = MIN_SAMPLES) -> np.ndarray:
    """Return ``samples`` as a finite 1-D float64 array, or raise ValueError saying what is wrong."""
    if np.iscomplexobj(samples):  # casting would silently drop the imaginary part
        raise ValueError("a vibration burst must be real acceleration samples, got complex numbers")
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        x = np.squeeze(x)
        if x.ndim != 1:
            raise ValueError(f"a vibration burst must be one channel, got shape {np.shape(samples)}")
    if not np.isfinite(fs_hz) or fs_hz <= 0:
        raise ValueError(f"sample rate must be a positive number of Hz, got {fs_hz!r}")
    if x.size < min_samples:
        raise ValueError(f"a vibration burst needs at least {min_samples} samples, got {x.size}")
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise ValueError(f"the burst holds {bad} NaN/inf sample(s) out of {x.size}")
    return x


def _band_psd(accel_g: np.ndarray, fs_hz: float, band_hz: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, float]:
    """Welch PSD of acceleration in (m/s^2)^2/Hz, the frequencies inside ``band_hz``, and the bin width.

    Segments of 1 s give 1 Hz bins so a 10 Hz band edge is resolved.
    """
    x = check_burst(accel_g, fs_hz)
    accel_m_s2 = (x - x.mean()) * STANDARD_GRAVITY_M_S2
    nperseg = int(min(x.size, max(MIN_SAMPLES, round(fs_hz))))
    freqs_hz, psd = signal.welch(accel_m_s2, fs=fs_hz, window="hann", nperseg=nperseg, scaling="density")
    low_hz, high_hz = band_hz
    inside = (freqs_hz >= low_hz) & (freqs_hz <= min(high_hz, fs_hz / 2.0)) & (freqs_hz > 0)
    return freqs_hz[inside], psd[inside], float(freqs_hz[1] - freqs_hz[0])


def velocity_rms_mm_s(accel_g: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = ISO_BAND_HZ) -> float:
    """Velocity RMS in mm/s over ``band_hz`` from acceleration in g: the acceleration PSD divided
    by (2*pi*f)^2 and integrated over the band (Parseval in the frequency domain)."""
    freqs_hz, psd, df_hz = _band_psd(accel_g, fs_hz, band_hz)
    if freqs_hz.size == 0:
        return 0.0
    velocity_psd = psd / (2.0 * np.pi * freqs_hz) ** 2  # (m/s)^2 / Hz
    return float(np.sqrt(np.sum(velocity_psd) * df_hz) * 1000.0)


def bearing_band_rms_g(
    accel_g: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = BEARING_BAND_HZ
) -> float | None:
    """Acceleration RMS in g over ``band_hz`` (capped at 0.45 x the sample rate, below the
    anti-alias roll-off); None when the rate leaves a band narrower than 1.5 : 1."""
    high_hz = min(band_hz[1], 0.45 * fs_hz)
    if high_hz < 1.5 * band_hz[0]:
        return None
    return band_rms_g(accel_g, fs_hz, (band_hz[0], high_hz))


def band_rms_g(accel_g: np.ndarray, fs_hz: float, band_hz: tuple[float, float]) -> float:
    """Acceleration RMS in g over ``band_hz`` (Parseval over the Welch PSD)."""
    _, psd, df_hz = _band_psd(accel_g, fs_hz, band_hz)
    return float(np.sqrt(np.sum(psd) * df_hz) / STANDARD_GRAVITY_M_S2)


def severity(accel_g: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = ISO_BAND_HZ) -> Severity:
    x = check_burst(accel_g, fs_hz)
    centred = x - x.mean()
    rms_g = float(np.sqrt(np.mean(centred**2)))
    peak_g = float(np.max(np.abs(centred)))
    return Severity(
        velocity_rms_mm_s=velocity_rms_mm_s(x, fs_hz, band_hz),
        acceleration_rms_g=rms_g,
        acceleration_peak_g=peak_g,
        crest_factor=peak_g / rms_g if rms_g > 0 else 0.0,
        kurtosis=float(stats.kurtosis(centred, fisher=False)) if rms_g > 0 else 0.0,
        band_hz=(band_hz[0], min(band_hz[1], fs_hz / 2.0)),
        bearing_band_rms_g=bearing_band_rms_g(x, fs_hz),
    )


def resample(samples: np.ndarray, fs_in_hz: float, fs_out_hz: float) -> np.ndarray:
    """Polyphase resampling (anti-aliased) to ``fs_out_hz``; the ratio is approximated to 1e-4."""
    x = check_burst(samples, fs_in_hz, min_samples=1)
    if fs_out_hz <= 0 or not np.isfinite(fs_out_hz):
        raise ValueError(f"target sample rate must be a positive number of Hz, got {fs_out_hz!r}")
    ratio = Fraction(fs_out_hz / fs_in_hz).limit_denominator(10_000)
    if ratio == 1:
        return x
    resampled: np.ndarray = signal.resample_poly(x, ratio.numerator, ratio.denominator)
    return resampled


def amplitude_spectrum(samples: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Single-sided, Hann-windowed amplitude spectrum (a tone of amplitude A reads ~A)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x - x.mean()
    window = np.hanning(x.size)
    spectrum = np.abs(np.fft.rfft(x * window)) * 2.0 / np.sum(window)
    return np.fft.rfftfreq(x.size, 1.0 / fs_hz), spectrum


def velocity_spectrum_mm_s(accel_g: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude spectrum of velocity (mm/s peak) from acceleration in g; DC bin set to 0."""
    freqs_hz, accel = amplitude_spectrum(accel_g, fs_hz)
    with np.errstate(divide="ignore", invalid="ignore"):
        velocity = np.where(freqs_hz > 0, accel * STANDARD_GRAVITY_M_S2 / (2 * np.pi * freqs_hz) * 1000.0, 0.0)
    return freqs_hz, velocity
