"""Synthetic healthy machines: everything a healthy motor and its neighbours put in a burst that
is not a bearing defect, at a chosen shaft speed.

- shaft harmonics 1x..4x (residual imbalance, misalignment),
- a constant-frequency cyclostationary line that does not follow the shaft: broadband noise in
  2-4 kHz whose level swings at ``fixed_hz`` (a neighbouring machine's blade pass, a pump),
- mains at 50 or 60 Hz with harmonics, and broadband noise whose level swings at 2 x mains
  (magnetic forces),
- a gear mesh (``teeth`` x shaft) with +-1x shaft sidebands,
- broadband noise.
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def healthy_burst(shaft_hz: float, fs_hz: float, seconds: float, mains_hz: float = 50.0, fixed_hz: float = 72.0,
                  teeth: int = 23, fixed_depth: float = 1.0, seed: int = 0) -> np.ndarray:
    """(N,) acceleration in g."""
    rng = np.random.default_rng(seed)
    n = int(fs_hz * seconds)
    t = np.arange(n) / fs_hz  # (N,)
    x = rng.normal(0.0, 0.02, n)  # broadband noise
    x += sum(0.01 / k * np.sin(2 * np.pi * k * shaft_hz * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 5))
    x += sum(0.004 / k * np.sin(2 * np.pi * k * mains_hz * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 7))
    mesh_hz = teeth * shaft_hz
    if mesh_hz < 0.45 * fs_hz:
        x += 0.02 * np.sin(2 * np.pi * mesh_hz * t) * (1.0 + 0.3 * np.cos(2 * np.pi * shaft_hz * t))
    band = signal.butter(4, [min(2000.0, 0.25 * fs_hz), min(4000.0, 0.45 * fs_hz)], btype="bandpass", fs=fs_hz,
                         output="sos")
    carrier = signal.sosfilt(band, rng.normal(0.0, 0.05, n))
    x += carrier * (1.0 + fixed_depth * np.cos(2 * np.pi * fixed_hz * t))
    electrical = signal.sosfilt(band, rng.normal(0.0, 0.03, n))
    x += electrical * (1.0 + 0.3 * np.cos(2 * np.pi * 2 * mains_hz * t))
    return x


def impacts_burst(shaft_hz: float, impact_hz: float, fs_hz: float, seconds: float, seed: int = 0) -> np.ndarray:
    """Shaft harmonics, noise and a train of short impacts at ``impact_hz`` ringing a 3 kHz resonance:
    a bearing defect when ``impact_hz`` follows the shaft, a fixed source nearby when it does not."""
    rng = np.random.default_rng(seed)
    n = int(fs_hz * seconds)
    t = np.arange(n) / fs_hz
    x = rng.normal(0.0, 0.05, n)
    x += sum(0.02 / k * np.sin(2 * np.pi * k * shaft_hz * t + k) for k in range(1, 5))
    impulses = np.zeros(n)
    times = np.arange(0.0, seconds, 1.0 / impact_hz)
    times += rng.normal(0, 0.002 / impact_hz, times.size)  # slip jitter
    impulses[np.clip((times * fs_hz).astype(int), 0, n - 1)] = 1.0
    ring_t = np.arange(int(0.004 * fs_hz)) / fs_hz
    return x + 0.3 * np.convolve(impulses, np.exp(-ring_t * 1500.0) * np.sin(2 * np.pi * 3000.0 * ring_t))[:n]
