"""enroll -> profile -> check, end to end on a tiny real ONNX bundle, plus profiles and the encoder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.bundle.load import load_bundle
from edge.cli.main import main
from edge.errors import BundleError, InputError
from edge.evidence import Condition, EvidenceKind
from edge.vision.calibration import anomaly_probability
from edge.vision.encoder import ImageEncoder, RuntimeOptions, choose_providers
from edge.vision.evidence import to_evidence
from edge.vision.pipeline import VisionScorer, score_image
from edge.vision.profile import load_profile, save_profile
from edge.vision.temporal import TemporalContext, TemporalSettings
from tests.bundle_factory import make_bundle, panel_frame


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(0)
    folders = (("normal", 40, False), ("rust", 5, True), ("test_ok", 10, False), ("test_rust", 3, True))
    for folder, count, rust in folders:
        (root / folder).mkdir()
        for index in range(count):
            panel_frame(rng, rust).save(root / folder / f"{index:03}.png")
    make_bundle(root / "bundle", labels=[("ok", "ok"), ("rust", "fault")], patches=True)
    make_bundle(root / "other", dim=5)
    return root


@pytest.fixture(scope="module")
def profile_path(scene: Path) -> Path:
    out = scene / "asset.npz"
    assert main(["enroll", "--bundle", str(scene / "bundle"), "--normal", str(scene / "normal"),
                 "--label", f"rust={scene / 'rust'}", "--out", str(out)]) == 0
    return out


def vision_check(*argv: str) -> int:
    """``edgewatch check`` (its ``vision`` object is what these tests read)."""
    return main(["check", *argv])


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert vision_check(*args, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_enroll_writes_a_profile_with_every_head(profile_path: Path, scene: Path) -> None:
    profile = load_profile(profile_path, load_bundle(scene / "bundle"))
    assert set(profile.calibration) == {"knn", "patchcore"}
    assert profile.info["calibration_frames"] == 10 and profile.memory.shape == (30, 4)
    assert profile.patch_memory is not None and profile.patch_memory.shape == (120, 6)
    assert profile.few_shot_names == ("normal", "rust") and profile.few_shot_severities == ("ok", "fault")
    assert profile.platt is not None and profile.platt.slope > 0 and profile.platt.head == "patchcore"
    assert profile.info["p_anomaly"] == "Platt map fitted on 10 held-out normal and 5 labelled abnormal frames"


def test_check_scores_normal_and_rusty_frames(capsys: pytest.CaptureFixture[str], scene: Path,
                                              profile_path: Path) -> None:
    bundle = ["--bundle", str(scene / "bundle"), "--profile", str(profile_path)]
    normal = [_check(capsys, *bundle, "--image", str(p))["vision"] for p in sorted((scene / "test_ok").iterdir())]
    rusty = [_check(capsys, *bundle, "--image", str(p))["vision"] for p in sorted((scene / "test_rust").iterdir())]
    for vision in normal + rusty:
        assert 0.0 <= vision["p_anomaly"] <= 1.0 and set(vision["labels"]) == {"ok", "rust"}
        assert set(vision["heads"]) >= {"knn", "patchcore"}
    assert sum(v["condition"] == "ok" for v in normal) >= 8
    assert all(v["condition"] == "fault" and v["fault_type"] == "rust" and v["p_anomaly"] > 0.99 for v in rusty)
    assert min(v["anomaly_score"] for v in rusty) > max(v["anomaly_score"] for v in normal)


def test_check_without_profile_uses_labels_only(capsys: pytest.CaptureFixture[str], scene: Path) -> None:
    vision = _check(capsys, "--bundle", str(scene / "bundle"), "--image", str(scene / "test_ok" / "000.png"))["vision"]
    assert vision["p_anomaly"] is None and vision["few_shot"] == {}
    assert sum(vision["labels"].values()) == pytest.approx(1.0)
    assert vision["anomaly_score"] == pytest.approx(vision["labels"]["rust"])
    image_only = _check(capsys, "--bundle", str(scene / "other"), "--image", str(scene / "test_ok" / "000.png"))
    assert image_only["vision"]["condition"] is None and image_only["vision"]["anomaly_score"] is None


def test_human_output_names_every_head(capsys: pytest.CaptureFixture[str], scene: Path, profile_path: Path) -> None:
    assert vision_check("--bundle", str(scene / "bundle"), "--profile", str(profile_path),
                        "--image", str(scene / "test_rust" / "000.png")) == 0
    out = capsys.readouterr().out
    for text in ("patchcore", "knn", "p_anomaly", "zero-shot:", "few-shot:", "vision verdict fault", "inference"):
        assert text in out


def test_profile_from_another_bundle_is_refused(capsys: pytest.CaptureFixture[str], scene: Path,
                                                profile_path: Path) -> None:
    code = vision_check("--bundle", str(scene / "other"), "--profile", str(profile_path),
                        "--image", str(scene / "test_ok" / "000.png"))
    assert code == 1 and "different model bundle" in capsys.readouterr().err


def test_bad_inputs_are_clear_errors(capsys: pytest.CaptureFixture[str], scene: Path, tmp_path: Path,
                                     profile_path: Path) -> None:
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really")
    assert vision_check("--bundle", str(scene / "bundle"), "--image", str(corrupt)) == 1
    assert "broken.jpg" in capsys.readouterr().err
    bad_profile = tmp_path / "bad.npz"
    bad_profile.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(InputError, match="not a readable edgewatch profile"):
        load_profile(bad_profile)
    (tmp_path / "empty").mkdir()
    assert main(["enroll", "--bundle", str(scene / "bundle"), "--normal", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "p.npz")]) == 1
    assert "has no images" in capsys.readouterr().err
    assert main(["enroll", "--bundle", str(scene / "bundle"), "--normal", str(scene / "normal"),
                 "--label", "rust", "--out", str(tmp_path / "p.npz")]) == 2
    assert "NAME=DIR" in capsys.readouterr().err


def test_profile_write_is_atomic(scene: Path, profile_path: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    profile = load_profile(profile_path)
    target = tmp_path / "asset.npz"
    save_profile(profile, target)
    before = target.read_bytes()

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(Exception, match="could not be written"):
        save_profile(profile, target)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["asset.npz"]


def test_evidence_for_fusion(scene: Path, profile_path: Path) -> None:
    bundle = load_bundle(scene / "bundle")
    result = score_image(bundle, load_profile(profile_path, bundle), scene / "test_rust" / "000.png")
    evidence = to_evidence(result, "top", timestamp=12.0)
    assert evidence.source == "vision:top" and evidence.kind is EvidenceKind.VISION
    assert evidence.condition is Condition.FAULT and evidence.fault_type == "rust" and evidence.confidence > 0.99
    values = json.loads(json.dumps(evidence.to_dict()))["values"]
    assert values["top_label"] == "rust" and values["labels"]["rust"] > 0.5 and "patchcore" in values["heads"]


def test_provider_choice_falls_back_to_cpu(caplog: pytest.LogCaptureFixture, scene: Path) -> None:
    available = ["CPUExecutionProvider"]
    with caplog.at_level(logging.WARNING):
        assert choose_providers("cuda", available) == ["CPUExecutionProvider"]
    assert "cuda is not available" in caplog.text
    jetson = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("auto", jetson) == jetson
    assert choose_providers("cuda", jetson) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with caplog.at_level(logging.INFO):
        encoder = ImageEncoder.load(load_bundle(scene / "bundle"), RuntimeOptions(threads=1, provider="tensorrt",
                                                                                  memory_arena=False))
    assert encoder.provider == "CPUExecutionProvider"
    assert "on CPUExecutionProvider, 1 threads" in caplog.text


def test_encoder_rejects_a_manifest_that_names_missing_outputs(scene: Path) -> None:
    bundle = load_bundle(scene / "bundle")
    manifest = bundle.manifest.model_copy(
        update={"image_model": bundle.manifest.image_model.model_copy(update={"patch_output": "nope"})})
    with pytest.raises(BundleError, match="does not have the input/outputs"):
        ImageEncoder.load(type(bundle)(root=bundle.root, manifest=manifest))


def test_full_range_int8_on_a_cpu_that_saturates_is_warned_about(
    scene: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bundles from before 7-bit weights were recorded may score wrongly on x86 without VNNI: say so."""
    monkeypatch.setattr("edge.vision.cpu.int8_may_saturate", lambda: True)
    bundle = load_bundle(scene / "bundle")

    def with_quantization(**fields: object) -> object:
        q = bundle.manifest.quantization.model_copy(update={"mode": "static", **fields})
        return type(bundle)(root=bundle.root, manifest=bundle.manifest.model_copy(update={"quantization": q}))

    with caplog.at_level(logging.WARNING, logger="edge.vision.encoder"):
        ImageEncoder.load(with_quantization(reduced_range_weights=False), RuntimeOptions(threads=1))
    assert "full-range INT8 weights" in caplog.text and "export the bundle again" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge.vision.encoder"):
        ImageEncoder.load(with_quantization(reduced_range_weights=True), RuntimeOptions(threads=1))
        ImageEncoder.load(with_quantization(reduced_range_weights=False, weight_only=True), RuntimeOptions(threads=1))
    assert "full-range" not in caplog.text


