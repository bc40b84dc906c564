"""Real weights on real data: the EfficientNet-Lite0 INT8 bundle tells defective solar cells from normal ones.

A small version of benchmarks/elpv_quality.py (60 enrolled normal cells, 40 test cells per class);
the full figures are in docs/performance.md.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.image_sets import elpv_cells
from benchmarks.elpv_quality import auroc, evaluate
from edge.bundle.load import load_bundle
from edge.cli.main import main
from edge.evidence import Condition, Evidence
from edge.frames.frame import Frame
from edge.fusion.config import FusionConfig
from edge.fusion.fuse import fuse
from edge.service.wiring import CameraVision
from edge.sources.config import FolderCamera
from edge.sources.plugins import make_camera
from edge.store.alerts import AlertStore
from edge.store.history import History
from edge.vision.corrections import Corrections, frame_embedder
from edge.vision.encoder import ImageEncoder
from edge.vision.learned_normal import PATCHES_PER_FRAME
from edge.vision.pipeline import VisionScorer, embed_many
from edge.vision.profile import load_profile
from edge.vision.scoring import BaselineScorer


@pytest.fixture(scope="module")
def efficientnet_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("effnet")
    calibration = root / "calibration"
    calibration.mkdir()
    paths, _ = elpv_cells()
    for path in paths[::40]:  # 66 cells of every kind, as a user would calibrate on their own frames
        (calibration / path.name).symlink_to(path)
    out = root / "bundle"
    # the default gate: the heads rank every calibration cell alike in FP32 and INT8
    assert main(["export", "--model", "efficientnet-lite0", "--out", str(out), "--calibration", str(calibration)]) == 0
    return out


def test_auroc_is_the_mann_whitney_statistic() -> None:
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5


@pytest.mark.slow
def test_normal_baseline_detects_defective_cells_clearly_above_chance(efficientnet_bundle: Path) -> None:
    results = evaluate(efficientnet_bundle, normal=60, shots=5, test_per_class=40, seed=0)
    # Mid-level patch features: patchcore 0.89 at full size (docs/performance.md); small sets are noisier.
    assert results["auroc"]["patchcore"] > 0.7
    assert results["auroc"]["combined_p_value"] > 0.65
    assert results["few_shot"]["accuracy"] > 0.5
    # Conformal p-values keep their promise on normal cells (40 cells: allow sampling noise).
    assert results["false_alarm_rate"]["0.1"] <= 0.25
    # Without labels p_anomaly keeps that promise; with labelled cells the Platt map calibrates better.
    p_anomaly = results["p_anomaly"]
    assert p_anomaly["unlabelled_tail"]["normal_cells_at_or_above_0.5"] <= 0.15
    assert p_anomaly["labelled_draws"]["ece_median"] < p_anomaly["unlabelled_tail"]["expected_calibration_error"]


@pytest.fixture(scope="module")
def enrolled(efficientnet_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile from ``edgewatch enroll`` on 60 normal cells (defect probability 0)."""
    root = tmp_path_factory.mktemp("enrolled")
    paths, probabilities = elpv_cells()
    (root / "normal").mkdir()
    for index in np.flatnonzero(probabilities == 0)[:120:2]:
        (root / "normal" / paths[index].name).symlink_to(paths[index])
    assert main(["enroll", "--bundle", str(efficientnet_bundle), "--normal", str(root / "normal"),
                 "--out", str(root / "profile.npz")]) == 0
    return root / "profile.npz"


def _camera_frame(image: Path, camera: str, work: Path) -> Frame:
    """The frame the service's folder camera ``camera`` grabs from ``image`` (its decoder and downscaling)."""
    folder = work / camera
    folder.mkdir()
    (folder / image.name).symlink_to(image.resolve())
    with make_camera(FolderCamera.model_validate({"type": "folder", "name": camera, "path": folder})) as source:
        frame = source.grab()
    return replace(frame, camera=camera)


