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

from dataclasses import dataclass

import numpy as np
from scipy import signal

from edge.analytics import bearings


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


# --- varied rigs: what a machine nobody tuned for puts in a burst --------------------------------

RIG_BEARINGS = ("6203", "6204", "6205", "6206", "6305")
RIG_RATES_HZ = (8000.0, 10240.0, 12000.0, 12800.0, 20000.0, 25600.0, 48000.0)


@dataclass(frozen=True)
class Rig:
    """One machine drawn at random: bearing, speed, sensor rate, structure and condition of its mounting.

    Generic physics, not any one test rig: structural modes excited by broadband forces, shaft
    harmonics, mechanical looseness (a part that lifts and lands once per turn, every other turn
    harder: 1x harmonics with half orders, impacts ringing the structure), mains, a gear mesh and
    broadband noise at several levels.
    """

    bearing: str
    shaft_hz: float
    fs_hz: float
    mains_hz: float
    noise_g: float
    modes_hz: tuple[float, ...]  # structural resonances
    bearing_mode_hz: float  # the housing resonance a bearing's impacts ring
    damping: float  # modal damping ratio
    mode_gain: float  # how far a mode stands above the broadband floor (amplitude ratio)
    looseness: float  # 0: tight; else the per-turn impact's height in units of noise_g
    teeth: int  # gear mesh teeth on the shaft, 0: none
    rpm_error: float  # configured rpm over true, minus one

    @property
    def nominal_shaft_hz(self) -> float:
        return self.shaft_hz * (1.0 + self.rpm_error)


def draw_rig(seed: int, looseness: bool | None = None) -> Rig:
    """A rig drawn from ``seed``; ``looseness`` None draws it loose half the time."""
    rng = np.random.default_rng(seed)
    fs_hz = float(rng.choice(RIG_RATES_HZ))
    top_hz = min(0.42 * fs_hz, 12000.0)
    loose = bool(rng.random() < 0.5)
    loose = loose if looseness is None else looseness  # the same rig otherwise, loose or not
    return Rig(
        bearing=str(rng.choice(RIG_BEARINGS)),
        shaft_hz=float(rng.uniform(10.0, 60.0)),
        fs_hz=fs_hz,
        mains_hz=float(rng.choice((50.0, 60.0))),
        noise_g=float(10 ** rng.uniform(-2.3, -1.3)),  # 0.005-0.05 g
        modes_hz=tuple(sorted(float(f) for f in rng.uniform(300.0, top_hz, int(rng.integers(1, 4))))),
        bearing_mode_hz=float(rng.uniform(min(2000.0, 0.25 * fs_hz), top_hz)),
        damping=float(rng.uniform(0.01, 0.06)),
        mode_gain=float(10 ** rng.uniform(0.5, 1.5)),  # 10-30 dB
        looseness=float(rng.uniform(2.0, 8.0)) if loose else 0.0,
        teeth=int(rng.choice((0, 17, 23, 31))),
        rpm_error=float(rng.choice((-0.05, 0.0, 0.05))),
    )


def rig_burst(rig: Rig, seconds: float = 2.0, fault: str | None = None, severity: float = 4.0,
              seed: int = 0) -> np.ndarray:
    """(N,) acceleration in g of ``rig`` running, healthy or with a race ``fault`` ("outer_race",
    "inner_race") whose impacts peak at ``severity`` x the RMS of everything else in the band
    they ring (the housing resonance +-10 %): how far a defect stands out is what a detector can
    be asked to see, whatever the noise and the other resonances there."""
    if fault not in (None, bearings.OUTER_RACE, bearings.INNER_RACE):
        raise ValueError(f"a rig's fault is outer_race, inner_race or None, got {fault!r}")
    rng = np.random.default_rng(seed)
    n = int(rig.fs_hz * seconds)
    t = np.arange(n) / rig.fs_hz  # (N,)
    shaft_hz = rig.shaft_hz
    x = rng.normal(0.0, rig.noise_g, n)
    # structural modes excited by broadband forces (flow, friction): random, not periodic
    for mode_hz in rig.modes_hz:
        x += _ring(rng.normal(0.0, rig.mode_gain * rig.noise_g, n), mode_hz, rig.damping, rig.fs_hz)
    # residual imbalance and misalignment: 1x .. 6x shaft, 0.2-1.5 mm/s RMS at 1x
    x += sum(_line_g(rng.uniform(0.2, 1.5) / k, k * shaft_hz, t, rng) for k in range(1, 7))
    x += sum(_line_g(0.1 / k, k * rig.mains_hz, t, rng) for k in range(1, 6))  # magnetic forces
    if rig.teeth and rig.teeth * shaft_hz < 0.45 * rig.fs_hz:
        mesh_hz = rig.teeth * shaft_hz
        x += rig.noise_g * np.sin(2 * np.pi * mesh_hz * t) * (1.0 + 0.3 * np.cos(2 * np.pi * shaft_hz * t))
    if rig.looseness:
        x += _looseness(rig, t, rng)
    if fault is not None:
        low_hz, high_hz = 0.9 * rig.bearing_mode_hz, min(1.1 * rig.bearing_mode_hz, 0.49 * rig.fs_hz)
        band = signal.butter(4, [low_hz, high_hz], btype="bandpass", fs=rig.fs_hz, output="sos")
        background_g = float(np.std(signal.sosfiltfilt(band, x)))
        x += _race_defect(rig, fault, severity * background_g, t, rng)
    return x


