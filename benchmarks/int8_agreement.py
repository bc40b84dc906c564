"""EfficientNet-Lite0 FP32 vs INT8 top-1 agreement on a fixed real image set, per quantization recipe.

Real ImageNet weights. Evaluated on the 21 scikit-image sample images (photos, textures,
microscopy) and 360 ELPV solar cells (every 7th); calibrated on the same photos plus 60 other
cells (every 7th from the 4th). Per recipe: top-1 agreement, mean KL(FP32 || INT8) of the
ImageNet probabilities (a finer signal than flips of near-tied classes), ONNX size vs FP32, and
latency vs FP32 (batch 1, FP32 and INT8 run back to back, median of per-pair ratios). Weight-only
recipes are timed twice: as the board runs them (``session.disable_quant_qdq=1``, weights folded to
float at load) and without that option ("unfolded": every run dequantizes every weight).

    /work/venv/bin/python benchmarks/int8_agreement.py [--recipes default,int8,...] [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.int8 import kl, real_sets, timed_pairs
from edge.vision.encoder import softmax
from export import onnx, quantize, sources, towers, validate

INT8, WEIGHT_ONLY = quantize.recipes("convnet")
A16_W16 = replace(INT8, activation_bits=16, wide_weight_params=1_300_000)
RECIPES = {
    "int8": INT8,  # tried first: uint8 activations, int8 weights
    "weight-only": WEIGHT_ONLY,  # the fallback: float activations, int16 weights for the smallest layers (1.3M)
    "weight-only-int8": replace(WEIGHT_ONLY, wide_weight_params=0),
    "a16-w16-1.3M": A16_W16,  # the former fallback: 16-bit activations, int16 weights for the smallest layers
    "int8-no-relu6": replace(INT8, op_types=tuple(o for o in INT8.op_types if o not in ("Clip", "Relu"))),
    "a16": replace(INT8, activation_bits=16),
    "a8-w16-1.3M": replace(INT8, wide_weight_params=1_300_000),
    "a16-w16-0.6M": replace(A16_W16, wide_weight_params=600_000),
}


def _options(threads: int, fold_weights: bool) -> object:
    """Session options; ``fold_weights`` is what edge/vision/encoder.py sets for a weight-only bundle."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if fold_weights:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    return options


def main() -> int:
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated: {', '.join(RECIPES)}")
    parser.add_argument("--method", default="minmax", choices=["minmax", "entropy", "percentile"])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="onnxruntime intra-op threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        loaded = towers.load(sources.resolve("efficientnet-lite0"))
        photos, elpv, calibration = real_sets(tmp / "photos", loaded.preprocessing)
        fp32 = tmp / "fp32.onnx"
        onnx.export_module(loaded.image, {towers.IMAGE_INPUT: photos[0]}, loaded.image_outputs, fp32, "image tower")
        reference = [validate.run_onnx(fp32, towers.IMAGE_INPUT, [towers.LOGITS_OUTPUT], s)[0] for s in (photos, elpv)]
        feed = {towers.IMAGE_INPUT: photos[0]}
        print(f"{len(photos)} scikit-image photos, {len(elpv)} ELPV cells evaluated; {len(calibration)} calibration "
              f"images; {args.method}; {args.threads} of {os.cpu_count()} CPUs", flush=True)
        print(f"{'recipe':<26} {'photos':>7} {'ELPV':>7} {'KL phot':>8} {'KL ELPV':>8} {'size':>6} "
              f"{'FP32 ms':>8} {'INT8 ms':>8} {'speedup':>8}")
        for name in args.recipes.split(","):
            int8 = tmp / f"{name}.onnx"
            quantize.quantize_static(fp32, int8, towers.IMAGE_INPUT, calibration, args.method, "convnet",
                                     how=RECIPES[name])
            agree, divergence = [], []
            for images, ref in zip((photos, elpv), reference, strict=True):
                got = validate.run_onnx(int8, towers.IMAGE_INPUT, [towers.LOGITS_OUTPUT], images)[0]
                agree.append(float(np.mean(got.argmax(1) == ref.argmax(1))))
                divergence.append(kl(softmax(ref), softmax(got)))
            size = int8.stat().st_size / fp32.stat().st_size
            for fold in (True, False) if RECIPES[name].weight_only else (False,):
                fp32_ms, int8_ms, speedup = timed_pairs(
                    ort.InferenceSession(str(fp32), _options(args.threads, False), providers=["CPUExecutionProvider"]),
                    ort.InferenceSession(str(int8), _options(args.threads, fold), providers=["CPUExecutionProvider"]),
                    feed, args.runs,
                )
                label = name if fold or not RECIPES[name].weight_only else f"{name} unfolded"
                print(f"{label:<26} {agree[0]:7.1%} {agree[1]:7.1%} {divergence[0]:8.4f} {divergence[1]:8.4f} "
                      f"{size:6.1%} {fp32_ms:8.1f} {int8_ms:8.1f} {speedup:7.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
