"""The demo: its data preparation (fast) and one end-to-end run through the real service (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.analytics import bearings, diagnosis, iso
from edge.demo import data
from edge.errors import InputError

pytest.importorskip("elpv_dataset")

REPO_ROOT = Path(__file__).resolve().parent.parent


def _diagnose(burst: np.ndarray, prepared: data.DemoData) -> diagnosis.VibrationDiagnosis:
    return diagnosis.diagnose(burst, prepared.sample_rate_hz, prepared.rpm / 60.0, bearings.bearing("6205"),
                              iso.ZoneLimits.for_machine(2, "rigid"))


def _bursts(prepared: data.DemoData) -> np.ndarray:
    stream = np.load(prepared.vibration_path)
    assert stream.dtype == np.float32 and stream.size == len(prepared.items) * prepared.burst_samples
    return stream.reshape(len(prepared.items), prepared.burst_samples)  # (checks, samples) g


def _pixels(path: Path) -> bytes:
    with Image.open(path) as image:
        return image.tobytes()


def test_elpv_labels_are_read_without_loading_images() -> None:
    cells = data.elpv_cells()
    assert len(cells) == 2624
    assert {cell.cell_type for cell in cells} == {"mono", "poly"}
    assert {cell.defect_probability for cell in cells} == {0.0, 1 / 3, 2 / 3, 1.0}
    assert all(cell.path.is_file() for cell in cells[:5])


def test_stream_pairs_defective_cells_with_real_fault_records(tmp_path: Path, cwru_dir: Path) -> None:
    prepared = data.prepare(tmp_path, enroll=6, normal=5, defective=5, cwru_dir=cwru_dir)

    assert prepared.vibration_source == "cwru"
    assert len(list(prepared.enroll_dir.glob("*.jpg"))) == 6
    assert len(list(prepared.examples_dir.glob("*.jpg"))) == 10
    assert sorted(p.name for p in prepared.frames_dir.iterdir()) == [item.frame for item in prepared.items]
    assert sum(item.expected == "fault" for item in prepared.items) == 5
    for item in prepared.items:
        if item.expected == "fault":
            assert item.defect_probability >= 2 / 3 and item.vibration_fault in ("inner_race", "outer_race")
            assert item.vibration_record.startswith(("IR", "OR"))
        else:
            assert item.defect_probability == 0.0 and item.vibration_record == "normal_0.npy"
    with Image.open(prepared.frames_dir / prepared.items[0].frame) as frame:
        assert frame.mode == "RGB" and frame.size == (300, 300)
    manifest = json.loads((tmp_path / "stream.json").read_text())
    assert [entry["cell"] for entry in manifest["items"]] == [item.cell for item in prepared.items]


def test_enrollment_cells_never_appear_in_the_stream(tmp_path: Path) -> None:
    prepared = data.prepare(tmp_path, enroll=20, normal=10, defective=4, cwru_dir=None)
    enrolled = {_pixels(path) for folder in (prepared.enroll_dir, prepared.examples_dir) for path in folder.iterdir()}
    streamed = {_pixels(prepared.frames_dir / item.frame) for item in prepared.items}
    assert not enrolled & streamed


def test_same_seed_same_stream(tmp_path: Path) -> None:
    first = data.prepare(tmp_path / "a", enroll=4, normal=3, defective=3, cwru_dir=None, seed=7)
    second = data.prepare(tmp_path / "b", enroll=4, normal=3, defective=3, cwru_dir=None, seed=7)
    assert [i.cell for i in first.items] == [i.cell for i in second.items]
    assert np.array_equal(np.load(first.vibration_path), np.load(second.vibration_path))


def test_without_cwru_the_bursts_are_synthesised_and_diagnosable(tmp_path: Path) -> None:
    prepared = data.prepare(tmp_path, enroll=4, normal=4, defective=4, cwru_dir=tmp_path / "missing")
    assert prepared.vibration_source == "synthetic"
    assert {item.vibration_record for item in prepared.items} == {"synthetic"}
    for item, burst in zip(prepared.items, _bursts(prepared), strict=True):
        found = _diagnose(burst, prepared)
        if item.vibration_fault == "normal":
            assert found.condition.value == "ok", found.reasons
        else:
            assert (found.condition.value, found.fault_type) == ("fault", item.vibration_fault), found.reasons


def test_real_fault_bursts_are_diagnosed_as_their_fault(tmp_path: Path, cwru_dir: Path) -> None:
    prepared = data.prepare(tmp_path, enroll=4, normal=2, defective=6, cwru_dir=cwru_dir)
    for item, burst in zip(prepared.items, _bursts(prepared), strict=True):
        if item.vibration_fault != "normal":
            found = _diagnose(burst, prepared)
            assert found.fault_type == item.vibration_fault, found.reasons


def test_unknown_synthetic_fault_is_refused() -> None:
    with pytest.raises(InputError, match="cannot synthesise a 'cage' fault"):
        data.synthesize_burst("cage", 12_000.0, 1797.0, 24_000, np.random.default_rng(0))


def test_asking_for_more_cells_than_the_dataset_has_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"elpv-dataset has .* normal"):
        data.prepare(tmp_path, enroll=5000, normal=1, defective=1, cwru_dir=None)
