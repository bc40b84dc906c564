"""The INT8 gate's statistics: decisions that float noise and reruns cannot flip."""

from __future__ import annotations

import numpy as np
import pytest

from edge.vision.patch_features import patch_features
from export.task_gate import auroc_difference, score_rank_correlation, spearman


def test_float_noise_between_fp32_runs_leaves_the_gate_figures_as_they_were() -> None:
    rng = np.random.default_rng(8)
    embeddings, maps = rng.normal(size=(60, 32)), rng.normal(size=(60, 8, 6, 6))
    patches = patch_features([maps])[0]
    reference = {"embeddings": embeddings, "patches": patches}
    int8 = {"embeddings": embeddings + 0.1 * rng.normal(size=embeddings.shape),  # ranks a little differently
            "patches": patch_features([maps + 0.1 * rng.normal(size=maps.shape)])[0]}
    other_cpu = {"embeddings": embeddings * (1 + 1e-6 * rng.normal(size=embeddings.shape)),  # FP32 sums reordered
                 "patches": patches * (1 + 1e-6 * rng.normal(size=patches.shape)).astype(np.float32)}
    figures = score_rank_correlation(reference, int8)
    assert 0.5 < figures["knn"].low < figures["knn"].value < figures["knn"].high < 1.0
    assert all(f.low <= f.value <= f.high for f in figures.values())
    assert score_rank_correlation(other_cpu, int8) == figures
    assert score_rank_correlation(reference, int8) == figures  # seeded bootstrap: a rerun agrees


def test_spearman_counts_scores_closer_than_the_resolution_as_tied() -> None:
    scores = np.array([0.1, 0.2, 0.2, 0.3])
    assert spearman(scores, scores + np.array([0, 1e-9, -1e-9, 0])) == pytest.approx(1.0)
    assert spearman(scores, np.array([0.1, 0.25, 0.2, 0.3])) < 1.0


def test_the_auroc_difference_interval_is_paired() -> None:
    rng = np.random.default_rng(9)
    good, defect = rng.normal(size=30), rng.normal(1.5, 1.0, size=30)
    same = auroc_difference((good, defect), (good * 2, defect * 2))  # the same ranking: no difference at all
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    worse = auroc_difference((good, defect), (good, defect - 1.0))
    assert worse.high < 0 and worse.low < worse.value < worse.high

