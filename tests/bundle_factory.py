"""Build small but real bundles for tests: a tiny ONNX image encoder written with onnx.helper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from export.bundle import staged_bundle

PREPROCESSING: dict[str, Any] = {
    "input_size": [8, 8],
    "resize_mode": "shortest_edge",
    "resize_px": 8,
    "crop": "center",
    "interpolation": "bicubic",
    "rescale_factor": 1 / 255,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
}


def write_tiny_onnx(path: Path, dim: int = 4, seed: int = 0) -> None:
    """(B, 3, 8, 8) -> global average pool -> linear -> (B, dim) embedding."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(seed).normal(size=(3, dim)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["pixel_values"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weight"], ["image_embeds"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", dim])],
        [numpy_helper.from_array(weight, "weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))


def write_patch_onnx(path: Path, dim: int = 4, channels: int = 6, seed: int = 0) -> None:
    """(B, 3, 8, 8) -> 4x4 patch conv -> (B, 4, channels) patch tokens; their mean -> linear -> (B, dim)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=(channels, 3, 4, 4)).astype(np.float32) / 4
    weight = rng.normal(size=(channels, dim)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["pixel_values", "kernel"], ["grid"], kernel_shape=[4, 4], strides=[4, 4]),
            helper.make_node("Reshape", ["grid", "grid_shape"], ["channels_first"]),  # (B, C, 4)
            helper.make_node("Transpose", ["channels_first"], ["patch_tokens"], perm=[0, 2, 1]),  # (B, 4, C)
            helper.make_node("ReduceMean", ["patch_tokens", "token_axis"], ["pooled"], keepdims=0),
            helper.make_node("MatMul", ["pooled", "weight"], ["image_embeds"]),
        ],
        "tiny_patches",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", dim]),
         helper.make_tensor_value_info("patch_tokens", TensorProto.FLOAT, ["batch", 4, channels])],
        [numpy_helper.from_array(kernel, "kernel"), numpy_helper.from_array(weight, "weight"),
         numpy_helper.from_array(np.array([0, channels, 4], dtype=np.int64), "grid_shape"),
         numpy_helper.from_array(np.array([1], dtype=np.int64), "token_axis")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path))


def make_bundle(out: Path, labels: list[tuple[str, str]] | None = None, dim: int = 4, patches: bool = False,
                activation: str = "softmax") -> Path:
    """Write a verified bundle (optionally with labels and patch tokens) to ``out`` and return it."""
    with staged_bundle(out) as staged:
        image_model = {"file": "image.onnx", "input_name": "pixel_values", "embedding_output": "image_embeds"}
        if patches:
            write_patch_onnx(staged.path("image.onnx"), dim)
            image_model["patch_output"] = "patch_tokens"
        else:
            write_tiny_onnx(staged.path("image.onnx"), dim)
        fields: dict[str, Any] = {
            "kind": "image-only",
            "exporter": {"edgewatch": "test"},
            "source": {"id": "tiny", "architecture": "tiny"},
            "preprocessing": PREPROCESSING,
            "embedding_dim": dim,
            "image_model": image_model,
            "quantization": {"mode": "none"},
        }
        if labels:
            embeddings = np.random.default_rng(1).normal(size=(len(labels), dim)).astype(np.float32)
            embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
            np.save(staged.path("labels.npy"), embeddings)
            fields["kind"] = "image-text"
            fields["labels"] = {
                "entries": [{"name": n, "severity": s, "prompts": [f"a photo of {n}"]} for n, s in labels],
                "embeddings_file": "labels.npy",
                "activation": activation,
                "logit_scale": 100.0 if activation == "softmax" else 10.0,
                "logit_bias": 0.0 if activation == "softmax" else -5.0,
            }
        staged.commit(fields)
    return out


PANEL_RGB = np.array([90, 120, 160])  # a steel-blue machine panel


def panel_frame(rng: np.random.Generator, rust: bool = False) -> Any:
    """A (64, 64) RGB PIL image of the panel with sensor-like noise; ``rust`` paints an orange patch."""
    from PIL import Image

    pixels = np.clip(PANEL_RGB + rng.normal(0, 6, size=(64, 64, 3)), 0, 255).astype(np.uint8)
    if rust:
        pixels[:32, :32] = (200, 80, 20)
    return Image.fromarray(pixels)


def stained_frame(seed: int) -> Any:
    """The panel with a dark stain in one corner: something no enrolled example explains."""
    from PIL import Image

    pixels = np.array(panel_frame(np.random.default_rng(seed)))
    pixels[32:, 32:] = (20, 20, 30)
    return Image.fromarray(pixels)
