"""Rolling-element bearing defect frequencies: a small catalogue and the geometry formulas.

Defect frequencies are kept as multiples of shaft speed (orders), so one entry serves any rpm:
BPFO (outer race), BPFI (inner race), BSF (ball spin, as kinematics define it) and FTF (cage).
A ball defect strikes both races once per spin, so it shows at 2 x BSF; CWRU publishes that
ball-defect frequency (4.7135 for the 6205) under the name BSF, so its BSF is halved here.

Longer than most modules (about 360 lines) on purpose: the catalogue, the line tolerances and the one
matcher that applies them are tuned together, and a reader checking a tolerance needs its search beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# fault type names shared with the evidence and the CLI
OUTER_RACE = "outer_race"
INNER_RACE = "inner_race"
ROLLING_ELEMENT = "rolling_element"
CAGE = "cage"


@dataclass(frozen=True)
class DefectOrders:
    """Defect frequencies as multiples of the shaft frequency."""

    bpfo: float
    bpfi: float
    bsf: float
    ftf: float

    def __post_init__(self) -> None:
        values = (self.bpfo, self.bpfi, self.bsf, self.ftf)
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"defect multiples must be positive numbers, got {values}")

    @classmethod
    def from_geometry(
        cls, n_balls: int, ball_diameter_mm: float, pitch_diameter_mm: float, contact_angle_deg: float = 0.0
    ) -> DefectOrders:
        """Kinematic formulas for a stationary outer race and rotating inner race."""
        if n_balls < 1 or not 0 < ball_diameter_mm < pitch_diameter_mm:
            raise ValueError("bearing geometry needs n_balls >= 1 and 0 < ball diameter < pitch diameter")
        ratio = ball_diameter_mm / pitch_diameter_mm * math.cos(math.radians(contact_angle_deg))
        return cls(
            bpfo=n_balls / 2.0 * (1.0 - ratio),
            bpfi=n_balls / 2.0 * (1.0 + ratio),
            bsf=pitch_diameter_mm / (2.0 * ball_diameter_mm) * (1.0 - ratio**2),
            ftf=0.5 * (1.0 - ratio),
        )

    @classmethod
    def parse(cls, text: str) -> DefectOrders:
        """'BPFO,BPFI,BSF,FTF' as on the command line (BSF is the ball spin frequency)."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4:
            raise ValueError(f"give four multiples BPFO,BPFI,BSF,FTF, got {text!r}")
        try:
            return cls(*(float(p) for p in parts))
        except ValueError as exc:
            raise ValueError(f"multiples must be four positive numbers BPFO,BPFI,BSF,FTF, got {text!r}") from exc

    def frequencies_hz(self, shaft_hz: float) -> dict[str, float]:
        return {
            OUTER_RACE: self.bpfo * shaft_hz,
            INNER_RACE: self.bpfi * shaft_hz,
            ROLLING_ELEMENT: 2.0 * self.bsf * shaft_hz,  # ball defect: one hit per race per spin
            CAGE: self.ftf * shaft_hz,
        }


# SKF 6205-2RS JEM: CWRU's published multiples for its drive-end bearing (its "BSF" 4.7135
# is the ball-defect frequency 2 x BSF).
_CATALOGUE: dict[str, DefectOrders] = {
    "6205": DefectOrders(bpfo=3.5848, bpfi=5.4152, bsf=4.7135 / 2, ftf=0.39828),
    # SKF 6203-2RS JEM (CWRU fan end), CWRU's published multiples, same convention.
    "6203": DefectOrders(bpfo=3.0530, bpfi=4.9469, bsf=3.9874 / 2, ftf=0.3817),
    # Common deep-groove sizes from ball count and ball diameter, with the pitch diameter taken
    # as (bore + outside diameter) / 2: good to about 1 %, inside the detector's speed tolerance.
    "6204": DefectOrders.from_geometry(8, 7.938, 33.5),
    "6206": DefectOrders.from_geometry(9, 9.525, 46.0),
    "6305": DefectOrders.from_geometry(7, 10.319, 43.5),
}
_ALIASES = {"skf 6205": "6205", "6205-2rs": "6205", "6205-2rs jem": "6205", "skf 6203": "6203", "6203-2rs": "6203"}


