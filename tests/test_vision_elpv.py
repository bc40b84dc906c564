"""Real weights on real data: the EfficientNet-Lite0 INT8 bundle tells defective solar cells from normal ones.

A small version of benchmarks/elpv_quality.py (60 enrolled normal cells, 40 test cells per class);
the full figures are in docs/performance.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.image_sets import elpv_cells
from benchmarks.elpv_quality import auroc, evaluate
from edge.cli.main import main


@pytest.fixture(scope="module")
def efficientnet_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("effnet")
    calibration = root / "calibration"
    calibration.mkdir()
    paths, _ = elpv_cells()
    for path in paths[::40]:  # 66 cells of every kind, as a user would calibrate on their own frames
        (calibration / path.name).symlink_to(path)
    out = root / "bundle"
    # the default gate: the heads rank held-back cells alike in FP32 and INT8
    assert main(["export", "--model", "efficientnet-lite0", "--out", str(out), "--calibration", str(calibration)]) == 0
    return out


def test_auroc_is_the_mann_whitney_statistic() -> None:
    import numpy as np

    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5


@pytest.mark.slow
def test_normal_baseline_detects_defective_cells_clearly_above_chance(efficientnet_bundle: Path) -> None:
    results = evaluate(efficientnet_bundle, normal=60, shots=5, test_per_class=40, seed=0)
    # Mid-level patch features: patchcore 0.89 at full size (docs/performance.md); small sets are noisier.
    assert results["auroc"]["patchcore"] > 0.7
    assert results["auroc"]["combined_p_value"] > 0.65
    assert results["few_shot"]["accuracy"] > 0.5
    # Conformal p-values keep their promise on normal cells (40 cells: allow sampling noise).
    assert results["false_alarm_rate"]["0.1"] <= 0.25
    # Without labels p_anomaly keeps that promise; with labelled cells the Platt map calibrates better.
    p_anomaly = results["p_anomaly"]
    assert p_anomaly["unlabelled_tail"]["normal_cells_at_or_above_0.5"] <= 0.15
    assert p_anomaly["labelled_draws"]["ece_median"] < p_anomaly["unlabelled_tail"]["expected_calibration_error"]
