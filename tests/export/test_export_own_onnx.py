"""``edgewatch export --onnx MODEL --features TENSOR``: a backbone built here, cut, quantized, enrolled and scored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge.bundle.load import load_bundle
from edge.cli.main import main
from edge.errors import UsageError
from edge.vision.encoder import RuntimeOptions
from edge.vision.pipeline import VisionScorer
from edge.vision.profile import load_profile
from export.pipeline import ExportRequest, run
from tests.bundle_factory import panel_frame

pytest.importorskip("onnx")

INPUT_PX = 32
PATCH_PX = 8
WIDTH = 8
STEM, TOKENS, BLOCK = "stem/map", "block.0/out", "block.1/out"


def _tiny_backbone(path: Path, input_px: int | None = INPUT_PX) -> Path:
    """A ViT-shaped ONNX model: patch-embedding Conv -> class token + 16 patch tokens -> one residual MLP block.

    ``stem/map`` is a CNN map (B, 8, 4, 4); ``block.0/out`` and ``block.1/out`` are tokens (B, 17, 8),
    the class token (mean of the patches) first; the model's own output is a pooled (B, 8) vector.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    side = input_px if input_px is not None else "height"
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.2, (WIDTH, 3, PATCH_PX, PATCH_PX)).astype(np.float32), "patch_embed.w"),
        numpy_helper.from_array(np.asarray([0, WIDTH, -1], np.int64), "flat_shape"),
        numpy_helper.from_array(rng.normal(0, 0.3, (WIDTH, WIDTH)).astype(np.float32), "mlp.w"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "patch_embed.w"], [STEM], strides=[PATCH_PX, PATCH_PX]),
        helper.make_node("Reshape", [STEM, "flat_shape"], ["stem/flat"]),
        helper.make_node("Transpose", ["stem/flat"], ["stem/tokens"], perm=[0, 2, 1]),
        helper.make_node("ReduceMean", ["stem/tokens"], ["cls"], axes=[1], keepdims=1),
        helper.make_node("Concat", ["cls", "stem/tokens"], [TOKENS], axis=1),
        helper.make_node("MatMul", [TOKENS, "mlp.w"], ["mlp"]),
        helper.make_node("Relu", ["mlp"], ["mlp/act"]),
        helper.make_node("Add", [TOKENS, "mlp/act"], [BLOCK]),
        helper.make_node("ReduceMean", [BLOCK], ["pooled"], axes=[1], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "tiny-vit",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, side, side])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", WIDTH])], weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny backbone exported through the CLI at its token block, and a profile enrolled on panel frames."""
    root = tmp_path_factory.mktemp("own-onnx")
    rng = np.random.default_rng(1)
    for folder, count in (("normal", 30), ("calibration", 24)):
        (root / folder).mkdir()
        for index in range(count):
            panel_frame(rng).save(root / folder / f"{index:03}.png")
    panel_frame(rng).save(root / "ok.png")
    panel_frame(rng, rust=True).save(root / "rusty.png")  # an orange top-left quarter
    model = _tiny_backbone(root / "tiny.onnx")
    assert main(["export", "--onnx", str(model), "--features", BLOCK, "--calibration", str(root / "calibration"),
                 "--out", str(root / "bundle")]) == 0
    assert main(["enroll", "--bundle", str(root / "bundle"), "--normal", str(root / "normal"),
                 "--out", str(root / "profile.npz")]) == 0
    return root


def test_the_bundle_holds_the_token_grid_and_the_class_token(scene: Path) -> None:
    bundle = load_bundle(scene / "bundle")
    m = bundle.manifest
    assert m.source.architecture == "onnx" and m.kind == "image-only" and m.embedding_dim == WIDTH
    assert m.image_model.feature_outputs == ["features_0"] and m.image_model.patch_output is None
    assert m.preprocessing.input_size == (INPUT_PX, INPUT_PX)
    assert m.preprocessing.mean == pytest.approx((0.485, 0.456, 0.406))
    assert m.quantization.mode == "static" and m.validation is not None and m.validation.passed
    # tokens are scored as they are, by their worst 1 %; enrollment calibrates with the same share
    assert (m.image_model.patch_neighbourhood_px, m.image_model.patch_top_share) == (1, 0.01)
    assert load_profile(scene / "profile.npz", bundle).patch_top_share == 0.01
    pixels = np.random.default_rng(2).normal(size=(2, 3, INPUT_PX, INPUT_PX)).astype(np.float32)
    # the FP32 original, run to the token block: what the bundle's outputs must be laid out from
    tokens = _run_original(scene / "tiny.onnx", pixels, BLOCK)  # (2, 17, 8)
    session = ort.InferenceSession(str(bundle.root / m.image_model.file))
    embeds, grid = session.run(["image_embeds", "features_0"], {"pixel_values": pixels})
    assert grid.shape == (2, WIDTH, 4, 4) and embeds.shape == (2, WIDTH)
    # patch token k sits at row k // 4, column k % 4; INT8 stays close to FP32
    expected_grid = tokens[:, 1:, :].transpose(0, 2, 1).reshape(2, WIDTH, 4, 4)
    assert np.abs(grid - expected_grid).max() < 0.05 * np.abs(expected_grid).max()
    assert np.abs(embeds - tokens[:, 0, :]).max() < 0.05 * np.abs(tokens[:, 0, :]).max()


def _run_original(model: Path, pixels: np.ndarray, tensor: str) -> np.ndarray:
    import onnx

    full = onnx.load(str(model))
    full.graph.output.extend([onnx.ValueInfoProto(name=tensor)])
    session = ort.InferenceSession(full.SerializeToString())
    return np.asarray(session.run([tensor], {"image": pixels})[0])