def list_bearings() -> list[str]:
    return sorted(_CATALOGUE)


def bearing(name: str) -> DefectOrders:
    """Look a bearing up by designation ('6205', 'SKF 6205', '6205-2RS')."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key.removeprefix("skf").strip())
    try:
        return _CATALOGUE[key]
    except KeyError as exc:
        known = ", ".join(list_bearings())
        raise ValueError(f"bearing {name!r} is not in the catalogue ({known}); give --multiples instead") from exc


# --- detection in an envelope spectrum -------------------------------------------------------

LINE_DB = 6.0  # a line this far above the local floor counts as present
# A line located between bins (``peak_hz``) that lies further than this from a shaft or supply
# multiple is not that line: noise moves a 6 dB line's located peak by a few tenths of a bin, and
# a defect line 1-2 bins off a shaft harmonic (a 6203's BPFI is 4.95 x shaft, 1.3 Hz off 5 x at
# 1460 rpm, under the 1.5 bins of a bin-centre mask in a 2 s burst) stays open to the search.
LOCATED_TOLERANCE_BINS = 0.5
SPEED_TOLERANCE = 0.02  # relative: shaft-speed error plus bearing slip (1-2 %)
# Supply frequencies: they do not follow the shaft. A motor's magnetic pull goes as the current
# squared, so it modulates the vibration at 2 x line frequency and its harmonics (a rectifier's
# ripple at 6 x line among them): the envelope's electrical lines sit at multiples of 2 x line,
# which are never bearing lines; odd multiples of the line frequency stay open to a defect.
MAINS_HZ = (50.0, 60.0)
# A train of short impacts puts harmonics of nearly equal strength in the squared envelope; a
# smooth modulation (a flow pulsation, a neighbour's blade pass riding on noise) puts its 2nd
# harmonic at least 12 dB below its 1st. A harmonic further below the anchor than this is no
# evidence of impacts.
IMPACT_SPAN_DB = 9.0
PAIR_SPAN_DB = 6.0  # ... and when the anchor and one harmonic are all there is, noise must not make the pair


@dataclass(frozen=True)
class Line:
    """One spectral line found near an expected frequency."""

    label: str  # e.g. "1x BPFO", "BPFI+1x"
    freq_hz: float
    order: float  # freq / shaft frequency
    above_floor_db: float
    masked: bool = False  # on a shaft or mains harmonic: it cannot be told from those

    @property
    def present(self) -> bool:
        return self.above_floor_db >= LINE_DB


@dataclass(frozen=True)
class DefectMatch:
    """How strongly one defect type's pattern shows in one envelope spectrum."""

    fault_type: str
    score_db: float  # sum of dB above floor over present harmonics and sidebands; 0 = nothing
    harmonics: tuple[Line, ...]
    sidebands: tuple[Line, ...]
    spectrum: str  # which envelope spectrum it was found in
    family: tuple[Line, ...] = ()  # the anchor and the lines that count with it; () = no pattern

    @property
    def fundamental(self) -> Line:
        return self.harmonics[0]

    @property
    def family_lines(self) -> int:
        return len(self.family)

    @property
    def line_hidden(self) -> bool:
        """The pattern stands on sidebands alone: its defect line sits on a shaft or supply line."""
        return bool(self.family) and self.family[0] not in self.harmonics

    @property
    def shaft_sidebands(self) -> tuple[Line, ...]:
        """The +-1x shaft lines around the defect line that are present (outer and inner race)."""
        return tuple(line for line in self.sidebands if line.present and line.label.endswith("1x"))


_SYMBOL = {OUTER_RACE: "BPFO", INNER_RACE: "BPFI", ROLLING_ELEMENT: "BSF", CAGE: "FTF"}


def symbol(fault_type: str) -> str:
    """'BPFO' for outer_race and so on; the ball-defect frequency reads '2xBSF'."""
    return "2xBSF" if fault_type == ROLLING_ELEMENT else _SYMBOL[fault_type]


