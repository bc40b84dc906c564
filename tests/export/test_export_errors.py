"""Every way ``edgewatch export`` refuses bad input: one clear error, and never a half-written bundle."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from edge.bundle.load import load_bundle
from edge.errors import ConfigError, ExportError, UsageError
from edge.vision.preprocess import prepare
from export import images, sources
from export.labels import load_labels
from export.pipeline import ExportRequest, run
from export.processor import efficientnet_lite
from export.validate import Gate


@pytest.fixture()
def few_images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (48, 40), (60 * i, 255 - 50 * i, 90)).save(folder / f"frame{i}.png")
    return folder


def test_unsupported_architecture_names_what_is_supported(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    supported = r"architecture 'bert' is not supported; supported: .*CLIP, SigLIP or DINOv2.*efficientnet-lite0"
    with pytest.raises(ExportError, match=supported):
        sources.resolve(str(tmp_path))


def test_model_that_is_neither_folder_nor_hub_id(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not a local folder, a hub id"):
        sources.resolve("no such model!")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match=r"config\.json is missing"):
        sources.resolve(str(tmp_path / "empty"))


def test_missing_export_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tqdm" else real(name, *a))
    with pytest.raises(ExportError, match=r"missing: tqdm.*pip install 'edgewatch\[export\]'"):
        sources.require_extra()


def test_calibration_folder_empty_or_unreadable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ExportError, match="holds no images"):
        images.load_folder(empty, efficientnet_lite())
    with pytest.raises(ExportError, match="does not exist"):
        images.load_folder(tmp_path / "missing", efficientnet_lite())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (bad / "notes.jpg").write_text("not an image")
    with pytest.raises(ExportError, match="none of its 2 images could be read"):
        images.load_folder(bad, efficientnet_lite())
    # one good image among bad ones: bad ones are skipped with a warning, the good one is used
    Image.new("RGB", (300, 200), "gray").save(bad / "good.png")
    with caplog.at_level(logging.WARNING):
        loaded = images.load_folder(bad, efficientnet_lite())
    assert sorted(loaded.skipped) == ["notes.jpg", "truncated.png"]
    assert "skipping calibration image" in caplog.text
    assert len(loaded.calibration) == 1 and loaded.calibration[0].shape == (1, 3, 224, 224)


def test_held_back_images_are_not_calibration_images(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (224, 224), (30 * i, 20, 200 - 20 * i)).save(folder / f"{i}.png")
    loaded = images.load_folder(folder, efficientnet_lite())
    assert (len(loaded.calibration), len(loaded.held_back)) == (6, 2)
    calibration = {t.tobytes() for t in loaded.calibration}
    assert not any(t.tobytes() in calibration for t in loaded.held_back)
    assert loaded.held_back[0].tobytes() == prepare(folder / "3.png", efficientnet_lite()).tensor.tobytes()


def test_existing_output_is_refused_without_force(tiny_clip: Path, few_images: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    request = ExportRequest(model=str(tiny_clip), out=out, calibration=few_images, progress=False,
                            gate=Gate(min_cosine=0.5, min_top1=0.0))
    with pytest.raises(ExportError, match=r"already exists .*--force"):
        run(request)
    assert (out / "keep.txt").read_text() == "mine"
    forced = ExportRequest(**{**request.__dict__, "force": True})
    run(forced)
    assert not (out / "keep.txt").exists()
    assert load_bundle(out).manifest.quantization.mode == "static"


def test_failed_gate_leaves_no_bundle_and_keeps_the_old_one(tiny_clip: Path, few_images: Path, tmp_path: Path) -> None:
    impossible = Gate(min_cosine=1.01, min_top1=0.0)
    out = tmp_path / "new"
    with pytest.raises(ExportError, match=r"INT8 failed the accuracy gate on \d+ images: cosine mean"
                                          r".*or --quantize dynamic$"):
        run(ExportRequest(model=str(tiny_clip), out=out, calibration=few_images, gate=impossible, progress=False))
    assert not out.exists()
    with pytest.raises(ExportError, match=r"accuracy gate.*Give --calibration DIR .* or --quantize none$"):
        run(ExportRequest(model=str(tiny_clip), out=out, quantize="dynamic", gate=impossible, progress=False))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind
    # replacing a good bundle with --force: the failed export leaves the old bundle intact
    good = tmp_path / "good"
    run(ExportRequest(model=str(tiny_clip), out=good, quantize="none", progress=False))
    before = (good / "manifest.json").read_text()
    with pytest.raises(ExportError, match="accuracy gate"):
        run(ExportRequest(model=str(tiny_clip), out=good, calibration=few_images, gate=impossible, force=True,
                          progress=False))
    assert (good / "manifest.json").read_text() == before
    load_bundle(good)


def test_argument_combinations_that_cannot_work(tiny_clip: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--quantize static needs --calibration"):
        run(ExportRequest(model=str(tiny_clip), out=tmp_path / "a", quantize="static", progress=False))
    with pytest.raises(UsageError, match="image-only"):
        run(ExportRequest(model="efficientnet-lite0", out=tmp_path / "b", with_text_model=True, progress=False))


def test_labels_file_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text("labels:\n  - {name: rust, severity: warning, prompts: [rust]}\n"
                    "  - {name: rust, severity: fault, prompts: [more rust]}\n")
    with pytest.raises(ConfigError, match="repeated: rust"):
        load_labels(path)
    path.write_text("labels:\n  - {name: rust, severity: bad, prompts: [rust]}\n")
    with pytest.raises(ConfigError, match="severity"):
        load_labels(path)
    defaults = load_labels(None)
    assert {label.severity for label in defaults} == {"ok", "warning", "fault"}
    assert all(len(label.prompts) >= 3 for label in defaults)
