"""ELPV the way a user scores it: ``edgewatch enroll`` on normal cells, ``edgewatch check --json`` per held-out cell.

What a user gets is what this reports: the AUROC of ``vision.anomaly_score`` (and of the p-value)
for defective cells (defect probability >= 2/3) against normal ones that were not enrolled, the
share of defective cells detected at 1 % and 5 % false alarms, and the model's median inference
time per check. Cells are drawn with ``--seeds`` as in ``benchmarks/elpv_quality.py``; the model
table in docs/performance.md comes from this script. One split of 60 + 60 cells moves the AUROC by
several hundredths (0.85 to 0.94 for one bundle), so ``--seeds 0,1,2`` scores several splits and
prints their mean and spread beside each split's figures.

Each cell is scored by ``edgewatch check`` itself, in this process (``check_cell``), so by the one
check path the service runs too (``edge.service.check.assess``): a cell gets here the p-value the
service would give it (tests/service/test_check_path.py holds the three to it).

    python benchmarks/elpv_check.py --bundle bundles/vit-s-int8 [--normal 200] [--test-per-class 60] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.image_sets import elpv_cells
from benchmarks.elpv_quality import DEFECTIVE_MIN_PROBABILITY, detection_at_false_alarms
from edge.cli.main import main as edgewatch
from export.task_gate import auroc


def _link(folder: Path, paths: list[Path]) -> Path:
    folder.mkdir(parents=True)
    for path in paths:
        (folder / path.name).symlink_to(path)
    return folder


def check_cell(bundle: Path, profile: Path, image: Path) -> dict[str, Any]:
    """The ``vision`` object of ``edgewatch check --json`` for one cell."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = edgewatch(["check", "--bundle", str(bundle), "--profile", str(profile), "--image", str(image), "--json"])
    if code != 0:
        raise RuntimeError(f"edgewatch check failed on {image} (exit {code})")
    vision: dict[str, Any] = json.loads(out.getvalue())["vision"]
    return vision


def evaluate(bundle: Path, normal: int = 200, test_per_class: int = 60, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    paths, probabilities = elpv_cells()
    normal_ids = rng.permutation(np.flatnonzero(probabilities == 0))
    defect_ids = rng.permutation(np.flatnonzero(probabilities >= DEFECTIVE_MIN_PROBABILITY))
    tests = {"normal": normal_ids[normal:normal + test_per_class], "defect": defect_ids[:test_per_class]}
    with tempfile.TemporaryDirectory(prefix="elpv-check-") as tmp:
        enroll = _link(Path(tmp) / "enroll", [paths[i] for i in normal_ids[:normal]])
        profile = Path(tmp) / "profile.npz"
        start = time.perf_counter()
        if edgewatch(["enroll", "--bundle", str(bundle), "--normal", str(enroll), "--out", str(profile)]) != 0:
            raise RuntimeError("edgewatch enroll failed")
        enroll_s = time.perf_counter() - start
        results = {kind: [check_cell(bundle, profile, paths[i]) for i in ids] for kind, ids in tests.items()}
    score = {kind: np.array([r["anomaly_score"] for r in rows]) for kind, rows in results.items()}
    p_value = {kind: np.array([r["p_value"] for r in rows]) for kind, rows in results.items()}
    inference = [r["timings_ms"]["inference"] for rows in results.values() for r in rows]
    return {
        "bundle": str(bundle), "enrolled": normal, "test_per_class": test_per_class, "seed": seed,
        "auroc_anomaly_score": auroc(score["normal"], score["defect"]),
        "auroc_p_value": auroc(-p_value["normal"], -p_value["defect"]),
        "detected_at_1pct_false_alarms": detection_at_false_alarms(score["normal"], score["defect"], 0.01),
        "detected_at_5pct_false_alarms": detection_at_false_alarms(score["normal"], score["defect"], 0.05),
        "inference_ms_median": float(np.median(inference)),
        "enroll_s": enroll_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="Bundle folder (edgewatch export).")
    parser.add_argument("--normal", type=int, default=200, help="Normal cells enrolled.")
    parser.add_argument("--test-per-class", type=int, default=60, help="Held-out normal and defective cells each.")
    parser.add_argument("--seeds", default="0", help="Comma-separated seeds: one split of the cells each.")
    args = parser.parse_args(argv)
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: expected integers separated by commas, e.g. 0,1,2")
    splits = [evaluate(args.bundle, args.normal, args.test_per_class, seed) for seed in seeds]
    print(json.dumps(splits[0] if len(splits) == 1 else {"splits": splits, **summary(splits)}, indent=2))
    return 0


def summary(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation over the splits of each figure that rates the bundle."""
    figures = ("auroc_anomaly_score", "auroc_p_value", "detected_at_1pct_false_alarms", "detected_at_5pct_false_alarms")
    return {f"{name}_{stat}": float(fn([split[name] for split in splits]))
            for name in figures for stat, fn in (("mean", np.mean), ("sd", np.std))}


if __name__ == "__main__":
    sys.exit(main())