def test_check_flags_the_defect_and_maps_it_on_the_token_grid(scene: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    results = {}
    for image in ("ok.png", "rusty.png"):
        assert main(["check", "--bundle", str(scene / "bundle"), "--profile", str(scene / "profile.npz"),
                     "--image", str(scene / image), "--json"]) == 0
        results[image] = json.loads(capsys.readouterr().out)["vision"]
    assert results["ok.png"]["anomaly_map_grid"] == [4, 4] == results["rusty.png"]["anomaly_map_grid"]
    assert results["rusty.png"]["anomaly_score"] > results["ok.png"]["anomaly_score"]
    assert results["rusty.png"]["p_value"] < 0.05 < results["ok.png"]["p_value"]
    bundle = load_bundle(scene / "bundle")
    scorer = VisionScorer.load(bundle, load_profile(scene / "profile.npz", bundle), RuntimeOptions(threads=1))
    anomaly_map = scorer.score(scene / "rusty.png").anomaly_map
    assert anomaly_map is not None
    row, col = np.unravel_index(int(np.argmax(anomaly_map)), anomaly_map.shape)
    assert row < 2 and col < 2, anomaly_map  # the rust covers the top-left quarter of the frame


def test_a_cnn_map_and_tokens_together(tmp_path: Path) -> None:
    model = _tiny_backbone(tmp_path / "tiny.onnx")
    summary = run(ExportRequest(model=None, onnx=model, features=(STEM, BLOCK), out=tmp_path / "b",
                                quantize="none", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), progress=False))
    m = summary.manifest
    assert m.image_model.feature_outputs == ["features_0", "features_1"]
    assert m.preprocessing.std == pytest.approx((0.25, 0.25, 0.25))
    session = ort.InferenceSession(str(summary.bundle / m.image_model.file))
    stem, block = session.run(["features_0", "features_1"], {"pixel_values": np.zeros((1, 3, 32, 32), np.float32)})
    assert stem.shape == block.shape == (1, WIDTH, 4, 4)


def test_a_cnn_map_alone_keeps_the_local_average_and_the_worst_patch(tmp_path: Path) -> None:
    model = _tiny_backbone(tmp_path / "tiny.onnx")
    summary = run(ExportRequest(model=None, onnx=model, features=(STEM,), out=tmp_path / "b", quantize="none",
                                progress=False))
    image_model = summary.manifest.image_model
    assert (image_model.patch_neighbourhood_px, image_model.patch_top_share) == (3, 0.0)


def test_a_dynamic_input_needs_an_input_size(tmp_path: Path) -> None:
    model = _tiny_backbone(tmp_path / "dynamic.onnx", input_px=None)
    with pytest.raises(UsageError, match=r"input 'image' has dynamic height/width; give --input-size PX"):
        run(ExportRequest(model=None, onnx=model, features=(BLOCK,), out=tmp_path / "b", quantize="none",
                          progress=False))
    summary = run(ExportRequest(model=None, onnx=model, features=(BLOCK,), out=tmp_path / "b", quantize="none",
                                input_size_px=48, progress=False))
    assert summary.manifest.preprocessing.input_size == (48, 48)  # 36 patches: a 6x6 token grid
    session = ort.InferenceSession(str(summary.bundle / "image.onnx"))
    assert session.run(["features_0"], {"pixel_values": np.zeros((1, 3, 48, 48), np.float32)})[0].shape == (1, 8, 6, 6)


@pytest.mark.parametrize(("features", "error"), [
    ("block.1/outt", r"has no tensor 'block.1/outt'; did you mean 'block.1/out'"),
    ("nothing_like_it", r"has no tensor 'nothing_like_it'$"),
    ("pooled", r"tensor 'pooled' of .* has rank 2 \(1, 8\); give ViT tokens"),
    ("stem/flat", r"tensor 'stem/flat' of .* has 8 tokens, which are not a class token"),
    (f"{BLOCK},,{STEM}", r"give distinct tensor names separated by commas"),
])
def test_bad_tensor_names_are_usage_errors_that_say_why(features: str, error: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    model = _tiny_backbone(tmp_path / "tiny.onnx")
    code = main(["export", "--onnx", str(model), "--features", features, "--quantize", "none",
                 "--out", str(tmp_path / "b")])
    assert code == 2
    assert _matches(error, capsys.readouterr().err)
    assert not (tmp_path / "b").exists()


def _matches(pattern: str, stderr: str) -> bool:
    import re

    return any(re.search(pattern, line.strip()) for line in stderr.splitlines())


def test_onnx_and_model_sources_are_exclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _tiny_backbone(tmp_path / "tiny.onnx")
    assert main(["export", "--onnx", str(model), "--out", str(tmp_path / "b")]) == 2
    assert "--onnx needs --features" in capsys.readouterr().err
    assert main(["export", "--model", "efficientnet-lite0", "--features", BLOCK, "--out", str(tmp_path / "b")]) == 2
    assert "--features goes with --onnx" in capsys.readouterr().err
    assert main(["export", "--onnx", str(tmp_path / "missing.onnx"), "--features", BLOCK,
                 "--out", str(tmp_path / "b")]) == 1
    assert "missing.onnx: no such file" in capsys.readouterr().err
    assert main(["export", "--onnx", str(model), "--features", BLOCK, "--mean", "0.5,0.5",
                 "--out", str(tmp_path / "b")]) == 2
    assert "'0.5,0.5' is not three numbers R,G,B" in capsys.readouterr().err
