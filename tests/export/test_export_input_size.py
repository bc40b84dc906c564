"""``edgewatch export --input-size``: a larger square input for the CNN, refused for ViTs and odd sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from bench.image_sets import elpv_cells
from edge.bundle.load import load_bundle
from edge.cli.main import main
from edge.errors import UsageError
from edge.vision.encoder import ImageEncoder, RuntimeOptions
from edge.vision.pipeline import VisionScorer
from edge.vision.preprocess import prepare
from edge.vision.profile import load_profile
from export import towers
from export.pipeline import ExportRequest, run
from export.sources import resolve
from export.task_gate import auroc

INPUT_PX = 288  # 36x36 cells at stride 8, 18x18 at stride 16


def _cells(folder: Path, indices: np.ndarray) -> Path:
    paths, _ = elpv_cells()
    folder.mkdir(parents=True)
    for index in indices:
        (folder / paths[index].name).symlink_to(paths[index])
    return folder


@pytest.fixture(scope="module")
def cells() -> dict[str, np.ndarray]:
    """Indices of ELPV cells: every kind for calibration, normal ones to enroll, normal and defective to score."""
    paths, probabilities = elpv_cells()
    normal, defect = np.flatnonzero(probabilities == 0), np.flatnonzero(probabilities == 1)
    # even-numbered normal cells are enrolled, odd-numbered ones scored: no cell is scored against itself
    return {"calibration": np.arange(len(paths))[7::160], "enroll": normal[::2][::36][:20],
            "normal": normal[1::2][::60][:12], "defect": defect[::40][:12],
            "good": normal[1::2][7::90][:6], "bad": defect[5::40][:3]}


@pytest.fixture(scope="module")
def bundle_288(tmp_path_factory: pytest.TempPathFactory, cells: dict[str, np.ndarray]) -> Path:
    root = tmp_path_factory.mktemp("input-size")
    calibration = _cells(root / "calibration", cells["calibration"])
    labelled = root / "labelled"
    _cells(labelled / "good", cells["good"])
    _cells(labelled / "defect", cells["bad"])
    out = root / "bundle"
    assert main(["export", "--model", "efficientnet-lite0", "--out", str(out), "--calibration", str(calibration),
                 "--validation", str(labelled), "--input-size", str(INPUT_PX)]) == 0
    return out


@pytest.mark.slow  # ~40 s: the real network exported, calibrated and validated at 288 px
def test_the_bundle_records_the_chosen_size_and_its_maps_follow_it(bundle_288: Path) -> None:
    bundle = load_bundle(bundle_288)
    m = bundle.manifest
    assert m.preprocessing.input_size == (INPUT_PX, INPUT_PX) and m.preprocessing.resize_px == INPUT_PX
    assert m.preprocessing.resize_mode == "shortest_edge" and m.preprocessing.crop == "center"
    v = m.validation  # the gate and the task gate ran on 288 px tensors
    assert v is not None and v.passed and v.auroc_int8 is not None and v.auroc_fp32 is not None
    paths, _ = elpv_cells()
    pixels = prepare(paths[0], m.preprocessing).tensor  # (1, 3, 288, 288) float32
    assert pixels.shape == (1, 3, INPUT_PX, INPUT_PX)
    session = ort.InferenceSession(str(bundle.root / m.image_model.file))
    embeds, fine, coarse = session.run(["image_embeds", "features_s8", "features_s16"], {"pixel_values": pixels})
    assert embeds.shape == (1, 1280)
    assert fine.shape == (1, 40, 36, 36) and coarse.shape == (1, 112, 18, 18)  # strides 8 and 16 of 288 px
    encoded = ImageEncoder.load(bundle, RuntimeOptions(threads=1)).encode(pixels)
    assert encoded.patch_grid == (36, 36) and encoded.patches is not None and encoded.patches.shape == (1296, 152)


@pytest.mark.slow
def test_a_frame_scores_end_to_end_on_the_board_path(bundle_288: Path, cells: dict[str, np.ndarray],
                                                      tmp_path: Path) -> None:
    normal = _cells(tmp_path / "normal", cells["enroll"])
    profile_path = tmp_path / "profile.npz"
    assert main(["enroll", "--bundle", str(bundle_288), "--normal", str(normal), "--out", str(profile_path)]) == 0
    bundle = load_bundle(bundle_288)
    scorer = VisionScorer.load(bundle, load_profile(profile_path, bundle), RuntimeOptions(threads=1))
    paths, _ = elpv_cells()
    scores: dict[str, list[float]] = {}
    for kind in ("normal", "defect"):
        for index in cells[kind]:
            result = scorer.score(paths[index])
            assert result.anomaly_map is not None and result.anomaly_map.shape == (36, 36)
            assert result.p_value is not None and 0 < result.p_value <= 1
            scores.setdefault(kind, []).append(result.heads["patchcore"])
    # the patch head at 288 px still tells cracked cells from sound ones
    assert auroc(np.array(scores["normal"]), np.array(scores["defect"])) > 0.75, scores


@pytest.mark.parametrize("size_px", [0, 64, 100, 230, 1056])
def test_sizes_the_network_cannot_take_are_refused_naming_the_flag(size_px: int, tmp_path: Path) -> None:
    allowed = rf"--input-size {size_px} is not supported: give a multiple of 32 from 96 to 1024 pixels"
    with pytest.raises(UsageError, match=allowed):
        run(ExportRequest(model="efficientnet-lite0", out=tmp_path / "b", input_size_px=size_px, progress=False))
    assert not (tmp_path / "b").exists()


def test_the_cli_reports_a_bad_size_as_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", "--model", "efficientnet-lite0", "--out", str(tmp_path / "b"), "--input-size", "300"])
    assert code == 2
    assert "--input-size 300 is not supported: give a multiple of 32 from 96 to 1024" in capsys.readouterr().err


def test_a_vit_keeps_its_checkpoint_size(tiny_clip: Path, tmp_path: Path) -> None:
    checkpoint = resolve(str(tiny_clip))
    native = towers.load(checkpoint).preprocessing
    assert native.input_size == (32, 32)
    assert towers.load(checkpoint, 32).preprocessing == native  # asking for its own size is fine
    why = r"--input-size 64 cannot be used with .*: a ViT's position embeddings fix its input size at 32x32 pixels"
    with pytest.raises(UsageError, match=why):
        run(ExportRequest(model=str(tiny_clip), out=tmp_path / "b", input_size_px=64, progress=False))
    assert not (tmp_path / "b").exists()
