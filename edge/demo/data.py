"""Prepare the demo's data: solar-cell frames from ``elpv-dataset`` and bearing vibration bursts.

The camera side is the public ELPV electroluminescence dataset (300x300 solar-cell images, each with
an expert defect probability). Cells with probability 0 are normal: some are used to enroll the
camera's normal baseline, the others are held out and mixed into the replay stream with defective
cells (probability >= 2/3); a few other defective cells are few-shot examples of a "defective
cell" condition. The sensor side pairs each frame with one burst of drive-end bearing
vibration: the real CWRU normal record with a normal cell, a real inner- or outer-race fault record
with a defective cell. Without the CWRU folder the demo synthesises the bursts (a bearing-defect
impulse train in noise) and says so in ``vibration_source``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from edge.errors import InputError, StorageError

log = logging.getLogger(__name__)

DEFECTIVE_MIN_PROBABILITY = 2 / 3  # ELPV labels are 0, 1/3, 2/3, 1; 1/3 is ambiguous, so left out
SAMPLE_RATE_HZ = 12_000.0  # the CWRU fault records' rate; the 48 kHz normal record is resampled to it
NOMINAL_RPM = 1797.0  # CWRU at 0 HP motor load
# SKF 6205 defect frequencies as multiples of shaft speed (CWRU's published figures)
_DEFECT_ORDERS = {"outer_race": 3.5848, "inner_race": 5.4152}
_FAULTS_USED = tuple(_DEFECT_ORDERS)  # ball faults are left out: envelope analysis rarely sees them
FRAME_JPEG_QUALITY = 92


@dataclass(frozen=True)
class Cell:
    """One ELPV image and its label."""

    path: Path
    defect_probability: float
    cell_type: str  # "mono" | "poly"

    @property
    def defective(self) -> bool:
        return self.defect_probability >= DEFECTIVE_MIN_PROBABILITY


@dataclass(frozen=True)
class StreamItem:
    """One check of the replay stream and the answer the dataset labels give for it."""

    index: int
    frame: str  # file name inside frames_dir
    cell: str  # ELPV image name
    defect_probability: float
    expected: str  # "ok" | "fault"
    vibration_record: str  # CWRU file name, or "synthetic"
    vibration_fault: str  # "normal" | "inner_race" | "outer_race"
    vibration_start_s: float  # where the burst starts inside its record


@dataclass(frozen=True)
class DemoData:
    """Everything the demo run needs, all inside ``root``."""

    root: Path
    enroll_dir: Path  # normal frames for `edgewatch enroll --normal`
    examples_dir: Path  # defective cells for `edgewatch enroll --label` (few-shot), never in the stream
    frames_dir: Path  # the replay stream, in name order
    vibration_path: Path  # (len(items) * burst samples,) float32 g: burst i belongs to frame i
    sample_rate_hz: float
    rpm: float
    burst_s: float
    vibration_source: str  # "cwru" | "synthetic"
    items: tuple[StreamItem, ...]

    @property
    def burst_samples(self) -> int:
        return round(self.burst_s * self.sample_rate_hz)


def elpv_cells(labels_csv: Path | None = None) -> list[Cell]:
    """Every cell listed in the installed ``elpv-dataset`` package (images are not loaded here).

    The package's own ``load_dataset`` decodes all 2,624 images at once; the demo needs a few
    dozen, so it reads ``labels.csv`` (``images/cellNNNN.png  probability  type``) itself.
    """
    if labels_csv is None:
        try:
            import elpv_dataset
        except ImportError as exc:
            raise InputError(
                "the demo needs the solar-cell images of 'elpv-dataset': pip install 'edgewatch[demo]'"
            ) from exc
        labels_csv = Path(elpv_dataset.__file__).parent / "data" / "labels.csv"
    try:
        lines = labels_csv.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the ELPV labels {labels_csv}: {exc}") from exc
    cells = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            name, probability, cell_type = fields
            cells.append(Cell(labels_csv.parent / name, float(probability), cell_type))
        except ValueError as exc:
            raise InputError(f"{labels_csv}:{number}: expected 'path probability type', got {line!r}") from exc
    return cells


def prepare(
    out: Path,
    *,
    enroll: int = 60,
    normal: int = 12,
    defective: int = 12,
    examples: int = 10,
    cell_type: str = "mono",
    cwru_dir: Path | None = None,
    burst_s: float = 2.0,
    seed: int = 0,
) -> DemoData:
    """Write enrollment frames, the replay stream and its vibration into ``out``; return what was written.

    The same ``seed`` gives the same selection and order, so runs are comparable.
    """
    rng = np.random.default_rng(seed)
    cells = [cell for cell in elpv_cells() if cell.cell_type == cell_type]
    normals = [cells[i] for i in rng.permutation(len(cells)) if cells[i].defect_probability == 0.0]
    faulty = [cells[i] for i in rng.permutation(len(cells)) if cells[i].defective]
    if len(normals) < enroll + normal or len(faulty) < examples + defective:
        raise InputError(
            f"elpv-dataset has {len(normals)} normal and {len(faulty)} defective '{cell_type}' cells; "
            f"the demo asked for {enroll}+{normal} normal and {examples}+{defective} defective"
        )
    stream_cells = normals[enroll : enroll + normal] + faulty[examples : examples + defective]
    stream_cells = [stream_cells[i] for i in rng.permutation(len(stream_cells))]

    enroll_dir, examples_dir, frames_dir = out / "enroll", out / "examples", out / "frames"
    for folder in (enroll_dir, examples_dir, frames_dir):
        _empty_folder(folder)
    for number, cell in enumerate(normals[:enroll], start=1):
        _write_frame(cell.path, enroll_dir / f"normal_{number:04d}.jpg")
    for number, cell in enumerate(faulty[:examples], start=1):
        _write_frame(cell.path, examples_dir / f"defective_{number:04d}.jpg")

    vibration = _VibrationSource(cwru_dir, rng)
    bursts, items = [], []
    for index, cell in enumerate(stream_cells):
        fault = _FAULTS_USED[index % len(_FAULTS_USED)] if cell.defective else "normal"
        burst, record, start_s = vibration.burst(fault, burst_s)
        bursts.append(burst)
        frame = f"frame_{index + 1:04d}.jpg"
        _write_frame(cell.path, frames_dir / frame)
        items.append(
            StreamItem(index, frame, cell.path.name, cell.defect_probability,
                       "fault" if cell.defective else "ok", record, fault, start_s)
        )

    vibration_path = out / "vibration.npy"
    np.save(vibration_path, np.concatenate(bursts).astype(np.float32))
    data = DemoData(out, enroll_dir, examples_dir, frames_dir, vibration_path, SAMPLE_RATE_HZ, vibration.rpm, burst_s,
                    vibration.source, tuple(items))
    _write_json(out / "stream.json", {
        "vibration_source": data.vibration_source,
        "sample_rate_hz": data.sample_rate_hz,
        "rpm": data.rpm,
        "burst_s": data.burst_s,
        "items": [asdict(item) for item in items],
    })
    log.info("demo data: %d normal and %d defective enrollment frames, %d stream frames (%d defective), "
             "vibration from %s", enroll, examples, len(items), defective, data.vibration_source)
    return data


class _VibrationSource:
    """Hands out successive half-overlapping bursts of each record, wrapping at its end.

    Half-overlap gives the 5 s normal record four distinct 2 s bursts instead of two.
    """

    def __init__(self, cwru_dir: Path | None, rng: np.random.Generator) -> None:
        self._rng = rng
        self._records: dict[str, tuple[str, np.ndarray]] = {}
        self._cursor: dict[str, int] = {}
        self.rpm = NOMINAL_RPM
        if cwru_dir is not None and (cwru_dir / "records.json").is_file():
            self.source = "cwru"
            self._load_cwru(cwru_dir)
        else:
            self.source = "synthetic"
            log.warning("CWRU records not found at %s: the demo synthesises bearing vibration instead", cwru_dir)

    def _load_cwru(self, cwru_dir: Path) -> None:
        try:
            records = json.loads((cwru_dir / "records.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {cwru_dir / 'records.json'}: {exc}") from exc
        wanted = ("normal", *_FAULTS_USED)
        for fault in wanted:
            # the smallest seeded fault that is present: the hardest of the diagnosable ones
            matches = sorted((r for r in records if r.get("fault") == fault),
                             key=lambda r: (r.get("fault_diameter_in", 0.0), r["file"]))
            if not matches:
                raise InputError(f"{cwru_dir / 'records.json'} lists no '{fault}' record")
            record = matches[0]
            signal = _load_record(cwru_dir / record["file"], float(record["sample_rate_hz"]))
            self._records[fault] = (record["file"], signal)
            if fault == "normal":
                self.rpm = float(record.get("rpm", NOMINAL_RPM))

    def burst(self, fault: str, burst_s: float) -> tuple[np.ndarray, str, float]:
        samples = round(burst_s * SAMPLE_RATE_HZ)
        if self.source == "synthetic":
            return synthesize_burst(fault, SAMPLE_RATE_HZ, self.rpm, samples, self._rng), "synthetic", 0.0
        name, signal = self._records[fault]
        if samples > signal.size:
            raise InputError(f"CWRU record {name} is shorter than one {burst_s} s burst")
        start = self._cursor.get(fault, 0)
        if start + samples > signal.size:
            start = 0
        self._cursor[fault] = start + samples // 2
        return signal[start : start + samples], name, start / SAMPLE_RATE_HZ


def _load_record(path: Path, rate_hz: float) -> np.ndarray:
    """A CWRU record in g at SAMPLE_RATE_HZ (the 48 kHz normal record is low-pass resampled)."""
    from scipy.signal import resample_poly

    try:
        signal = np.load(path).astype(np.float64).ravel()
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read vibration record {path}: {exc}") from exc
    if signal.size == 0 or not np.all(np.isfinite(signal)):
        raise InputError(f"vibration record {path} is empty or holds NaN/inf values")
    ratio = Fraction(SAMPLE_RATE_HZ / rate_hz).limit_denominator(1000)
    if ratio != 1:
        signal = resample_poly(signal, ratio.numerator, ratio.denominator)
    return signal.astype(np.float32)


def synthesize_burst(fault: str, rate_hz: float, rpm: float, samples: int, rng: np.random.Generator) -> np.ndarray:
    """A drive-end accelerometer burst in g: shaft tone and noise, plus defect impulses for a fault.

    Each defect impact rings a structural resonance (3 kHz, ~0.5 ms decay) - the signature that
    envelope analysis demodulates. Impact times jitter by 1 % as rolling elements slip.
    """
    t = np.arange(samples) / rate_hz  # (samples,) seconds
    shaft_hz = rpm / 60.0
    signal = 0.02 * np.sin(2 * math.pi * shaft_hz * t) + rng.normal(0.0, 0.05, samples)
    if fault == "normal":
        return signal.astype(np.float32)
    if fault not in _DEFECT_ORDERS:
        raise InputError(f"cannot synthesise a '{fault}' fault; known: normal, {', '.join(_DEFECT_ORDERS)}")
    period_s = 1.0 / (_DEFECT_ORDERS[fault] * shaft_hz)
    impacts = np.zeros(samples)
    for when_s in np.arange(rng.uniform(0, period_s), samples / rate_hz, period_s):
        index = int((when_s + rng.normal(0.0, 0.01 * period_s)) * rate_hz)
        if 0 <= index < samples:
            # an inner race turns with the shaft, so its impacts are amplitude-modulated at 1x
            impacts[index] = 1.0 if fault == "outer_race" else 0.6 + 0.4 * math.cos(2 * math.pi * shaft_hz * when_s)
    ring_t = np.arange(round(0.005 * rate_hz)) / rate_hz
    ring = np.exp(-ring_t / 0.0005) * np.sin(2 * math.pi * 3000.0 * ring_t)
    signal += 1.2 * np.convolve(impacts, ring)[:samples]
    return signal.astype(np.float32)


def _write_frame(cell_path: Path, target: Path) -> None:
    """Write a cell as a camera would deliver it: an RGB JPEG."""
    try:
        with Image.open(cell_path) as image:
            image.convert("RGB").save(target, "JPEG", quality=FRAME_JPEG_QUALITY)
    except OSError as exc:
        raise InputError(f"cannot turn {cell_path} into a frame at {target}: {exc}") from exc


def _empty_folder(folder: Path) -> None:
    """A fresh folder, so frames of an earlier, larger run never leak into this stream."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if old.is_file():
                old.unlink()
    except OSError as exc:
        raise StorageError(f"cannot prepare the demo folder {folder}: {exc}") from exc


def _write_json(path: Path, document: dict) -> None:
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc
