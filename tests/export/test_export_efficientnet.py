"""The real EfficientNet-Lite0 ImageNet weights -> static INT8 bundle, gated on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from bench.image_sets import elpv_cells, write_real_images
from edge.bundle.load import describe, load_bundle
from edge.vision.encoder import ImageEncoder, RuntimeOptions
from edge.vision.preprocess import prepare
from export import towers
from export.pipeline import ExportRequest, run
from export.sources import resolve
from export.validate import Gate

pytestmark = pytest.mark.slow  # ~30 s: real 4.7M-parameter network, ~60 images calibrated and validated


def _validation_folder(folder: Path) -> Path:
    """12 normal and 6 defective ELPV cells in good/ and defect/, as a user would label their own parts."""
    paths, probabilities = elpv_cells()
    for side, members in (("good", np.flatnonzero(probabilities == 0)[::50][:12]),
                          ("defect", np.flatnonzero(probabilities == 1)[::50][:6])):
        (folder / side).mkdir(parents=True)
        for index in members:
            (folder / side / paths[index].name).symlink_to(paths[index])
    return folder


def test_efficientnet_lite0_ships_plain_int8_when_the_heads_rank_as_in_fp32(tmp_path: Path) -> None:
    photos = write_real_images(tmp_path / "photos", elpv_count=40)
    summary = run(ExportRequest(model="efficientnet-lite0", out=tmp_path / "bundle", calibration=photos,
                                validation=_validation_folder(tmp_path / "labelled"), progress=False))
    bundle = load_bundle(summary.bundle)
    m = bundle.manifest
    assert m.kind == "image-only" and m.labels is None and m.text_model is None
    assert m.embedding_dim == 1280 and m.image_model.logits_output == "logits"
    assert m.image_model.feature_outputs == ["features_s8", "features_s16"] and m.image_model.patch_output is None
    assert m.quantization.mode == "static" and m.quantization.calibration_images >= 40
    assert not m.quantization.weight_only and m.quantization.activation_bits == 8  # plain INT8 shipped
    v = m.validation
    assert v is not None and v.passed and v.images >= 60  # every image of the folder, not a held-back quarter
    # with a labelled folder the task decided: INT8 minus FP32 AUROC, by its interval's pessimistic end
    assert v.thresholds == {"auroc_difference_low": -0.01}
    assert v.auroc_fp32 is not None and v.auroc_int8 is not None and v.auroc_fp32 > 0.6
    assert v.auroc_difference_interval is not None and v.auroc_difference_interval[0] >= -0.01
    # and what the heads use is recorded beside it: how both rank the images by distance to the others
    assert set(v.score_rank_correlation) == set(v.score_rank_interval) == {"knn", "patchcore"}
    assert all(low <= v.score_rank_correlation[head] <= high for head, (low, high) in v.score_rank_interval.items())
    assert "patchcore score rank correlation" in summary.table()
    assert summary.bundle_bytes <= 0.3 * summary.fp32_bundle_bytes

    session = ort.InferenceSession(str(bundle.root / m.image_model.file))
    pixels = prepare(photos / "skimage_coffee.png", m.preprocessing).tensor
    embeds, fine, coarse, logits = session.run(["image_embeds", "features_s8", "features_s16", "logits"],
                                               {"pixel_values": pixels})
    assert embeds.shape == (1, 1280) and logits.shape == (1, 1000)
    assert fine.shape == (1, 40, 28, 28) and coarse.shape == (1, 112, 14, 14)  # strides 8 and 16
    encoder = ImageEncoder.load(bundle, RuntimeOptions(threads=1))
    encoded = encoder.encode(pixels)
    assert encoded.patch_grid == (28, 28) and encoded.patches is not None and encoded.patches.shape == (784, 152)


def test_efficientnet_lite0_falls_back_to_weight_only_when_int8_ranks_differently(tmp_path: Path) -> None:
    photos = write_real_images(tmp_path / "photos", elpv_count=40)
    # A gate plain INT8 misses (its k-NN rank correlation is ~0.97, its interval lower): weight-only INT8 follows.
    summary = run(ExportRequest(model="efficientnet-lite0", out=tmp_path / "bundle", calibration=photos,
                                gate=Gate(min_rank_correlation=0.99), progress=False))
    bundle = load_bundle(summary.bundle)
    m = bundle.manifest
    assert m.quantization.weight_only and m.quantization.activation_bits is None
    assert not m.quantization.reduced_range_weights  # its own full int8/int16 weights, run as float
    assert "weight-only" in summary.table() and "weight-only" in describe(bundle)
    assert m.validation is not None
    assert m.validation.thresholds == {"score_rank_correlation": 0.99, "score_rank_correlation_low": 0.94}
    assert min(m.validation.score_rank_correlation.values()) >= 0.99
    assert min(low for low, _ in m.validation.score_rank_interval.values()) >= 0.94
    assert summary.bundle_bytes <= 0.35 * summary.fp32_bundle_bytes

    # The board's encoder folds the weights to float at load and matches the FP32 network closely.
    encoder = ImageEncoder.load(bundle, RuntimeOptions(threads=1))
    options = encoder._session.get_session_options()  # type: ignore[attr-defined]
    assert options.get_session_config_entry("session.disable_quant_qdq") == "1"
    tower = towers.load(resolve("efficientnet-lite0")).image.eval()
    for name in ("skimage_coffee.png", "skimage_astronaut.png", "skimage_chelsea.png"):
        pixels = prepare(photos / name, m.preprocessing).tensor
        with torch.no_grad():
            reference = tower(torch.from_numpy(pixels))[0].numpy()[0]  # (1280,) FP32 embedding
        cosine = float(encoder.encode(pixels).embedding @ (reference / np.linalg.norm(reference)))
        assert cosine >= 0.995, f"{name}: cosine {cosine:.4f} to the FP32 embedding"
