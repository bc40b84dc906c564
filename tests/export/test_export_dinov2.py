"""A DINOv2 checkpoint (random weights, built here) exported with its block-9 patch tokens, enrolled and scored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge.bundle.load import load_bundle
from edge.cli.main import main
from edge.vision.preprocess import prepare
from tests.bundle_factory import panel_frame

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bench.checkpoints import build_tiny_dinov2

    root = tmp_path_factory.mktemp("dinov2")
    build_tiny_dinov2(root / "checkpoint")
    rng = np.random.default_rng(3)
    (root / "normal").mkdir()
    for index in range(30):
        panel_frame(rng).save(root / "normal" / f"{index:03}.png")
    panel_frame(rng).save(root / "ok.png")
    panel_frame(rng, rust=True).save(root / "rusty.png")
    # FP32: the INT8 path of token grids is tested with a backbone of our own (test_export_own_onnx.py)
    assert main(["export", "--model", str(root / "checkpoint"), "--quantize", "none",
                 "--out", str(root / "bundle")]) == 0
    assert main(["enroll", "--bundle", str(root / "bundle"), "--normal", str(root / "normal"),
                 "--out", str(root / "profile.npz")]) == 0
    return root


def test_the_bundle_holds_block_9_tokens_as_transformers_computes_them(scene: Path) -> None:
    import torch
    from transformers import Dinov2Model

    bundle = load_bundle(scene / "bundle")
    m = bundle.manifest
    assert m.source.architecture == "dinov2" and m.kind == "image-only" and m.labels is None
    assert m.image_model.feature_outputs == ["features_l9"]  # three quarters of 12 blocks deep
    assert m.preprocessing.input_size == (32, 32) and m.preprocessing.interpolation == "bicubic"
    pixels = prepare(scene / "ok.png", m.preprocessing).tensor  # (1, 3, 32, 32)
    model = Dinov2Model.from_pretrained(scene / "checkpoint", attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(pixel_values=torch.from_numpy(pixels), output_hidden_states=True)
    tokens = out.hidden_states[10][0, 1:, :].numpy()  # (16, 16): block 9's output, class token dropped
    session = ort.InferenceSession(str(bundle.root / m.image_model.file))
    embeds, grid = session.run(["image_embeds", "features_l9"], {"pixel_values": pixels})
    assert grid.shape == (1, 16, 4, 4) and embeds.shape == (1, 16)
    np.testing.assert_allclose(grid[0], tokens.T.reshape(16, 4, 4), atol=1e-4)  # token k at row k // 4, col k % 4
    np.testing.assert_allclose(embeds[0], out.pooler_output[0].numpy(), atol=1e-4)


def test_check_scores_on_the_token_grid(scene: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = {}
    for image in ("ok.png", "rusty.png"):
        assert main(["check", "--bundle", str(scene / "bundle"), "--profile", str(scene / "profile.npz"),
                     "--image", str(scene / image), "--json"]) == 0
        results[image] = json.loads(capsys.readouterr().out)["vision"]
    assert results["ok.png"]["anomaly_map_grid"] == [4, 4]
    assert results["rusty.png"]["anomaly_score"] > results["ok.png"]["anomaly_score"]


def test_labels_are_refused_for_an_image_only_checkpoint(scene: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--model", str(scene / "checkpoint"), "--with-text-model",
                 "--out", str(tmp_path / "b")]) == 2
    assert "is image-only: --labels and --with-text-model need a CLIP or SigLIP model" in capsys.readouterr().err
