"""edgewatch export end to end on tiny local CLIP and SigLIP checkpoints built here (no hub access)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from bench.checkpoints import build_tiny_siglip
from bench.image_sets import write_real_images
from edge.bundle.load import load_bundle
from edge.cli.main import main
from edge.vision.preprocess import prepare
from export import towers
from export.onnx import export_module
from export.pipeline import ExportRequest, run
from export.sources import resolve
from export.validate import Gate

# Random tiny models give near-uniform label probabilities, so top-1 flips are not a quality signal here.
LENIENT = Gate(min_cosine=0.9, min_top1=0.0)


@pytest.fixture(scope="session")
def tiny_siglip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("hf") / "siglip")


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_real_images(tmp_path_factory.mktemp("photos"), elpv_count=6)


@pytest.fixture(scope="session")
def exported(
    tiny_clip: Path, tiny_siglip: Path, photos: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """One static-INT8 bundle with the text model per architecture, shared by the checks below."""
    out = tmp_path_factory.mktemp("bundles")
    bundles = {}
    for name, folder in (("clip", tiny_clip), ("siglip", tiny_siglip)):
        request = ExportRequest(model=str(folder), out=out / name, calibration=photos, gate=LENIENT,
                                with_text_model=True, progress=False)
        bundles[name] = run(request).bundle
    return bundles


def _hf_reference(folder: Path, image_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """What transformers itself computes for one image: its processor's pixels and get_image_features."""
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModel

    processor = AutoImageProcessor.from_pretrained(folder, use_fast=False)
    model = AutoModel.from_pretrained(folder).eval()
    pixels = processor(images=Image.open(image_path).convert("RGB"), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return pixels.numpy(), model.get_image_features(pixel_values=pixels).numpy()


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_bundle_verifies_and_fp32_onnx_matches_transformers(
    name: str, exported: dict[str, Path], tiny_clip: Path, tiny_siglip: Path, photos: Path, tmp_path: Path
) -> None:
    bundle = load_bundle(exported[name])
    m = bundle.manifest
    assert m.kind == "image-text" and m.quantization.mode == "static" and m.quantization.per_channel
    assert m.validation is not None and m.validation.passed and m.validation.text_cosine_mean is not None
    assert m.validation.cosine_mean >= 0.9 and m.validation.top1_agreement is not None
    assert m.quantization.calibration_fingerprint and m.quantization.calibration_images > 0
    assert m.quantization.activation_bits == 8 and not m.quantization.weight_only  # plain INT8: no fallback
    assert m.quantization.reduced_range_weights  # 7-bit weights: no saturation on x86 without VNNI
    assert "MatMul" not in m.quantization.ops_excluded  # every projection MatMul was reached
    assert m.image_model.patch_output == "patch_tokens" and m.text_model is not None
    folder = tiny_clip if name == "clip" else tiny_siglip
    assert m.source.content_sha256 == resolve(str(folder)).content_sha256()
    assert bundle.label_embeddings().shape == (7, m.embedding_dim)
    assert np.allclose(np.linalg.norm(bundle.label_embeddings(), axis=1), 1.0, atol=1e-5)

    # the exported FP32 graph reproduces transformers' own image features on a real photo
    pixels, expected = _hf_reference(folder, photos / "skimage_coffee.png")
    fp32 = tmp_path / "fp32.onnx"
    loaded = towers.load(resolve(str(folder)))
    export_module(loaded.image, {"pixel_values": pixels}, loaded.image_outputs, fp32, "image tower")
    got = ort.InferenceSession(str(fp32)).run(["image_embeds"], {"pixel_values": pixels})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)

    int8 = ort.InferenceSession(str(bundle.root / m.image_model.file))
    embeds, patches = int8.run(["image_embeds", "patch_tokens"], {"pixel_values": pixels})
    cosine = float((embeds @ expected.T / np.linalg.norm(embeds) / np.linalg.norm(expected)).item())
    assert cosine > 0.95
    grid = (m.preprocessing.input_size[0] // 8) ** 2  # tiny models use 8-px patches, no class token
    assert patches.shape[:2] == (1, grid)


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_bundle_text_model_reproduces_label_embeddings(name: str, exported: dict[str, Path]) -> None:
    """tokenizer.json + text.onnx on the board give (nearly) the label embeddings shipped in labels.npy."""
    from tokenizers import Tokenizer

    bundle = load_bundle(exported[name])
    m = bundle.manifest
    assert m.text_model is not None and m.labels is not None
    tokenizer = Tokenizer.from_file(str(bundle.root / m.text_model.tokenizer_file))
    session = ort.InferenceSession(str(bundle.root / m.text_model.file))
    label = m.labels.entries[1]
    ids = np.array([e.ids for e in tokenizer.encode_batch(label.prompts)], dtype=np.int64)
    if m.text_model.pad_to_max_length:
        assert ids.shape[1] == m.text_model.max_length
    prompts = session.run([m.text_model.embedding_output], {m.text_model.input_ids_name: ids})[0]
    prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    mean = prompts.mean(0) / np.linalg.norm(prompts.mean(0))
    assert float(mean @ bundle.label_embeddings()[1]) > 0.99


def test_preprocessing_matches_the_hf_processor(exported: dict[str, Path], tiny_clip: Path, tiny_siglip: Path,
                                                photos: Path, tmp_path: Path) -> None:
    """The manifest's preprocessing, run by the board's code, gives the HF processor's pixels."""
    from PIL import Image
    from transformers import AutoImageProcessor

    # within 3x of the 32-px input, so the board takes no decode-time shortcut
    small = []
    for photo, size in (("skimage_astronaut.png", (60, 45)), ("skimage_rocket.png", (41, 90))):
        path = tmp_path / photo
        Image.open(photos / photo).convert("RGB").resize(size, Image.Resampling.LANCZOS).save(path)
        small.append(path)
    for name, folder in (("clip", tiny_clip), ("siglip", tiny_siglip)):
        pre = load_bundle(exported[name]).manifest.preprocessing
        processor = AutoImageProcessor.from_pretrained(folder, use_fast=False)
        for path in small:
            expected = processor(images=Image.open(path).convert("RGB"), return_tensors="np")["pixel_values"]
            np.testing.assert_allclose(prepare(path, pre).tensor, expected, atol=1e-5)
    clip = load_bundle(exported["clip"]).manifest.preprocessing
    siglip = load_bundle(exported["siglip"]).manifest.preprocessing
    assert (clip.resize_mode, clip.crop, clip.interpolation) == ("shortest_edge", "center", "bicubic")
    assert clip.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert (siglip.resize_mode, siglip.crop, siglip.mean) == ("exact", "none", (0.5, 0.5, 0.5))


def test_cli_dynamic_export_prints_summary(
    tiny_siglip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle"
    code = main(["export", "--model", str(tiny_siglip), "--out", str(out), "--min-top1", "0", "--min-cosine", "0.9"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "bundle size" in printed and "INT8 vs FP32" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["quantization"]["mode"] == "dynamic" and manifest["validation"]["passed"]
    assert main(["bundle", "verify", str(out)]) == 0


def test_export_writes_nothing_into_the_working_directory(
    tiny_siglip: Path, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every intermediate (shape inference's scratch model, external-data files) stays in the export's temp folder.

    SigLIP's attention-pooling head makes onnxruntime's symbolic shape inference give up, and on that
    path it saves a scratch model with external data (``<uuid>.data``) into the current directory.
    """
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    request = ExportRequest(model=str(tiny_siglip), out=tmp_path / "bundle", calibration=photos, gate=LENIENT,
                            with_text_model=True, progress=False)
    assert run(request).manifest.validation is not None
    assert sorted(p.name for p in cwd.iterdir()) == []
