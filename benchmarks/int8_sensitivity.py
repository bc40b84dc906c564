"""Which layers of EfficientNet-Lite0 hurt most in INT8: keep one layer float at a time, measure the gain.

Real ImageNet weights, static QDQ INT8 with the exporter's own recipe, calibrated on scikit-image
photos and ELPV solar cells; for each Conv/Gemm the model is re-quantized with that node kept float
and the mean FP32/INT8 embedding cosine is compared with quantizing everything. This is the
measurement behind ``export.quantize._input_layers`` (the stem conv stays float).

    /work/venv/bin/python benchmarks/int8_sensitivity.py [--top 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from export import images, onnx, quantize, sources, towers, validate
from tests.export_data import write_real_images


def main() -> int:
    import onnx as onnx_lib

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10, help="how many of the most sensitive layers to print")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        loaded = towers.load(sources.resolve("efficientnet-lite0"))
        image_set = images.load_folder(write_real_images(tmp / "photos", 24), loaded.preprocessing)
        every = image_set.calibration + image_set.held_back
        fp32 = tmp / "fp32.onnx"
        onnx.export_module(loaded.image, {towers.IMAGE_INPUT: every[0]}, loaded.image_outputs, fp32, "image tower")
        layers = [n.name for n in onnx_lib.load(str(fp32)).graph.node if n.op_type in ("Conv", "Gemm")]
        everything = replace(quantize.recipe("convnet"), input_layer_float=False)

        def cosine(keep_float: list[str]) -> float:
            original = quantize._input_layers
            quantize._input_layers = lambda path, name: keep_float  # type: ignore[assignment]
            try:
                how = replace(everything, input_layer_float=True)
                quantize.quantize_static(fp32, tmp / "q.onnx", towers.IMAGE_INPUT, image_set.calibration, "minmax",
                                         "convnet", how=how)
            finally:
                quantize._input_layers = original  # type: ignore[assignment]
            check = validate.compare(fp32, tmp / "q.onnx", towers.IMAGE_INPUT, towers.EMBEDDING_OUTPUT, every,
                                     validate.Gate(), logits_output=towers.LOGITS_OUTPUT)
            return check.cosine_mean

        base = cosine([])
        print(f"all {len(layers)} Conv/Gemm layers INT8: cosine mean {base:.4f} on {len(every)} images", flush=True)
        gains = sorted(((cosine([name]) - base, name) for name in layers), reverse=True)
        print(f"{'layer kept float':<40} {'cosine gain':>11}")
        for gain, name in gains[: args.top]:
            print(f"{name:<40} {gain:+11.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
