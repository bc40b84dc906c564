"""Prepare the demo's data: six machines, each with a camera on its output and a bearing accelerometer.

The camera side is the public ELPV electroluminescence dataset (300x300 solar-cell images, each with
an expert defect probability). Cells with probability 0 are normal: some enroll the camera's normal
baseline, others are held out for the replay stream; cells with probability >= 2/3 are defective (a
few are few-shot examples of a "defective cell" condition, the rest go to the stream).

The sensor side is the drive-end bearing of each machine: the real CWRU normal record on a healthy
bearing, a real outer- or inner-race fault record on a faulty one. Camera and bearing fail
independently (see ``MACHINES``): a defect the camera sees on a healthy bearing, a bearing fault
behind normal cells, both, neither, plus a dead vibration channel and a dark or blurred camera,
so fusion has to weigh evidence that disagrees. Each machine's bearing has one ground truth
because the service polls sensors on their own schedule (a check uses the latest reading): a
per-frame pairing of bearing states would not survive that. The records are the subset shipped in
``edge/cwru`` unless another folder of them (the full set) is given.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from edge import cwru
from edge.errors import InputError, StorageError

log = logging.getLogger(__name__)

DEFECTIVE_MIN_PROBABILITY = 2 / 3  # ELPV labels are 0, 1/3, 2/3, 1; 1/3 is ambiguous, so left out
SAMPLE_RATE_HZ = 12_000.0  # the CWRU fault records' rate; the 48 kHz normal record is resampled to it
# SKF 6205 defect frequencies as multiples of shaft speed (CWRU's published figures)
_DEFECT_ORDERS = {"outer_race": 3.5848, "inner_race": 5.4152}
FRAME_JPEG_QUALITY = 92
LABELS_FILE = "labels.json"  # the truth, in the format `edgewatch eval --labels` reads
DARK_FACTOR = 0.03  # a lens in the dark: below the camera health's black threshold
BLUR_RADIUS_PX = 12.0  # a smeared or defocused lens: below its sharpness threshold


@dataclass(frozen=True)
class MachineCase:
    """One demo machine: what its camera sees, its bearing's state, and what is wrong with its instruments."""

    asset_id: str
    cells: str  # "normal" | "defective": the cells its camera sees
    bearing: str  # "normal" | "outer_race" | "inner_race"
    degraded: str  # "" | "dead sensor" (flat vibration channel) | "dark or blurred camera"
    case: str  # the situation it stands for, reported per case


# Camera and bearing fail independently. Ball faults are left out: envelope analysis rarely sees
# them in this data. Degraded instruments still have a truth: the machine's real state.
MACHINES: tuple[MachineCase, ...] = (
    MachineCase("stringer-1", "normal", "normal", "", "healthy"),
    MachineCase("stringer-2", "defective", "normal", "", "camera defect, bearing healthy"),
    MachineCase("stringer-3", "normal", "outer_race", "", "bearing fault, camera normal"),
    MachineCase("stringer-4", "defective", "inner_race", "", "camera defect and bearing fault"),
    MachineCase("stringer-5", "normal", "normal", "dead sensor", "healthy, vibration channel dead"),
    MachineCase("stringer-6", "normal", "outer_race", "dark or blurred camera", "bearing fault, camera dark/blurred"),
)


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
    """One frame of a machine's replay stream and the answer the dataset labels give for it."""

    frame: str  # file name inside the machine's frames_dir (replayed in name order)
    cell: str  # ELPV image name
    defect_probability: float

    @property
    def camera_truth(self) -> str:
        """What the frame shows: "fault" for a defective cell (whether or not the camera could see it)."""
        return "fault" if self.defect_probability >= DEFECTIVE_MIN_PROBABILITY else "ok"


