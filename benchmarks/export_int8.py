"""Static INT8 vs FP32 ONNX for a full-size ViT-B/32 CLIP image tower (random weights): speed and agreement.

Builds the real openai/clip-vit-base-patch32 architecture with random weights (no download), exports
the image tower, quantizes it with each recipe below, and times FP32 and INT8 in the same run,
interleaved, on this machine's CPU. Ratios, not absolute times, are the result.

    /work/venv/bin/python benchmarks/export_int8.py [--recipes default,...] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.checkpoints import build_clip
from bench.image_sets import write_real_images
from bench.int8 import timed_pairs
from export import images, onnx, quantize, sources, towers, validate

DEFAULT = quantize.recipes("transformer")[0]
RECIPES = {
    "default": DEFAULT,
    "int8-activations": replace(DEFAULT, unsigned_activations=False),
    "attention-matmuls": replace(DEFAULT, weight_matmuls_only=False),
    "layernorm": replace(DEFAULT, op_types=(*DEFAULT.op_types, "LayerNormalization")),
    "patch-embedding": replace(DEFAULT, input_layer_float=False),
}


def main() -> int:
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="default", help=f"comma-separated: {', '.join(RECIPES)}")
    parser.add_argument("--method", default="minmax", choices=["minmax", "entropy", "percentile"])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--images", type=int, default=24, help="ELPV cells added to the scikit-image photos")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="onnxruntime intra-op threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        start = time.perf_counter()
        loaded = towers.load(sources.resolve(str(build_clip(tmp / "clip", full_size=True))))
        image_set = images.load_folder(write_real_images(tmp / "photos", args.images), loaded.preprocessing)
        fp32 = tmp / "fp32.onnx"
        sample = np.concatenate(image_set.held_back[:2])
        onnx.export_module(loaded.image, {towers.IMAGE_INPUT: sample}, loaded.image_outputs, fp32, "image tower")
        print(f"ViT-B/32 image tower exported in {time.perf_counter() - start:.0f}s; "
              f"{len(image_set.calibration)} calibration, {len(image_set.held_back)} held-back images; "
              f"{args.threads} of {os.cpu_count()} CPUs; speedup = median of paired FP32/INT8 runs", flush=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        feed = {towers.IMAGE_INPUT: image_set.held_back[0]}
        print(f"{'recipe':<20} {'FP32 MB':>8} {'INT8 MB':>8} {'FP32 ms':>8} {'INT8 ms':>8} {'speedup':>8} "
              f"{'cos mean':>9} {'cos min':>8} {'NN agree':>9}  kept float")
        for name in args.recipes.split(","):
            int8 = tmp / f"{name}.onnx"
            result = quantize.quantize_static(fp32, int8, towers.IMAGE_INPUT, image_set.calibration, args.method,
                                              "transformer", how=RECIPES[name])
            check = validate.compare(fp32, int8, towers.IMAGE_INPUT, towers.EMBEDDING_OUTPUT, image_set.every,
                                     validate.Gate())
            fp32_ms, int8_ms, speedup = timed_pairs(
                *(ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for p in (fp32, int8)),
                feed, args.runs,
            )
            print(f"{name:<20} {fp32.stat().st_size / 1e6:8.1f} {int8.stat().st_size / 1e6:8.1f} {fp32_ms:8.1f} "
                  f"{int8_ms:8.1f} {speedup:7.2f}x {check.cosine_mean:9.4f} {check.cosine_min:8.4f} "
                  f"{check.top1_agreement if check.top1_agreement is not None else float('nan'):9.2f}  "
                  f"{', '.join(result.ops_excluded)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
