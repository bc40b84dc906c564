"""A small but real INT8 image model for the arm64-vs-x86 comparison, and the script both sides run.

Three strided convolutions and a projection, quantized statically by the project's own recipe
(QDQ, int8 per-channel weights, uint8 activations): the int8 convolution and matmul kernels are
the ones that differ between x86 and ARM, which a float-only toy model would not exercise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from export.bundle import staged_bundle
from tests.bundle_factory import PREPROCESSING

SIZE = 64
DIM = 32
EMBED_SCRIPT = '''\
"""Embed every image in a folder with a bundle, the way the service does; save (N, D) float32."""
import sys
from pathlib import Path

import numpy as np

from edge.bundle.load import load_bundle
from edge.vision.encoder import ImageEncoder, RuntimeOptions
from edge.vision.preprocess import prepare

bundle = load_bundle(Path(sys.argv[1]), verify=True)
encoder = ImageEncoder.load(bundle, RuntimeOptions(threads=1))
frames = sorted(Path(sys.argv[2]).iterdir())
np.save(sys.argv[3], np.stack([encoder.encode(prepare(f, bundle.manifest.preprocessing).tensor).embedding
                               for f in frames]))
'''


def _conv(name: str, source: str) -> list[Any]:
    from onnx import helper

    return [helper.make_node("Conv", [source, f"{name}_w", f"{name}_b"], [f"{name}_c"], kernel_shape=[3, 3],
                             strides=[2, 2], pads=[1, 1, 1, 1], name=f"{name}_conv"),
            helper.make_node("Relu", [f"{name}_c"], [name], name=f"{name}_relu")]


def write_conv_onnx(path: Path, seed: int = 0) -> None:
    """(B, 3, 64, 64) -> 3 x (3x3 stride-2 conv + ReLU) -> global pool -> linear -> (B, 32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    shapes = [(16, 3), (32, 16), (64, 32)]
    nodes, weights, source = [], [], "pixel_values"
    for index, (out_ch, in_ch) in enumerate(shapes):
        name = f"conv{index}"
        kernel = rng.normal(scale=np.sqrt(2 / (in_ch * 9)), size=(out_ch, in_ch, 3, 3)).astype(np.float32)
        weights += [numpy_helper.from_array(kernel, f"{name}_w"),
                    numpy_helper.from_array(rng.normal(scale=0.1, size=out_ch).astype(np.float32), f"{name}_b")]
        nodes += _conv(name, source)
        source = name
    projection = rng.normal(scale=1 / 8, size=(64, DIM)).astype(np.float32)
    weights.append(numpy_helper.from_array(projection, "projection"))
    nodes += [helper.make_node("GlobalAveragePool", [source], ["pooled"], name="pool"),
              helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
              helper.make_node("MatMul", ["flat", "projection"], ["image_embeds"], name="projection")]
    graph = helper.make_graph(
        nodes, "conv_int8",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", DIM])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def make_int8_bundle(out: Path, frames: list[Path], work: Path) -> Path:
    """Quantize the conv model statically on ``frames`` and write it as a verified bundle."""
    from edge.bundle.manifest import Preprocessing
    from edge.vision.preprocess import prepare
    from export.quantize import REDUCED_RANGE_WEIGHTS, quantize_static

    preprocessing = {**PREPROCESSING, "input_size": [SIZE, SIZE], "resize_px": SIZE}
    fp32 = work / "conv_fp32.onnx"
    write_conv_onnx(fp32)
    pre = Preprocessing.model_validate(preprocessing)
    calibration = [prepare(frame, pre).tensor for frame in frames]
    with staged_bundle(out) as staged:
        quantize_static(fp32, staged.path("image.onnx"), "pixel_values", calibration, "minmax", "convnet")
        staged.commit({
            "kind": "image-only", "exporter": {"edgewatch": "test"},
            "source": {"id": "conv-int8", "architecture": "conv"}, "preprocessing": preprocessing,
            "embedding_dim": DIM,
            "image_model": {"file": "image.onnx", "input_name": "pixel_values", "embedding_output": "image_embeds"},
            "quantization": {"mode": "static", "per_channel": True, "calibration_method": "minmax",
                             "calibration_images": len(frames), "activation_bits": 8,
                             "reduced_range_weights": REDUCED_RANGE_WEIGHTS},
        })
    return out
