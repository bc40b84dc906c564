"""EfficientNet-Lite1 and Lite2 export like Lite0, at their own input sizes, with their real ImageNet weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from bench.image_sets import write_real_images
from edge.bundle.load import load_bundle
from edge.vision.encoder import ImageEncoder, RuntimeOptions
from edge.vision.preprocess import prepare
from export import towers
from export.pipeline import ExportRequest, run
from export.sources import BUILTIN_MODELS, resolve

pytestmark = pytest.mark.slow  # ~1 min per variant: real networks, 30 images calibrated and gated

# ImageNet classes: 967 espresso, 968 cup; 281-285 the domestic cats
_EXPECTED = {"skimage_coffee.png": {967, 968}, "skimage_chelsea.png": {281, 282, 283, 284, 285}}


def test_every_efficientnet_lite_variant_is_a_builtin_model() -> None:
    assert BUILTIN_MODELS == ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")


@pytest.mark.parametrize(("model", "input_px"), [("efficientnet-lite1", 240), ("efficientnet-lite2", 260)])
def test_a_lite_variant_exports_at_its_own_size_and_recognises_photos(model: str, input_px: int,
                                                                      tmp_path: Path) -> None:
    photos = write_real_images(tmp_path / "photos", elpv_count=12)
    checkpoint = resolve(model)
    assert checkpoint.architecture == model and checkpoint.path.is_file()

    # the variant's own weights, fed the bundle's preprocessing, name what is in the photo (top 5)
    tower = towers.load(checkpoint)
    assert tower.preprocessing.input_size == (input_px, input_px)
    for name, classes in _EXPECTED.items():
        pixels = prepare(photos / name, tower.preprocessing).tensor
        with torch.no_grad():
            logits = tower.image.eval()(torch.from_numpy(pixels))[-1].numpy()[0]
        assert classes & set(np.argsort(logits)[-5:].tolist()), f"{model} on {name}: top 5 {np.argsort(logits)[-5:]}"

    summary = run(ExportRequest(model=model, out=tmp_path / "bundle", calibration=photos, progress=False))
    bundle = load_bundle(summary.bundle)
    m = bundle.manifest
    assert m.source.architecture == model and m.kind == "image-only" and m.labels is None
    assert m.preprocessing.input_size == (input_px, input_px) and m.preprocessing.resize_px == input_px
    assert m.quantization.mode == "static" and m.validation is not None and m.validation.passed
    assert summary.bundle_bytes <= 0.35 * summary.fp32_bundle_bytes

    session = ort.InferenceSession(str(bundle.root / m.image_model.file))
    pixels = prepare(photos / "skimage_coffee.png", m.preprocessing).tensor
    embeds, fine, coarse = session.run(["image_embeds", "features_s8", "features_s16"], {"pixel_values": pixels})
    assert embeds.shape == (1, 1280)
    assert fine.shape[2:] == (-(-input_px // 8),) * 2 and coarse.shape[2:] == (-(-input_px // 16),) * 2
    encoded = ImageEncoder.load(bundle, RuntimeOptions(threads=1)).encode(pixels)
    assert encoded.patches is not None and encoded.patch_grid is not None
    assert encoded.patches.shape == (encoded.patch_grid[0] * encoded.patch_grid[1], fine.shape[1] + coarse.shape[1])
