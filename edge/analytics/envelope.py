"""Envelope analysis: pick the impulsive band by spectral kurtosis, demodulate, and take the spectrum.

Bearing defects excite structural resonances with short impacts repeating at the defect
frequency. Band-passing around the most impulsive band (highest spectral kurtosis, searched
over several window lengths = bandwidths, i.e. an STFT kurtogram after Antoni 2006) and taking
the Hilbert envelope turns those impacts into lines at the defect frequency and its harmonics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from edge.analytics.vibration import check_burst

# Window lengths searched by the kurtogram: bandwidths fs/N from fs/16 to fs/256.
KURTOGRAM_WINDOWS = (16, 32, 64, 128, 256)
MIN_AVERAGES = 5


@dataclass(frozen=True)
class Band:
    low_hz: float
    high_hz: float
    spectral_kurtosis: float

    @property
    def centre_hz(self) -> float:
        return (self.low_hz + self.high_hz) / 2.0


@dataclass(frozen=True)
class EnvelopeSpectrum:
    freqs_hz: np.ndarray  # (F,)
    amplitude: np.ndarray  # (F,) squared-envelope RMS amplitude per bin, DC removed
    band: Band


def spectral_kurtosis(x: np.ndarray, fs_hz: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """SK(f) = <|X|^4> / <|X|^2>^2 - 2 over STFT frames: 0 for Gaussian noise, large for impacts."""
    freqs_hz, _, stft = signal.stft(x, fs=fs_hz, window="hann", nperseg=nperseg, noverlap=nperseg * 3 // 4,
                                    boundary=None, padded=False)
    power = np.abs(stft) ** 2  # (F, T)
    mean_power = power.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sk = np.where(mean_power > 0, (power**2).mean(axis=1) / mean_power**2 - 2.0, 0.0)
    return freqs_hz, sk


def select_band(x: np.ndarray, fs_hz: float, min_low_hz: float = 0.0, min_width_hz: float = 0.0) -> Band:
    """The band (centre, width) with the highest spectral kurtosis over all window lengths.

    Bands reaching below ``min_low_hz`` are skipped: the band must sit well above the defect
    frequencies so the envelope carries them as modulation, not as the carrier. Bands narrower
    than ``min_width_hz`` are skipped too: a band's envelope holds no modulation faster than its
    width, and noise in a band narrower than the lines sought raises lines of its own near 0 Hz.
    """
    nyquist_hz = fs_hz / 2.0
    best = Band(max(min_low_hz, nyquist_hz * 0.1), nyquist_hz * 0.9, -np.inf)
    for nperseg in KURTOGRAM_WINDOWS:
        bandwidth_hz = fs_hz / nperseg
        if x.size < nperseg * 8 or 2.0 * bandwidth_hz < min_width_hz:
            continue
        freqs_hz, sk = spectral_kurtosis(x, fs_hz, nperseg)
        for centre_hz, value in zip(freqs_hz, sk, strict=True):
            low_hz, high_hz = centre_hz - bandwidth_hz, centre_hz + bandwidth_hz
            if low_hz < max(min_low_hz, 1.0) or high_hz > nyquist_hz * 0.98:
                continue
            if value > best.spectral_kurtosis:
                best = Band(float(low_hz), float(high_hz), float(value))
    if not np.isfinite(best.spectral_kurtosis):
        best = Band(best.low_hz, best.high_hz, 0.0)
    return best


def prewhiten(samples: np.ndarray) -> np.ndarray:
    """Cepstral prewhitening: unit magnitude, phase kept (Randall & Sawalhi).

    Removes discrete lines and the resonance shape in one step, leaving impacts; with it the
    full-band envelope finds race faults without a band search.
    """
    spectrum = np.fft.rfft(samples - np.mean(samples))
    magnitude = np.abs(spectrum)
    spectrum = np.where(magnitude > 0, spectrum / np.maximum(magnitude, np.finfo(float).tiny), 0.0)
    return np.fft.irfft(spectrum, n=len(samples))


def envelope_spectrum(
    samples: np.ndarray,
    fs_hz: float,
    band: Band | None = None,
    min_low_hz: float = 0.0,
    min_width_hz: float = 0.0,
    segment_s: float = 1.0,
) -> EnvelopeSpectrum:
    """Welch-averaged squared-envelope spectrum of ``samples`` band-passed to ``band``, up to the
    band's width (the fastest modulation its envelope can carry).

    ``band`` None picks the band by spectral kurtosis. Averaging over ``segment_s`` windows
    (1 Hz bins by default) steadies the noise floor so lines stand out reliably.
    """
    x = check_burst(samples, fs_hz, min_samples=256)
    x = x - x.mean()
    if band is None:
        band = select_band(x, fs_hz, min_low_hz, min_width_hz)
    sos = signal.butter(4, [band.low_hz, band.high_hz], btype="bandpass", fs=fs_hz, output="sos")
    filtered = signal.sosfiltfilt(sos, x)
    return _squared_envelope_spectrum(filtered, fs_hz, band, segment_s)


def full_band_envelope_spectrum(samples: np.ndarray, fs_hz: float, segment_s: float = 1.0) -> EnvelopeSpectrum:
    """Squared-envelope spectrum over the whole band, unfiltered: give it a prewhitened signal,
    whose flat spectrum leaves only the impacts' modulation."""
    x = check_burst(samples, fs_hz, min_samples=256)
    return _squared_envelope_spectrum(x - x.mean(), fs_hz, Band(0.0, fs_hz / 2.0, 0.0), segment_s)


def _squared_envelope_spectrum(filtered: np.ndarray, fs_hz: float, band: Band, segment_s: float) -> EnvelopeSpectrum:
    squared_envelope = np.abs(signal.hilbert(filtered)) ** 2  # (N,)
    # at least MIN_AVERAGES half-overlapping segments: an unaveraged spectrum's noise bins
    # poke far above its median and read as lines; short bursts trade resolution for that
    nperseg = int(min(round(segment_s * fs_hz), 2 * squared_envelope.size // (MIN_AVERAGES + 1)))
    nperseg = max(nperseg, min(256, squared_envelope.size))
    freqs_hz, power = signal.welch(squared_envelope - squared_envelope.mean(), fs=fs_hz, window="hann",
                                   nperseg=nperseg, scaling="spectrum")
    carried = freqs_hz <= band.high_hz - band.low_hz
    return EnvelopeSpectrum(freqs_hz[carried], np.sqrt(power[carried]), band)
