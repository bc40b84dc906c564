"""Real-weight vision quality: EfficientNet-Lite0 bundle on the ELPV solar-cell dataset.

Enroll normal cells (defect probability 0) as the normal baseline, then on cells NOT used for
enrollment report the baseline AUROC for defective cells (probability >= 2/3) against normal ones,
per head, and the share of defective cells each head detects at 1% and 5% false alarms; the
few-shot accuracy with K labelled examples per class; how calibrated the output is: the
false-alarm rate of the conformal p-value on normal cells at alpha = 0.05 and 0.1, and the
expected calibration error of ``p_anomaly`` on a balanced test set, both with the Platt map fitted on
the K labelled defective cells given at enrollment (never tested on) and without labels (the tail
probability, which claims no calibration), and, as ten labelled cells are a small sample, the median
and 90th percentile ECE of maps refitted on ``--label-draws`` other random sets of K defective cells
outside the test set; and the latency of one frame
(decode, preprocess, model, heads). With ``--reference`` (the same model exported with
``--quantize none``) every figure is measured for both bundles and the INT8 - FP32 deltas reported.

    python benchmarks/elpv_quality.py --bundle bundles/efficientnet-lite0 [--reference bundles/fp32]

Cells are picked at random with ``--seed``, so a run is reproducible. Thousands of cells are scored in
batches through ``BaselineScorer``, the scorer inside the service's vision stage, rather than one check
each (``benchmarks/elpv_check.py`` does that); tests/vision/test_vision_elpv.py holds the two to one p-value.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.image_sets import elpv_cells
from edge.bundle.load import load_bundle
from edge.vision.calibration import (
    DEFAULT_ALTERNATIVE_SHAPE,
    PlattMap,
    anomaly_probability,
    leave_one_out_p_values,
)
from edge.vision.encoder import ImageEncoder
from edge.vision.enrollment import LabelledExamples, build_profile
from edge.vision.few_shot import FewShotHead
from edge.vision.pipeline import embed_many
from edge.vision.preprocess import prepare
from edge.vision.profile import bundle_fingerprint
from edge.vision.scoring import BaselineScorer, BaselineScores
from export.task_gate import auroc

DEFECTIVE_MIN_PROBABILITY = 2 / 3


def detection_at_false_alarms(negatives: np.ndarray, positives: np.ndarray, rate: float) -> float:
    """Share of positives scoring above the threshold that ``rate`` of the negatives exceed."""
    threshold = float(np.quantile(negatives, 1.0 - rate, method="higher"))
    return float((positives > threshold).mean())


def expected_calibration_error(probabilities: np.ndarray, outcomes: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probabilities, edges) - 1, 0, bins - 1)
    error = 0.0
    for index in range(bins):
        members = which == index
        if members.any():
            error += members.mean() * abs(probabilities[members].mean() - outcomes[members].mean())
    return float(error)


def evaluate(bundle_dir: Path, normal: int = 200, shots: int = 10, test_per_class: int = 300,
             seed: int = 0, label_draws: int = 50) -> dict[str, Any]:
    """Enroll, score held-out cells, and return every figure as a JSON-ready dict."""
    rng = np.random.default_rng(seed)
    paths, probabilities = elpv_cells()
    normal_ids = rng.permutation(np.flatnonzero(probabilities == 0))
    defect_ids = rng.permutation(np.flatnonzero(probabilities >= DEFECTIVE_MIN_PROBABILITY))
    # enrolled in file-name order, as `edgewatch enroll` reads a folder: the profile's memory/calibration
    # split follows the order, and the figures must be those of the profile a user's enroll builds
    enroll_ids = np.array(sorted(normal_ids[:normal], key=lambda cell: paths[cell].name))
    shot_normal_ids = normal_ids[:shots]
    shot_defect_ids = defect_ids[:shots]
    test_normal_ids = normal_ids[normal:normal + test_per_class]
    test_defect_ids = defect_ids[shots:shots + test_per_class]
    pool_defect_ids = defect_ids[shots + test_per_class:]  # other labelled sets are drawn from here

    bundle = load_bundle(bundle_dir)
    encoder = ImageEncoder.load(bundle)
    start = time.perf_counter()
    ids = np.concatenate([enroll_ids, shot_defect_ids, test_normal_ids, test_defect_ids, pool_defect_ids])
    embeddings, patches = embed_many(encoder, [paths[i] for i in ids])
    embed_s = time.perf_counter() - start
    index = {cell: row for row, cell in enumerate(ids)}

    def rows(cells: np.ndarray) -> np.ndarray:
        return np.array([index[c] for c in cells], dtype=np.int64)

    def patch_rows(cells: np.ndarray) -> np.ndarray | None:
        return None if patches is None else patches[rows(cells)]

    defect_examples = LabelledExamples("defect", "fault", embeddings[rows(shot_defect_ids)],
                                       patch_rows(shot_defect_ids))
    profile = build_profile(bundle_fingerprint(bundle), embeddings[rows(enroll_ids)], patch_rows(enroll_ids),
                            [defect_examples], seed=seed, top_share=bundle.manifest.image_model.patch_top_share)
    scorer = BaselineScorer(profile)  # what `edgewatch check` and the service score frames with

    def baseline(cells: np.ndarray) -> BaselineScores:
        return scorer.score(embeddings[rows(cells)], patch_rows(cells))

    normal_baseline, defect_baseline = baseline(test_normal_ids), baseline(test_defect_ids)
    normal_scores, defect_scores = normal_baseline.heads, defect_baseline.heads
    normal_p, defect_p = normal_baseline.p_values, defect_baseline.p_values
    results: dict[str, Any] = {
        "bundle": str(bundle_dir),
        "enrolled_normal_cells": len(enroll_ids),
        "test_normal_cells": len(test_normal_ids),
        "test_defective_cells": len(test_defect_ids),
        "auroc": {head: auroc(normal_scores[head], defect_scores[head]) for head in normal_scores},
    }
    results["auroc"]["combined_p_value"] = auroc(-normal_p, -defect_p)
    results["detected_at_false_alarms"] = {
        f"{rate:.0%}": {head: detection_at_false_alarms(normal_scores[head], defect_scores[head], rate)
                        for head in normal_scores}
        for rate in (0.01, 0.05)
    }
    results["false_alarm_rate"] = {str(a): float((normal_p <= a).mean()) for a in (0.05, 0.1)}
    test_p = np.concatenate([normal_p, defect_p])
    truth = np.concatenate([np.zeros(len(normal_p)), np.ones(len(defect_p))])
    platt = profile.platt
    assert platt is not None  # the labelled defective cells fit it
    head_p = [scorer.p_value(platt.head, float(s))
              for s in np.concatenate([normal_scores[platt.head], defect_scores[platt.head]])]
    models = {"labelled_platt": np.array([platt.probability(p) for p in head_p]),
              "unlabelled_tail": np.array([anomaly_probability(p, DEFAULT_ALTERNATIVE_SHAPE, profile.prior)
                                           for p in test_p])}
    results["p_anomaly"] = {
        name: {"expected_calibration_error": expected_calibration_error(p_anomaly, truth),
               "accuracy_at_0.5": float(((p_anomaly >= 0.5) == truth).mean()),
               "normal_cells_at_or_above_0.5": float((p_anomaly[truth == 0] >= 0.5).mean())}
        for name, p_anomaly in models.items()
    }
    results["p_anomaly"]["platt"] = {"head": platt.head, "slope": platt.slope, "intercept": platt.intercept}
    pool_p = np.array([scorer.p_value(platt.head, float(s)) for s in baseline(pool_defect_ids).heads[platt.head]])
    errors = []
    for _ in range(label_draws):
        refitted = PlattMap.fit(leave_one_out_p_values(profile.calibration[platt.head]),
                                rng.choice(pool_p, shots, replace=False), platt.head, profile.prior)
        errors.append(expected_calibration_error(np.array([refitted.probability(p) for p in head_p]), truth))
    results["p_anomaly"]["labelled_draws"] = {
        "draws": label_draws, "labelled_per_draw": shots, "pool": len(pool_defect_ids),
        "ece_median": float(np.median(errors)), "ece_p90": float(np.percentile(errors, 90)),
    }
    few_shot = FewShotHead.fit(
        np.concatenate([embeddings[rows(shot_normal_ids)], embeddings[rows(shot_defect_ids)]]),
        np.repeat([0, 1], [len(shot_normal_ids), len(shot_defect_ids)]), ("normal", "defect"),
    )
    test = np.concatenate([embeddings[rows(test_normal_ids)], embeddings[rows(test_defect_ids)]])
    predicted = np.array([few_shot.probabilities(e)["defect"] >= 0.5 for e in test])
    results["few_shot"] = {
        "shots_per_class": shots,
        "accuracy": float((predicted == truth).mean()),
        "balanced_accuracy": float(0.5 * ((~predicted[truth == 0]).mean() + predicted[truth == 1].mean())),
    }
    results["embed_ms_per_cell"] = 1e3 * embed_s / len(ids)
    results["frame_ms"] = _frame_latency_ms(bundle, profile, [paths[i] for i in test_normal_ids[:LATENCY_FRAMES]])
    return results


LATENCY_FRAMES = 30


def _frame_latency_ms(bundle: Any, profile: Any, frames: list[Path]) -> dict[str, float]:
    """Median per stage over single frames, as the service scores them (no batching)."""
    from edge.vision.pipeline import VisionScorer

    scorer = VisionScorer.load(bundle, profile)
    timings = []
    for frame in [frames[0], *frames]:  # the first run warms the heads up
        prepared = prepare(frame, bundle.manifest.preprocessing)
        timings.append(scorer.score_encoded(prepared, scorer.encoder.encode(prepared.tensor)).timings_ms)
    timings = timings[1:]
    return {stage: float(np.median([t[stage] for t in timings])) for stage in timings[0]}


def _deltas(int8: dict[str, Any], fp32: dict[str, Any]) -> dict[str, Any]:
    """INT8 minus FP32 for every number both results hold (nested dicts alike)."""
    out: dict[str, Any] = {}
    for key, value in int8.items():
        other = fp32.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            out[key] = _deltas(value, other)
        elif isinstance(value, (int, float)) and isinstance(other, (int, float)) and not isinstance(value, bool):
            out[key] = value - other
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="EfficientNet-Lite0 bundle (edgewatch export).")
    parser.add_argument("--normal", type=int, default=200, help="Normal cells to enroll.")
    parser.add_argument("--shots", type=int, default=10, help="Labelled examples per class for few-shot.")
    parser.add_argument("--test", type=int, default=300, help="Held-out test cells per class.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label-draws", type=int, default=50,
                        help="Random sets of --shots labelled defective cells to refit the Platt map on.")
    parser.add_argument("--reference", type=Path, help="The same model exported with --quantize none (FP32).")
    args = parser.parse_args(argv)
    results = evaluate(args.bundle, args.normal, args.shots, args.test, args.seed, args.label_draws)
    if args.reference is not None:
        reference = evaluate(args.reference, args.normal, args.shots, args.test, args.seed, args.label_draws)
        results = {"int8": results, "fp32": reference, "int8_minus_fp32": _deltas(results, reference)}
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