def local_floor(amplitude: np.ndarray, width_bins: int) -> np.ndarray:
    """Running median: the noise floor a line is compared with (robust to the lines themselves)."""
    width_bins = max(3, width_bins | 1)
    floor: np.ndarray = np.maximum(ndimage.median_filter(amplitude, size=width_bins, mode="nearest"),
                                   np.finfo(float).tiny)
    return floor


def line_heights_db(amplitude: np.ndarray, df_hz: float, shaft_hz: float) -> np.ndarray:
    """Each bin's height in dB above the running-median floor (over 2 x shaft, at least 20 Hz)."""
    floor = local_floor(amplitude, round(max(20.0, 2.0 * shaft_hz) / df_hz))
    heights: np.ndarray = 20.0 * np.log10(np.maximum(amplitude, np.finfo(float).tiny) / floor)
    return heights


def strong_lines_hz(freqs_hz: np.ndarray, amplitude: np.ndarray, shaft_hz: float, top_hz: float,
                    min_db: float = 10.0, count: int = 8) -> list[float]:
    """The ``count`` highest local maxima standing ``min_db`` above the floor below ``top_hz``:
    what a burst's envelope holds, remembered to tell lines that follow the shaft from those that
    do not (``edge.analytics.fixed_lines``)."""
    df_hz = float(freqs_hz[1] - freqs_hz[0])
    heights = line_heights_db(amplitude, df_hz, shaft_hz)
    inner = np.arange(1, heights.size - 1)
    peaks = inner[(heights[inner] >= heights[inner - 1]) & (heights[inner] > heights[inner + 1])
                  & (heights[inner] >= min_db) & (freqs_hz[inner] <= top_hz) & (freqs_hz[inner] > 4 * df_hz)]
    strongest = peaks[np.argsort(heights[peaks])[::-1][:count]]
    return sorted(round(float(freqs_hz[i]), 2) for i in strongest)


