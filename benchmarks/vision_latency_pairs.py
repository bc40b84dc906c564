"""Paired latency of the vision path: INT8 vs FP32 inference, and a 12 MP JPEG to a score vs INT8 inference.

The machine this runs on is shared, so each figure is a median of per-pair ratios, the two halves of
a pair run back to back in one process: a burst of load hits both. Two pairings:
  * INT8 vs FP32 ONNX inference on the same preprocessed frame (``bench.int8.timed_pairs``), each
    session opened with the service's runtime options;
  * a 12 MP camera JPEG to a score on the INT8 path (decode with JPEG draft scaling, preprocess,
    inference, heads) against that same call's inference time, with the per-stage medians.

    python benchmarks/vision_latency_pairs.py --int8 bundles/int8 --fp32 bundles/fp32 --profile asset.npz \
        [--pairs 100] [--repeats 3]

``--repeats`` runs everything that many times and reports the median of the runs' medians.
Frames are scored by ``VisionScorer``, the scorer inside the service's vision stage, not by a whole
check: only its timings split a frame into decode, preprocess, inference and heads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.command import write_frames
from bench.int8 import timed_pairs
from edge.bundle.load import load_bundle
from edge.vision.encoder import ImageEncoder, RuntimeOptions
from edge.vision.pipeline import VisionScorer
from edge.vision.preprocess import prepare
from edge.vision.profile import load_profile


def inference_pairs(int8_dir: Path, fp32_dir: Path, frame: Path, pairs: int) -> dict[str, float]:
    """Median FP32 and INT8 ms and the median per-pair FP32/INT8 ratio on one camera frame."""
    encoders = [ImageEncoder.load(load_bundle(d), RuntimeOptions()) for d in (fp32_dir, int8_dir)]
    model = encoders[1].bundle.manifest.image_model
    feed = {model.input_name: prepare(frame, encoders[1].bundle.manifest.preprocessing).tensor}
    # the onnxruntime sessions themselves: the model alone, not the patch aggregation both paths share
    fp32_ms, int8_ms, ratio = timed_pairs(encoders[0]._session, encoders[1]._session, feed, pairs)
    return {"fp32_ms": fp32_ms, "int8_ms": int8_ms, "fp32_over_int8": ratio}


def camera_pairs(int8_dir: Path, profile: Path, camera: Path, pairs: int) -> dict[str, Any]:
    """A 12 MP JPEG to a score, per call against its own INT8 inference time; medians per stage."""
    bundle = load_bundle(int8_dir)
    scorer = VisionScorer.load(bundle, load_profile(profile, bundle))
    scorer.score(camera)  # warm up the heads
    ratios, totals, stages = [], [], []
    for _ in range(pairs):
        start = time.perf_counter()
        result = scorer.score(camera)
        total_ms = (time.perf_counter() - start) * 1e3
        ratios.append(total_ms / result.timings_ms["inference"])
        totals.append(total_ms)
        stages.append(result.timings_ms)
    return {"end_to_end_ms": statistics.median(totals), "over_int8_inference": statistics.median(ratios),
            "stages_ms": {stage: statistics.median(t[stage] for t in stages) for stage in stages[0]}}


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over runs of every number (nested dicts alike)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = _median_of([run[key] for run in runs])
        else:
            out[key] = float(np.median([run[key] for run in runs]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--int8", type=Path, required=True, help="Bundle exported with INT8 (edgewatch export).")
    parser.add_argument("--fp32", type=Path, required=True, help="The same model exported with --quantize none.")
    parser.add_argument("--profile", type=Path, required=True, help="A profile enrolled with the INT8 bundle.")
    parser.add_argument("--pairs", type=int, default=100, help="Pairs per run.")
    parser.add_argument("--repeats", type=int, default=3, help="Runs; the median of their medians is reported.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        frames, camera = write_frames(Path(work) / "frames", count=1)
        runs = [{"inference": inference_pairs(args.int8, args.fp32, frames[0], args.pairs),
                 "camera_12mp": camera_pairs(args.int8, args.profile, camera, max(5, args.pairs // 5))}
                for _ in range(args.repeats)]
    json.dump({"repeats": args.repeats, "pairs": args.pairs, "median": _median_of(runs), "runs": runs},
              sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