@pytest.mark.slow
def test_check_the_service_and_the_benchmark_give_a_frame_one_p_value(
        efficientnet_bundle: Path, enrolled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths, probabilities = elpv_cells()
    cells = [paths[np.flatnonzero(probabilities == 0)[301]], paths[np.flatnonzero(probabilities == 1)[3]]]
    bundle = load_bundle(efficientnet_bundle)
    profile = load_profile(enrolled, bundle)
    encoder = ImageEncoder.load(bundle)
    embeddings, patches = embed_many(encoder, cells)  # the ELPV benchmark's way: batched, then one scorer
    benchmark = BaselineScorer(profile).score(embeddings, patches)
    service = CameraVision(VisionScorer(encoder, profile))
    for index, cell in enumerate(cells):
        capsys.readouterr()
        assert main(["check", "--bundle", str(efficientnet_bundle), "--profile", str(enrolled), "--image", str(cell),
                     "--json"]) == 0
        checked = json.loads(capsys.readouterr().out)["vision"]
        looped = service(_camera_frame(cell, f"cam{index}", tmp_path)).values
        assert checked["p_value"] == pytest.approx(looped["p_value"], rel=1e-6)
        assert checked["p_value"] == pytest.approx(benchmark.p_values[index], rel=1e-4)
        assert checked["anomaly_score"] == pytest.approx(looped["anomaly_score"], rel=1e-6)
        assert checked["anomaly_score"] == pytest.approx(benchmark.anomaly_scores[index], rel=1e-4)
    assert benchmark.p_values[1] < benchmark.p_values[0]  # the defective cell is the less likely normal one


def _shifted_brighter(image: np.ndarray, shift_px: int = 4, gain: float = 1.06) -> np.ndarray:
    """(H, W, 3) uint8 -> the same view moved ``shift_px`` right and down (edges repeated), a little brighter."""
    moved = np.pad(image, ((shift_px, 0), (shift_px, 0), (0, 0)), mode="edge")[:image.shape[0], :image.shape[1]]
    return np.clip(moved.astype(np.float32) * gain, 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_it_was_ok_clears_a_false_alarm_and_a_shifted_copy_until_it_is_undone(
        efficientnet_bundle: Path, enrolled: Path, tmp_path: Path) -> None:
    bundle = load_bundle(efficientnet_bundle)
    profile = load_profile(enrolled, bundle)
    encoder = ImageEncoder.load(bundle)
    vision = CameraVision(VisionScorer(encoder, profile))
    checks = iter(range(1000))

    def judge(frame: Frame) -> Evidence:
        # each check on a camera of its own: the verdict of this frame alone, not smoothed with the ones before
        return vision(replace(frame, camera=f"check-{next(checks)}"))

    paths, probabilities = elpv_cells()
    # cells a person may call OK (defect probability 1/3) first, then cells the dataset calls defective
    candidates = [paths[i] for kind in (np.isclose(probabilities, 1 / 3), probabilities == 1)
                  for i in np.flatnonzero(kind)[:40]]
    found = None
    for path in candidates:  # an alarm whose shifted, brighter copy raises the same alarm
        frame = _camera_frame(path, path.stem, tmp_path)
        alarm = judge(frame)
        copy = replace(frame, image=_shifted_brighter(frame.image))
        if alarm.condition is not Condition.OK and judge(copy).condition is not Condition.OK:
            found = frame, alarm, copy
            break
    assert found is not None, "none of 80 cells raised an alarm on itself and its copy"
    frame, alarm, copy = found

    history = History(tmp_path / "history.sqlite3")
    store = AlertStore(tmp_path / "alerts.sqlite3")
    corrections = Corrections(history, store, tmp_path / "learned", frame_embedder(encoder),
                              reload=lambda asset: vision.use_profile(corrections.memory(asset).merge_into(profile)))
    verdict_id = history.add(fuse("cell-line", [alarm], FusionConfig(), frame.timestamp).verdict, frame=frame.image)
    marked = corrections.mark(verdict_id, "ok", by="technician")
    assert marked["example_id"] is not None and marked["not_learned"] is None
    learned = vision.scorer.heads.profile
    assert learned is not None and learned.patch_memory is not None and profile.patch_memory is not None
    added = len(learned.patch_memory) - len(profile.patch_memory)
    assert 0 < added <= PATCHES_PER_FRAME  # the frame's unusual patches, not all 784 of them
    assert judge(frame).condition is Condition.OK
    assert judge(copy).condition is Condition.OK

    corrections.undo(marked["ref"], by="technician")
    assert vision.scorer.heads.profile is not None and vision.scorer.heads.profile.patch_memory is not None
    assert len(vision.scorer.heads.profile.patch_memory) == len(profile.patch_memory)
    assert judge(frame).condition is not Condition.OK
    assert judge(copy).condition is not Condition.OK
    store.close()
    history.close()