def match_defects(
    freqs_hz: np.ndarray,
    amplitude: np.ndarray,
    shaft_hz: float,
    orders: DefectOrders,
    spectrum: str = "envelope",
    tolerance: float = SPEED_TOLERANCE,
    n_harmonics: int = 3,
    speed_uncertainty: float = 0.0,
    mains_hz: tuple[float, ...] = MAINS_HZ,
) -> list[DefectMatch]:
    """Score every defect type in one envelope spectrum.

    The fundamental is searched within ``tolerance`` of its nominal frequency (speed error,
    slip); harmonics are then expected at exact multiples of the frequency actually found, so
    a speed error shifts the whole series consistently. ``speed_uncertainty`` (relative) widens
    the fundamental's window and the sidebands' spacing: the less sure the speed, the wider.
    Lines on a shaft harmonic are ignored because shaft modulation shows in healthy machines
    too, and so are lines on a mains harmonic. Inner-race faults rotate with the shaft and so
    carry sidebands at +-1x shaft; ball faults carry cage (FTF) sidebands. A pattern counts only
    as a family: its first line and at least one more, a sideband or a harmonic within
    ``IMPACT_SPAN_DB`` of it (``PAIR_SPAN_DB`` when that harmonic is the only one); one line alone
    is too easily a coincidence.
    """
    df_hz = float(freqs_hz[1] - freqs_hz[0])
    prominence_db = line_heights_db(amplitude, df_hz, shaft_hz)
    loose = half_order_comb(freqs_hz, prominence_db, shaft_hz, mains_hz)
    nominal = orders.frequencies_hz(shaft_hz)
    # an inner-race defect turns through the load zone once per turn: +-1x shaft sidebands; a ball
    # turns with the cage: +-FTF. A stationary outer race has none: its +-1x lines are looked at
    # only to tell it from a modulated pattern, never counted for it.
    sideband_hz = {OUTER_RACE: shaft_hz, INNER_RACE: shaft_hz, ROLLING_ELEMENT: orders.ftf * shaft_hz}

    def find(label: str, centre_hz: float, half_width_hz: float) -> Line:
        inside = np.flatnonzero(np.abs(freqs_hz - centre_hz) <= half_width_hz)
        if inside.size == 0 or centre_hz <= 4 * df_hz:
            return Line(label, centre_hz, centre_hz / shaft_hz, 0.0)
        best = int(inside[np.argmax(prominence_db[inside])])
        freq_hz = peak_hz(freqs_hz, amplitude, best)
        # located between bins, a line is the shaft's (or the supply's) only when it sits within
        # the location's error of it, plus how far the speed's own uncertainty moves that multiple;
        # never wider than the bin-centre mask (a guessed speed would mask whole spectra)
        tolerance_hz = min(LOCATED_TOLERANCE_BINS * df_hz + speed_uncertainty * freq_hz, 1.5 * df_hz)
        masked = bool(not_bearing_line(np.array([freq_hz]), shaft_hz, df_hz, mains_hz, half_orders=loose,
                                       tolerance_hz=tolerance_hz)[0])
        return Line(label, freq_hz, freq_hz / shaft_hz, 0.0 if masked else float(prominence_db[best]), masked)

    exact_hz = 1.5 * df_hz
    matches = []
    for fault_type, symbol in _SYMBOL.items():
        step = 2 if fault_type == ROLLING_ELEMENT else 1  # the ball-defect series is 2, 4, 6 x BSF
        window_hz = max((tolerance + speed_uncertainty) * nominal[fault_type], df_hz / 2)
        fundamental = find(f"{step}x {symbol}", nominal[fault_type], window_hz)
        harmonics = [fundamental]
        # a masked first line leaves the defect frequency open: the first clear harmonic is searched
        # in the widened window and fixes it for the rest
        base_hz = None if fundamental.masked else fundamental.freq_hz
        # a harmonic masked by a shaft or supply line is replaced by the next one (up to four): a
        # defect line k x delta off a shaft or supply multiple clears the mask from some k on
        for k in range(2, n_harmonics + 5):
            if sum(not line.masked for line in harmonics) >= n_harmonics:
                break
            if base_hz is None:
                line = find(f"{k * step}x {symbol}", k * nominal[fault_type], k * window_hz)
                base_hz = None if line.masked else line.freq_hz / k
            else:
                line = find(f"{k * step}x {symbol}", k * base_hz, exact_hz + 0.002 * k * base_hz)
            harmonics.append(line)
        sidebands = []
        if fault_type in sideband_hz:
            step_hz = sideband_hz[fault_type]
            name = "FTF" if fault_type == ROLLING_ELEMENT else "1x"
            sidebands = [
                find(f"{symbol}{sign}{name}", fundamental.freq_hz + s * step_hz, exact_hz + speed_uncertainty * step_hz)
                for s, sign in ((-1, "-"), (1, "+"))
            ]
        counted = (*harmonics, *sidebands) if fault_type != OUTER_RACE else tuple(harmonics)
        present = [line for line in counted if line.present]
        # a pattern needs its first line (for a ball 2x BSF, else its second): harmonics or
        # sidebands alone are too easily shaft or electrical lines. A first line on a shaft or
        # mains harmonic hands over to its 2nd: a defect 1 bin off 3 x shaft is 2 bins off at 2 x
        # the defect frequency, where a shaft line's own harmonic would sit on 6 x shaft again.
        clear_sidebands = [line for line in sidebands if line.present] if fault_type != OUTER_RACE else []
        if harmonics[0].masked and not any(line.present for line in harmonics) and clear_sidebands:
            # the defect line sits on a shaft or supply line and no harmonic clears it: the
            # sidebands, which do not sit there, are all that shows of a modulated pattern
            # (``confirm`` holds such a pattern at warning)
            anchor = max(clear_sidebands, key=lambda line: line.above_floor_db)
        elif harmonics[0].masked:
            anchor = next((line for line in harmonics if not line.masked), harmonics[0])
        elif harmonics[0].present or fault_type != ROLLING_ELEMENT:
            anchor = harmonics[0]
        else:
            anchor = harmonics[1]
        family = [line for line in counted if line is not anchor and line.present
                  and (line in sidebands or line.above_floor_db >= anchor.above_floor_db - IMPACT_SPAN_DB)]
        # a pair of lines at 1x and 2x the anchor is what a smooth modulation makes: the weakest
        # evidence, held closest (a harmonic further up, past masked ones, is none of that)
        if len(family) == 1 and family[0] in harmonics and family[0].freq_hz < 2.5 * anchor.freq_hz:
            family = [line for line in family if line.above_floor_db >= anchor.above_floor_db - PAIR_SPAN_DB]
        found = anchor.present and bool(family)
        score = sum(line.above_floor_db for line in present) if found else 0.0
        matches.append(DefectMatch(fault_type, float(score), tuple(harmonics), tuple(sidebands), spectrum,
                                   (anchor, *family) if found else ()))
    return matches