@dataclass(frozen=True)
class DemoMachine:
    """One asset of the demo: its camera's frames, its bearing recording and the expected verdict."""

    asset_id: str
    bearing: str  # "normal" | "outer_race" | "inner_race"
    frames_dir: Path
    vibration_path: Path  # (samples,) float32 g at SAMPLE_RATE_HZ
    vibration_record: str  # CWRU record name, or "dead channel"
    items: tuple[StreamItem, ...]
    case: str = ""
    degraded: str = ""

    @property
    def bearing_truth(self) -> str:
        return "ok" if self.bearing == "normal" else "fault"

    def expected_for(self, item: StreamItem) -> str:
        """A check's truth: faulty when the frame shows a defect or the bearing is faulty."""
        return "fault" if "fault" in (item.camera_truth, self.bearing_truth) else "ok"

    @property
    def expected(self) -> str:
        return "fault" if any(self.expected_for(item) == "fault" for item in self.items) else "ok"


@dataclass(frozen=True)
class DemoData:
    """Everything the demo run needs, all inside ``root``."""

    root: Path
    enroll_dir: Path  # normal frames for `edgewatch enroll --normal`
    examples_dir: Path  # defective cells for `edgewatch enroll --label` (few-shot), never in a stream
    sample_rate_hz: float
    rpm: float
    vibration_source: str  # where the real CWRU records came from
    machines: tuple[DemoMachine, ...]


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
    frames: int = 60,
    enroll: int = 100,
    examples: int = 10,
    cell_type: str = "mono",
    cwru_dir: Path = cwru.BUNDLED,
    seed: int = 0,
) -> DemoData:
    """Write enrollment frames, each machine's replay frames and recording into ``out``.

    ``frames`` is spread evenly over the machines. The same ``seed`` gives the same cells, so runs
    are comparable.
    """
    per_machine = max(1, frames // len(MACHINES))
    rng = np.random.default_rng(seed)
    cells = [cell for cell in elpv_cells() if cell.cell_type == cell_type]
    normals = [cells[i] for i in rng.permutation(len(cells)) if cells[i].defect_probability == 0.0]
    faulty = [cells[i] for i in rng.permutation(len(cells)) if cells[i].defective]
    defective_machines = sum(machine.cells == "defective" for machine in MACHINES)
    need_normal = enroll + (len(MACHINES) - defective_machines) * per_machine
    need_faulty = examples + defective_machines * per_machine
    if len(normals) < need_normal or len(faulty) < need_faulty:
        raise InputError(
            f"elpv-dataset has {len(normals)} normal and {len(faulty)} defective '{cell_type}' cells; "
            f"the demo needs {need_normal} normal and {need_faulty} defective"
        )

    enroll_dir, examples_dir = out / "enroll", out / "examples"
    for folder in (enroll_dir, examples_dir):
        _empty_folder(folder)
    for number, cell in enumerate(normals[:enroll], start=1):
        _write_frame(cell.path, enroll_dir / f"normal_{number:04d}.jpg")
    for number, cell in enumerate(faulty[:examples], start=1):
        _write_frame(cell.path, examples_dir / f"defective_{number:04d}.jpg")
    spare = {"normal": iter(normals[enroll:]), "defective": iter(faulty[examples:])}

    vibration = _VibrationSource(cwru_dir)
    machines = []
    for case in MACHINES:
        machine_dir = out / case.asset_id
        frames_dir = machine_dir / "frames"
        _empty_folder(frames_dir)
        items = []
        for number in range(1, per_machine + 1):
            cell = next(spare[case.cells])
            frame = f"frame_{number:04d}.jpg"
            degrade = _darken if number % 2 else _blur
            _write_frame(cell.path, frames_dir / frame, degrade if case.degraded == "dark or blurred camera" else None)
            items.append(StreamItem(frame, cell.path.name, cell.defect_probability))
        record, signal = vibration.recording(case.bearing)
        if case.degraded == "dead sensor":  # the channel reads a constant: a broken cable or a stuck ADC
            record, signal = "dead channel", np.zeros_like(signal)
        vibration_path = machine_dir / "drive_end.npy"
        _save_npy(vibration_path, signal)
        machines.append(DemoMachine(case.asset_id, case.bearing, frames_dir, vibration_path, record, tuple(items),
                                    case.case, case.degraded))

    data = DemoData(out, enroll_dir, examples_dir, SAMPLE_RATE_HZ, vibration.rpm, vibration.source, tuple(machines))
    _write_json(out / "demo-data.json", {
        "vibration_source": data.vibration_source,
        "sample_rate_hz": data.sample_rate_hz,
        "rpm": data.rpm,
        "machines": [
            {"asset": m.asset_id, "case": m.case, "bearing": m.bearing, "degraded": m.degraded, "expected": m.expected,
             "vibration_record": m.vibration_record, "items": [asdict(item) for item in m.items]}
            for m in machines
        ],
    })
    _write_json(out / LABELS_FILE, labels_document(machines))
    log.info("demo data: %d normal and %d defective enrollment frames, %d machines x %d frames, vibration from %s",
             enroll, examples, len(machines), per_machine, data.vibration_source)
    return data


def labels_document(machines: list[DemoMachine]) -> dict:
    """The demo's truth in the labels format of ``edgewatch eval`` (docs/evaluation.md)."""
    return {"assets": {m.asset_id: {"case": m.case, "sensors": m.bearing_truth,
                                    "frames": {item.frame: item.camera_truth for item in m.items}}
                       for m in machines}}


class _VibrationSource:
    """The real drive-end recording of a healthy or faulty bearing, at SAMPLE_RATE_HZ."""

    def __init__(self, cwru_dir: Path) -> None:
        self.source = f"real CWRU drive-end records in {cwru_dir}"
        records = cwru.records(cwru_dir)
        self._records: dict[str, tuple[str, np.ndarray]] = {}
        for bearing in ("normal", *_DEFECT_ORDERS):
            # the smallest seeded fault present: the hardest of the diagnosable ones
            matches = sorted((r for r in records.values() if r.fault == bearing),
                             key=lambda r: (r.fault_diameter_in, r.name))
            if not matches:
                raise InputError(f"{cwru_dir / 'records.json'} lists no '{bearing}' record")
            self._records[bearing] = (matches[0].name, _at_demo_rate(matches[0]))
        self.rpm = records[self._records["normal"][0]].rpm

    def recording(self, bearing: str) -> tuple[str, np.ndarray]:
        return self._records[bearing]


def _at_demo_rate(record: cwru.Record) -> np.ndarray:
    """A CWRU record in g at SAMPLE_RATE_HZ (the 48 kHz normal record is low-pass resampled)."""
    from scipy.signal import resample_poly

    signal = record.samples().astype(np.float64)
    ratio = Fraction(SAMPLE_RATE_HZ / record.sample_rate_hz).limit_denominator(1000)
    if ratio != 1:
        signal = resample_poly(signal, ratio.numerator, ratio.denominator)
    return signal.astype(np.float32)


def synthesize_recording(fault: str, rate_hz: float, rpm: float, samples: int, rng: np.random.Generator) -> np.ndarray:
    """A drive-end accelerometer recording in g: shaft tones (1x-3x, which the diagnosis reads the
    speed from) and noise, plus defect impulses for a fault.

    Each defect impact rings a structural resonance (3 kHz, ~0.5 ms decay) - the signature that
    envelope analysis demodulates. Impact times jitter by 1 % as rolling elements slip.
    """
    t = np.arange(samples) / rate_hz  # (samples,) seconds
    shaft_hz = rpm / 60.0
    signal = sum(0.02 / k * np.sin(2 * math.pi * k * shaft_hz * t + k) for k in (1, 2, 3))
    signal = signal + rng.normal(0.0, 0.05, samples)
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


def _darken(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(DARK_FACTOR)


def _blur(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(BLUR_RADIUS_PX))


def _write_frame(cell_path: Path, target: Path,
                 degrade: Callable[[Image.Image], Image.Image] | None = None) -> None:
    """Write a cell as a camera would deliver it: an RGB JPEG, through a dark or smeared lens if ``degrade``."""
    try:
        with Image.open(cell_path) as image:
            rgb = image.convert("RGB")
            (degrade(rgb) if degrade is not None else rgb).save(target, "JPEG", quality=FRAME_JPEG_QUALITY)
    except OSError as exc:
        raise InputError(f"cannot turn {cell_path} into a frame at {target}: {exc}") from exc


def _save_npy(path: Path, signal: np.ndarray) -> None:
    try:
        np.save(path, signal.astype(np.float32))
    except OSError as exc:
        raise StorageError(f"cannot write the demo recording {path}: {exc}") from exc


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
