"""The demo: its data preparation (fast) and one end-to-end run through the real service (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge import cwru
from edge.analytics import bearings, diagnosis, iso
from edge.cli.main import build_parser
from edge.demo import data, run, text
from edge.errors import InputError
from edge.evaluation import figures, replay
from edge.evaluation.figures import CheckOutcome
from edge.evaluation.labels import load_labels
from edge.evidence import Condition, Evidence, EvidenceKind, Verdict
from edge.frames.frame import Frame
from edge.settings import load_config
from edge.sources.config import CameraHealthSettings
from edge.sources.health import FrameHealth
from edge.store.history import History
from tests.demo_support import demo_run

BURST_SAMPLES = 24_000  # the 2 s bursts the demo config replays


def _bursts(machine: data.DemoMachine) -> np.ndarray:
    """(bursts, samples) g: the recording cut as the replay sensor reads it."""
    signal = np.load(machine.vibration_path)
    assert signal.dtype == np.float32 and signal.ndim == 1
    count = signal.size // BURST_SAMPLES
    return signal[: count * BURST_SAMPLES].reshape(count, BURST_SAMPLES)


def _diagnose(burst: np.ndarray, prepared: data.DemoData) -> diagnosis.VibrationDiagnosis:
    return diagnosis.diagnose(burst, prepared.sample_rate_hz, prepared.rpm / 60.0, bearings.bearing("6205"),
                              iso.ZoneLimits.for_machine(2, "rigid"))


def _pixels(path: Path) -> bytes:
    with Image.open(path) as image:
        return image.tobytes()


def test_elpv_labels_are_read_without_loading_images() -> None:
    cells = data.elpv_cells()
    assert len(cells) == 2624
    assert {cell.cell_type for cell in cells} == {"mono", "poly"}
    assert {cell.defect_probability for cell in cells} == {0.0, 1 / 3, 2 / 3, 1.0}
    assert all(cell.path.is_file() for cell in cells[:5])


def test_camera_and_bearing_fail_independently(tmp_path: Path) -> None:
    prepared = data.prepare(tmp_path, frames=12, enroll=6, examples=3)

    assert prepared.vibration_source == f"real CWRU drive-end records in {cwru.BUNDLED}"
    assert len(list(prepared.enroll_dir.glob("*.jpg"))) == 6
    assert len(list(prepared.examples_dir.glob("*.jpg"))) == 3
    seen = {(m.case, m.bearing, tuple(item.camera_truth for item in m.items), m.degraded) for m in prepared.machines}
    assert seen == {
        ("healthy", "normal", ("ok", "ok"), ""),
        ("camera defect, bearing healthy", "normal", ("fault", "fault"), ""),
        ("bearing fault, camera normal", "outer_race", ("ok", "ok"), ""),
        ("camera defect and bearing fault", "inner_race", ("fault", "fault"), ""),
        ("healthy, vibration channel dead", "normal", ("ok", "ok"), "dead sensor"),
        ("bearing fault, camera dark/blurred", "outer_race", ("ok", "ok"), "dark or blurred camera"),
    }
    for machine in prepared.machines:
        assert sorted(p.name for p in machine.frames_dir.iterdir()) == [item.frame for item in machine.items]
        for item in machine.items:
            assert (item.defect_probability >= 2 / 3) == (item.camera_truth == "fault")
            assert machine.expected_for(item) == ("ok" if machine.case.startswith("healthy") else "fault")
        if machine.degraded == "dead sensor":
            assert machine.vibration_record == "dead channel"
            assert not np.any(np.load(machine.vibration_path))
        elif machine.bearing == "normal":
            assert machine.vibration_record == "normal_0"
        else:
            assert machine.vibration_record.startswith({"outer_race": "OR", "inner_race": "IR"}[machine.bearing])
    with Image.open(prepared.machines[0].frames_dir / "frame_0001.jpg") as frame:
        assert frame.mode == "RGB" and frame.size == (300, 300)
    manifest = json.loads((tmp_path / "demo-data.json").read_text())
    assert [m["expected"] for m in manifest["machines"]] == ["ok", "fault", "fault", "fault", "ok", "fault"]


def test_degraded_camera_frames_are_unfit_and_the_others_fit(tmp_path: Path) -> None:
    """The dark/blurred camera case must be what the camera health check rejects, and only that."""
    prepared = data.prepare(tmp_path, frames=12, enroll=4, examples=2)
    for machine in prepared.machines:
        health = FrameHealth("el-camera", CameraHealthSettings())
        verdicts = []
        for item in machine.items:
            with Image.open(machine.frames_dir / item.frame) as image:
                verdicts.append(health.check(Frame(np.asarray(image.convert("RGB")), 0.0, "el-camera")))
        problems = [" ".join(e.reasons) for e in verdicts if e is not None]
        if machine.degraded == "dark or blurred camera":
            assert len(problems) == len(machine.items)
            assert "black" in problems[0] and "blurred" in problems[1]
        else:
            assert problems == []


def test_labels_file_states_each_frame_and_bearing(tmp_path: Path) -> None:
    prepared = data.prepare(tmp_path, frames=6, enroll=4, examples=2)
    labels = load_labels(tmp_path / data.LABELS_FILE)
    assert list(labels.assets) == [m.asset_id for m in prepared.machines]
    for machine in prepared.machines:
        truth = labels.assets[machine.asset_id]
        assert truth.case == machine.case
        assert truth.sensors == machine.bearing_truth
        assert truth.frames == {item.frame: item.camera_truth for item in machine.items}


def test_each_demo_camera_judges_every_cell_on_its_own(tmp_path: Path) -> None:
    """Every frame is another cell: neither the camera nor fusion may let neighbouring cells vote on it."""
    config_path, prepared, _ = demo_run(tmp_path)
    config = load_config(config_path)
    assert len(config.assets) == len(prepared.machines)
    for asset in config.assets:
        assert [camera.watches for camera in asset.cameras] == ["parts"]
        assert asset.fusion.persistence.raise_after == 1


def test_the_default_stream_gives_every_machine_ten_checks() -> None:
    """Enough checks per situation that one lucky or unlucky cell does not decide the target."""
    options = run.DemoOptions(out=Path("unused"))
    assert options.frames // len(data.MACHINES) == 10
    assert build_parser().parse_args(["demo"]).frames == options.frames


def test_enrolled_cells_never_appear_in_a_stream(tmp_path: Path) -> None:
    prepared = data.prepare(tmp_path, frames=18, enroll=20, examples=5)
    enrolled = {_pixels(path) for folder in (prepared.enroll_dir, prepared.examples_dir) for path in folder.iterdir()}
    streamed = {_pixels(m.frames_dir / item.frame) for m in prepared.machines for item in m.items}
    assert len(streamed) == 18
    assert not enrolled & streamed


def test_same_seed_same_data(tmp_path: Path) -> None:
    first = data.prepare(tmp_path / "a", frames=4, enroll=4, examples=2, seed=7)
    second = data.prepare(tmp_path / "b", frames=4, enroll=4, examples=2, seed=7)
    assert [m.items for m in first.machines] == [m.items for m in second.machines]
    for a, b in zip(first.machines, second.machines, strict=True):
        assert np.array_equal(np.load(a.vibration_path), np.load(b.vibration_path))


def test_a_folder_without_cwru_records_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no CWRU records in .*missing: cannot read .*records.json"):
        data.prepare(tmp_path, frames=4, enroll=4, examples=2, cwru_dir=tmp_path / "missing")


def test_the_full_records_read_as_the_shipped_ones(tmp_path: Path) -> None:
    """A folder of float32 .npy records (``--cwru DIR``, as the full set is stored) replays the same bearings."""
    full = tmp_path / "full"
    full.mkdir()
    listed = json.loads((cwru.BUNDLED / "records.json").read_text(encoding="utf-8"))
    for entry in listed:
        record = cwru.records()[Path(entry["file"]).stem]
        np.save(full / f"{record.name}.npy", record.samples())
        entry["file"] = f"{record.name}.npy"
    (full / "records.json").write_text(json.dumps(listed), encoding="utf-8")
    shipped = data.prepare(tmp_path / "a", frames=6, enroll=4, examples=2)
    longer = data.prepare(tmp_path / "b", frames=6, enroll=4, examples=2, cwru_dir=full)
    assert longer.vibration_source == f"real CWRU drive-end records in {full}"
    for a, b in zip(shipped.machines, longer.machines, strict=True):
        assert a.vibration_record == b.vibration_record
        assert np.array_equal(np.load(a.vibration_path), np.load(b.vibration_path))


def test_real_fault_recordings_are_diagnosed_as_their_fault(tmp_path: Path) -> None:
    prepared = data.prepare(tmp_path, frames=4, enroll=4, examples=2)
    for machine in prepared.machines:
        if machine.bearing != "normal":
            for burst in _bursts(machine):
                assert _diagnose(burst, prepared).fault_type == machine.bearing


def test_unknown_synthetic_fault_is_refused() -> None:
    with pytest.raises(InputError, match="cannot synthesise a 'cage' fault"):
        data.synthesize_recording("cage", 12_000.0, 1797.0, 24_000, np.random.default_rng(0))


def test_asking_for_more_cells_than_the_dataset_has_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"elpv-dataset has .* the demo needs"):
        data.prepare(tmp_path, frames=4, enroll=5000)


@pytest.mark.slow
def test_demo_end_to_end_through_the_service(tmp_path: Path) -> None:
    """`edgewatch demo --json` on a small stream: real export, enroll, service loop, oracle cloud, evaluation."""
    completed = subprocess.run(
        [sys.executable, "-m", "edge", "demo", "--out", str(tmp_path), "--frames", "12", "--json"],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = json.loads(completed.stdout)  # stdout holds exactly one JSON object

    assert summary["checks"] == 12
    # six machines take turns; how the 12 checks fall between them depends on timing, not on truth
    assert summary["normal_total"] + summary["faults_total"] == 12
    assert summary["normal_total"] >= 2 and summary["faults_total"] >= 2
    assert 0.5 < summary["accuracy"] <= 1.0  # above chance
    assert 0.0 <= summary["vision_accuracy"] <= 1.0 and 0.0 <= summary["vibration_accuracy"] <= 1.0
    assert summary["accuracy"] == (summary["normal_correct"] + summary["faults_flagged"]) / 12
    assert sum(case["checks"] for case in summary["per_case"].values()) == 12
    assert 0.0 <= summary["escalation_rate"] <= 1.0
    assert summary["escalation_rate"] == summary["escalations"] / 12
    assert 0.0 < summary["latency_ms_p50"] < 10_000.0
    assert summary["vibration_source"].startswith("real CWRU drive-end records in ")
    assert Path(summary["history"]).is_file()
    assert "[2/7] exporting" in completed.stderr and "[7/7] evaluating" in completed.stderr

    evaluation = summary["evaluation"]
    assert evaluation["checks"] == 12 and evaluation["escalations"] == summary["escalations"]
    assert evaluation["local_accuracy"] == pytest.approx(summary["accuracy"])  # the same verdicts, scored twice
    # an oracle that is never wrong can only confirm a right verdict or correct a wrong one
    assert evaluation["cloud_accuracy"] >= evaluation["local_accuracy"]
    assert evaluation["fixed"] + evaluation["wasted"] + evaluation["unfixed"] + evaluation["broken"] == \
        evaluation["escalations"]
    mini, full = evaluation["cost_per_1000_usd"]["gpt-4o-mini"], evaluation["cost_per_1000_usd"]["gpt-4o"]
    assert 0.0 < mini["always_cloud"] < full["always_cloud"]

    # the what-if replay of the run's own policy takes the run's decisions, check by check
    config = load_config(Path(summary["config"]))
    labels = load_labels(tmp_path / "data" / data.LABELS_FILE)
    ran = replay.collect(config, labels, models=("gpt-4o",))
    again = replay.collect(config, labels, models=("gpt-4o",), policy=config.escalation.policy)
    assert [(o.escalated, o.held_back) for o in again] == [(o.escalated, o.held_back) for o in ran]


def _verdict(asset: str, condition: str, vision: str, vibration: str, at: float,
             escalation: dict[str, object] | None = None) -> Verdict:
    evidence = (
        Evidence("vision:el-camera", EvidenceKind.VISION, Condition(vision), 0.8, timestamp=at - 0.05,
                 values={"p_anomaly": 0.3 if vision == "ok" else 0.8}),
        Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition(vibration), 0.9,
                 fault_type=None if vibration == "ok" else "outer_race", timestamp=at - 0.5),
    )
    return Verdict(asset, Condition(condition), 0.9, ("test",), evidence, at,
                   escalated=bool(escalation and escalation.get("status") == "answered"), escalation=escalation)


def test_stored_verdicts_are_scored_against_each_machines_truth(tmp_path: Path) -> None:
    config, prepared, state_dir = demo_run(tmp_path)
    answered = {"status": "answered", "condition": "fault", "cost": {"usd": 0.002},
                "triggers": ["vision says ok but sensors say fault"]}
    cooled = {"status": "skipped", "why": "same situation escalated 0 min ago (cool-down 60 min)"}
    # truths: stringer-1 healthy, -2 camera defect only, -3 bearing fault only, -4 both (5, 6 have no verdicts)
    stored = {  # per machine, in check order: (verdict, vision, vibration, escalation)
        "stringer-1": [("ok", "ok", "ok", None), ("warning", "warning", "ok", None), ("ok", "ok", "ok", None)],
        "stringer-2": [("fault", "ok", "fault", answered), ("fault", "ok", "fault", cooled)],
        "stringer-3": [("ok", "ok", "ok", {"status": "not_needed"}), ("ok", "ok", "ok", None)],
        "stringer-4": [("ok", "ok", "ok", None), ("fault", "fault", "fault", None)],
    }
    with History(state_dir / "history.sqlite3") as history:
        at = 1_700_000_000.0
        for asset, checks in stored.items():
            for verdict, vision, vibration, escalation in checks:
                at += 1.0
                history.add(_verdict(asset, verdict, vision, vibration, at, escalation))

    rows = run.score_verdicts(config, prepared)
    result = run.DemoResult(tuple(rows), prepared, tmp_path / "bundle", config, state_dir, "http://127.0.0.1:8080", 1.0)
    summary = result.summary()

    assert [r.item.frame for r in rows if r.machine.asset_id == "stringer-1"] == [
        "frame_0001.jpg", "frame_0002.jpg", "frame_0001.jpg"]  # the folder camera loops
    assert [r.correct for r in rows] == [True, False, True, True, True, False, False, False, True]
    assert summary["checks"] == 9 and summary["accuracy"] == pytest.approx(5 / 9)
    assert (summary["normal_correct"], summary["normal_total"]) == (2, 3)
    assert (summary["faults_flagged"], summary["faults_total"]) == (3, 6)
    # each modality against what it can see: the camera the cells, the accelerometer the bearing
    assert summary["vision_accuracy"] == pytest.approx(5 / 9)
    assert summary["vibration_accuracy"] == pytest.approx(4 / 9)
    assert summary["per_case"]["healthy"] == {"checks": 3, "accuracy": pytest.approx(2 / 3),
                                              "vision_accuracy": pytest.approx(2 / 3), "vibration_accuracy": 1.0}
    assert summary["per_case"]["camera defect, bearing healthy"] == {
        "checks": 2, "accuracy": 1.0, "vision_accuracy": 0.0, "vibration_accuracy": 0.0}
    assert summary["evaluation"] is None
    # the defective cells of stringer-2 and -4 the camera called ok, and how unlike normal it found them
    assert summary["camera_missed"] == {"defective_seen": 4, "missed": 3, "p_anomaly_range": [0.3, 0.3]}
    assert summary["escalations"] == 1 and summary["escalation_rate"] == pytest.approx(1 / 9)
    assert summary["cloud_cost_usd"] == pytest.approx(0.002)
    assert summary["escalated_because"] == ["vision says ok but sensors say fault"]
    assert summary["latency_ms_p50"] == pytest.approx(50.0, abs=0.01)
    assert [r.cloud for r in rows if r.machine.asset_id == "stringer-2"] == ["fault", "cooldown"]
    table = text.format_table(rows)
    assert table.count("\n") == len(rows) + 1 and "NO" in table
    printed = text.format_summary(summary)
    assert "accuracy           56%" in printed and "vision 56% (against the cells' labels), vibration 44%" in printed
    assert "  camera defect, bearing healthy       fused 100%  vision   0%  vibration   0%  (2 checks)" in printed
    assert "camera             missed 3 of 4 defective cells it saw: p_anomaly 0.30-0.30, under 0.5" in printed
    assert json.loads(json.dumps(summary)) == summary  # plain JSON types only


def test_the_demo_prints_the_evaluations_headline_and_closing_note() -> None:
    outcomes = [CheckOutcome("stringer-1", "healthy", Condition.OK, Condition.OK, 0.9, False, Condition.OK, 0.95),
                CheckOutcome("stringer-2", "camera", Condition.FAULT, Condition.OK, 0.94, False, Condition.FAULT, 0.95)]
    lines = text.format_evaluation(figures.evaluate(outcomes)).splitlines()
    assert lines[0] == ("evaluation         local only 50%, always cloud 100%, policy 50% (50% of always cloud) "
                        "escalating 0% of 2 checks")
    assert lines[1].startswith("                   0 escalation(s)")
    assert "not met" in lines[2] and "the 1 wrong verdict(s) not escalated were 0.94 confident" in lines[2]