def test_camera_stream_skips_duplicates_and_smooths(scene: Path, profile_path: Path) -> None:
    bundle = load_bundle(scene / "bundle")
    scorer = VisionScorer.load(bundle, load_profile(profile_path, bundle))
    context = TemporalContext(TemporalSettings(smooth_frames=3, max_skipped_frames=5))
    normal = Image.open(scene / "test_ok" / "000.png")
    rusty = Image.open(scene / "test_rust" / "000.png")
    first, state = scorer.score_frame(normal, "top", context)
    again, _ = scorer.score_frame(normal, "top", context)
    assert "inference" in first.timings_ms and "inference" not in again.timings_ms  # skipped
    assert first.timings_ms["inference"] > 0 and first.timings_ms["features"] > 0  # the model timed apart
    assert again.p_anomaly == first.p_anomaly and state is not None and not state.anomalous
    _, state = scorer.score_frame(rusty, "top", context)
    assert state is not None and not state.anomalous  # one odd frame is not enough
    for _ in range(2):
        _, state = scorer.score_frame(rusty, "top", context)
    assert state is not None and state.anomalous
    evidence = to_evidence(scorer.score_frame(rusty, "top", context)[0], "top", state=state)
    assert evidence.values["window_frames"] == state.frames and evidence.condition is Condition.FAULT
    _, other = scorer.score_frame(normal, "side", context)  # cameras have separate windows
    assert other is not None and not other.anomalous and other.frames == 1