def _line_g(velocity_rms_mm_s: float, freq_hz: float, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sine of the given velocity RMS, in g of acceleration."""
    peak_g = velocity_rms_mm_s * np.sqrt(2.0) * 2 * np.pi * freq_hz / 9806.65
    wave: np.ndarray = peak_g * np.sin(2 * np.pi * freq_hz * t + rng.uniform(0, 2 * np.pi))
    return wave


def _ring(force: np.ndarray, mode_hz: float, damping: float, fs_hz: float) -> np.ndarray:
    """A structural mode's response to ``force``: a resonator of quality factor 1 / (2 x damping)."""
    b, a = signal.iirpeak(mode_hz, 1.0 / (2.0 * damping), fs=fs_hz)
    response: np.ndarray = signal.lfilter(b, a, force)
    return response


def _impacts(times_s: np.ndarray, heights: np.ndarray, rig: Rig, n: int, mode_hz: float) -> np.ndarray:
    """Short impacts at ``times_s`` ringing the structure at ``mode_hz``."""
    impulses = np.zeros(n)
    index = np.clip((times_s * rig.fs_hz).astype(int), 0, n - 1)
    np.add.at(impulses, index, heights)
    ring_t = np.arange(int(min(0.01, 8.0 / (rig.damping * 2 * np.pi * mode_hz)) * rig.fs_hz)) / rig.fs_hz
    ring = np.exp(-rig.damping * 2 * np.pi * mode_hz * ring_t) * np.sin(2 * np.pi * mode_hz * ring_t)
    return np.convolve(impulses, ring)[:n]


def _looseness(rig: Rig, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mechanical looseness: 1x harmonics and half orders (a response that repeats every other turn),
    and a landing impact once per turn, harder every other turn, ringing the structure."""
    shaft_hz, level = rig.shaft_hz, rig.looseness * rig.noise_g
    lines = sum(_line_g(rng.uniform(0.1, 0.6) / k, k * shaft_hz / 2.0, t, rng) for k in range(1, 13))
    turns = np.arange(0.0, t[-1], 1.0 / shaft_hz) + rng.uniform(0, 1.0 / shaft_hz)
    turns += rng.normal(0.0, 0.003 / shaft_hz, turns.size)
    heights = level * np.where(np.arange(turns.size) % 2 == 0, 1.0, rng.uniform(0.3, 0.7))
    mode_hz = float(rng.choice((*rig.modes_hz, rig.bearing_mode_hz)))
    return lines + _impacts(turns, heights, rig, t.size, mode_hz)


def _race_defect(rig: Rig, fault: str, height_g: float, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Impacts at BPFO (a stationary outer race: even) or BPFI (the defect turns through the load
    zone: heights follow the shaft), with random slip, ringing one of the rig's modes."""
    orders = bearings.bearing(rig.bearing)
    defect_hz = (orders.bpfo if fault == bearings.OUTER_RACE else orders.bpfi) * rig.shaft_hz
    periods = 1.0 / defect_hz * (1.0 + rng.normal(0.0, 0.005, int(t[-1] * defect_hz) + 2))
    times = np.cumsum(periods) - periods[0] * rng.uniform(0.0, 1.0)
    times = times[times < t[-1]]
    heights = np.full(times.size, height_g)
    if fault == bearings.INNER_RACE:
        load = np.cos(2 * np.pi * rig.shaft_hz * times + rng.uniform(0, 6.3))
        heights *= np.clip(0.4 + 0.6 * load, 0.0, None) + 0.1
    return _impacts(times, heights, rig, t.size, rig.bearing_mode_hz)