def not_bearing_line(freqs_hz: np.ndarray, shaft_hz: float, df_hz: float, mains_hz: tuple[float, ...],
                     half_orders: bool = False, tolerance_hz: float | None = None) -> np.ndarray:
    """True where a frequency sits on a shaft harmonic or a multiple of twice a mains frequency
    (within ``tolerance_hz``, by default 1.5 bins: a bin's centre, not a located peak), and with
    ``half_orders`` on any multiple of half the shaft speed too."""
    tolerance_hz = 1.5 * df_hz if tolerance_hz is None else tolerance_hz
    excluded = np.zeros(freqs_hz.shape, dtype=bool)
    for base_hz in (shaft_hz / 2.0 if half_orders else shaft_hz, *(2.0 * line_hz for line_hz in mains_hz)):
        order = np.round(freqs_hz / base_hz)
        excluded |= (order >= 1) & (np.abs(freqs_hz - order * base_hz) <= tolerance_hz)
    return excluded


def peak_hz(freqs_hz: np.ndarray, amplitude: np.ndarray, index: int) -> float:
    """Where the peak at bin ``index`` lies between the bins: the vertex of the parabola through
    the log amplitudes of the bin and its neighbours (a Hann window's main lobe is close to a
    Gaussian, whose log is a parabola: the error stays under a tenth of a bin on a clean line).
    A bin that is no local maximum is taken as it is."""
    if index <= 0 or index >= amplitude.size - 1:
        return float(freqs_hz[index])
    left, centre, right = np.log(np.maximum(amplitude[index - 1:index + 2], np.finfo(float).tiny))
    curvature = left - 2.0 * centre + right
    if centre < left or centre < right or curvature >= 0:
        return float(freqs_hz[index])
    offset = 0.5 * (left - right) / curvature
    return float(freqs_hz[index] + offset * (freqs_hz[1] - freqs_hz[0]))


HALF_ORDERS = (0.5, 1.5, 2.5, 3.5, 4.5)
MIN_HALF_ORDERS = 3


def half_order_comb(freqs_hz: np.ndarray, prominence_db: np.ndarray, shaft_hz: float,
                    mains_hz: tuple[float, ...] = MAINS_HZ) -> bool:
    """Whether the spectrum carries lines at odd multiples of half the shaft speed.

    Mechanical looseness (a part that lifts and lands, a rub) repeats every other turn: its
    impacts put lines at every multiple of 0.5 x shaft, and then some of those sit within a
    bearing's tolerance of a defect frequency (3.5 x is BPFO of many 9-ball bearings, 5.5 x their
    BPFI, with 4.5 x and 6.5 x as "sidebands"). No bearing defect makes three odd half orders, so
    with the comb present, lines on half orders are the looseness', not a bearing's.
    """
    df_hz = float(freqs_hz[1] - freqs_hz[0])
    found = 0
    for order in HALF_ORDERS:
        centre_hz = order * shaft_hz
        if centre_hz <= 4 * df_hz or centre_hz > freqs_hz[-1] or not_bearing_line(
                np.array([centre_hz]), shaft_hz, df_hz, mains_hz)[0]:
            continue
        inside = np.abs(freqs_hz - centre_hz) <= 1.5 * df_hz
        found += bool(prominence_db[inside].max() >= LINE_DB)
    return found >= MIN_HALF_ORDERS