def test_a_camera_watching_parts_judges_each_frame_alone(scene: Path, profile_path: Path) -> None:
    """Another part in every frame: a defective part right after sound ones is not outvoted by them,
    and a part that looks like the last one is scored again."""
    bundle = load_bundle(scene / "bundle")
    scorer = VisionScorer.load(bundle, load_profile(profile_path, bundle))
    normal = Image.open(scene / "test_ok" / "000.png")
    rusty = Image.open(scene / "test_rust" / "000.png")
    for _ in range(3):
        result, state = scorer.score_frame(normal, "line", None)
        assert state is None and "inference" in result.timings_ms  # never reused as a duplicate
    result, state = scorer.score_frame(rusty, "line", None)
    evidence = to_evidence(result, "line", state=state)
    assert evidence.condition is Condition.FAULT and "window_frames" not in evidence.values
    result, _ = scorer.score_frame(normal, "line", None)
    assert to_evidence(result, "line").condition is Condition.OK  # and the next sound part is ok at once


def test_anomaly_prior_shifts_p_anomaly(scene: Path, profile_path: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rare = tmp_path / "rare.npz"
    assert main(["enroll", "--bundle", str(scene / "bundle"), "--normal", str(scene / "normal"),
                 "--label", f"rust={scene / 'rust'}", "--anomaly-prior", "0.05", "--out", str(rare)]) == 0
    bundle = load_bundle(scene / "bundle")
    image = scene / "test_ok" / "001.png"
    usual = score_image(bundle, load_profile(profile_path, bundle), image)
    cautious = score_image(bundle, load_profile(rare, bundle), image)
    assert load_profile(rare).prior == 0.05
    assert cautious.p_value == usual.p_value and cautious.p_anomaly < usual.p_anomaly  # type: ignore[operator]
    assert main(["enroll", "--bundle", str(scene / "bundle"), "--normal", str(scene / "normal"),
                 "--anomaly-prior", "1", "--out", str(rare)]) == 2
    assert "--anomaly-prior" in capsys.readouterr().err


def test_without_labels_p_anomaly_is_the_tail_probability(scene: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain.npz"
    assert main(["enroll", "--bundle", str(scene / "bundle"), "--normal", str(scene / "normal"),
                 "--out", str(plain)]) == 0
    assert "p_anomaly: tail probability under the normal model" in capsys.readouterr().out
    bundle = load_bundle(scene / "bundle")
    profile = load_profile(plain, bundle)
    assert profile.platt is None
    result = score_image(bundle, profile, scene / "test_ok" / "001.png")
    assert result.p_value is not None
    assert result.p_anomaly == pytest.approx(anomaly_probability(result.p_value, profile.alternative_shape,
                                                                 profile.prior))


@pytest.mark.parametrize("stored", [{"slope": "steep", "intercept": 0.0, "head": "patchcore"},
                                    {"slope": float("nan"), "intercept": 0.0, "head": "patchcore"},
                                    {"slope": 1.0, "intercept": 0.0, "head": "colour"},
                                    {"slope": 1.0}])
def test_a_tampered_p_anomaly_map_is_a_clear_error(profile_path: Path, tmp_path: Path, stored: dict) -> None:
    profile = load_profile(profile_path)
    tampered = tmp_path / "tampered.npz"
    save_profile(profile, tampered)
    with np.load(tampered, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["meta_json"].tobytes().decode())
    meta["platt"] = stored
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tampered, **arrays)
    with pytest.raises(InputError, match="p_anomaly map"):
        load_profile(tampered)


def test_enroll_never_overwrites_a_file_that_is_not_a_profile(scene: Path, profile_path: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    def enroll(out: Path, *extra: str) -> int:
        return main(["enroll", "--bundle", str(scene / "bundle"), "--normal", str(scene / "normal"),
                     "--out", str(out), *extra])

    config = tmp_path / "config.yaml"
    config.write_text("assets: []\n")
    for extra in ((), ("--force",)):
        assert enroll(config, *extra) == 2
        assert "config.yaml exists and is not an edgewatch profile: it is never overwritten" in capsys.readouterr().err
        assert config.read_text() == "assets: []\n"
    assert enroll(tmp_path, "--force") == 2 and "is not an edgewatch profile" in capsys.readouterr().err
    existing = tmp_path / "press-1.npz"
    existing.write_bytes(profile_path.read_bytes())
    assert enroll(existing) == 2
    assert "already holds a profile: add --force to replace it" in capsys.readouterr().err
    assert existing.read_bytes() == profile_path.read_bytes()
    assert enroll(existing, "--force") == 0
    assert load_profile(existing).info["normal_frames"] == 40 and load_profile(existing).platt is None
