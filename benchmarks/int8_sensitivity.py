"""Which layers of EfficientNet-Lite0 hurt most in INT8: give one layer int16 weights at a time, measure the gain.

Real ImageNet weights, the fixed image set of ``benchmarks/int8_agreement.py``, starting from plain
INT8 (uint8 activations, int8 weights). For each Conv/Gemm after the stem the model is
re-quantized with that layer's weights in int16, and the drop in mean KL(FP32 || INT8) of the
ImageNet probabilities and in top-1 flips (photos + ELPV cells) is printed, most helpful first.
Then the top-k layers are widened together, to see whether a few layers carry the error. KL, not
embedding cosine, ranks the layers: top-1 flips of near-tied classes are what the gate counts, and
KL sees the logit shifts behind them even where no class flips on this set.

    /work/venv/bin/python benchmarks/int8_sensitivity.py [--top 12] [--cumulative 5,10,20]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.int8 import kl, real_sets
from edge.vision.encoder import softmax
from export import onnx, quantize, sources, towers, validate

INT8 = quantize.recipes("convnet")[0]  # plain INT8: uint8 activations, int8 weights


def main() -> int:
    import onnx as onnx_lib

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=12, help="how many of the most sensitive layers to print")
    parser.add_argument("--cumulative", default="5,10,20", help="comma-separated k: widen the top k layers together")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        loaded = towers.load(sources.resolve("efficientnet-lite0"))
        photos, elpv, calibration = real_sets(tmp / "photos", loaded.preprocessing)
        every = photos + elpv
        fp32 = tmp / "fp32.onnx"
        onnx.export_module(loaded.image, {towers.IMAGE_INPUT: photos[0]}, loaded.image_outputs, fp32, "image tower")
        reference = validate.run_onnx(fp32, towers.IMAGE_INPUT, [towers.LOGITS_OUTPUT], every)[0]
        graph = onnx_lib.load(str(fp32)).graph
        weight_of = {n.name: n.input[1] for n in graph.node
                     if n.op_type in ("Conv", "Gemm") and towers.IMAGE_INPUT not in n.input}

        def measure(wide: list[str]) -> tuple[float, int, float, float]:
            """(KL, flips, photo agreement, ELPV agreement) with the weights of ``wide`` layers in int16."""
            original = quantize._smallest_weights
            quantize._smallest_weights = lambda *_: [weight_of[name] for name in wide]  # type: ignore[assignment]
            try:
                quantize.quantize_static(fp32, tmp / "q.onnx", towers.IMAGE_INPUT, calibration, "minmax", "convnet",
                                         how=replace(INT8, wide_weight_params=1 if wide else 0))
            finally:
                quantize._smallest_weights = original  # type: ignore[assignment]
            got = validate.run_onnx(tmp / "q.onnx", towers.IMAGE_INPUT, [towers.LOGITS_OUTPUT], every)[0]
            agree = got.argmax(1) == reference.argmax(1)
            divergence = kl(softmax(reference), softmax(got))
            on_photos, on_elpv = float(agree[: len(photos)].mean()), float(agree[len(photos):].mean())
            return divergence, int((~agree).sum()), on_photos, on_elpv

        base_kl, base_flips, *_ = measure([])
        print(f"plain INT8: KL {base_kl:.4f}, {base_flips} flips on {len(photos)} photos + {len(elpv)} ELPV cells",
              flush=True)
        gains = sorted(((base_kl - measure([name])[0], name) for name in weight_of), reverse=True)
        print(f"{'layer with int16 weights':<40} {'KL drop':>8}")
        for gain, name in gains[: args.top]:
            print(f"{name:<40} {gain:+8.4f}", flush=True)
        ranked = [name for _, name in gains]
        for k in (int(k) for k in args.cumulative.split(",")):
            divergence, flips, on_photos, on_elpv = measure(ranked[:k])
            chosen = {weight_of[name] for name in ranked[:k]}
            weights = sum(int(np.prod(i.dims)) for i in graph.initializer if i.name in chosen)
            print(f"top {k:>2} layers in int16 ({weights / 1e6:.2f}M weights): KL {divergence:.4f}, {flips} flips, "
                  f"photos {on_photos:.1%}, ELPV {on_elpv:.1%}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
