"""The patch head's frame score: the worst patch, or the mean of the worst share of patches (token bundles)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge.errors import InputError
from edge.vision.baseline import frame_scores, patch_distances
from edge.vision.enrollment import build_profile
from edge.vision.profile import load_profile, save_profile
from edge.vision.scoring import PATCH_HEAD, BaselineScorer
from export.task_gate import auroc

GRID, CHANNELS = 256, 16  # a ViT's 16 x 16 token grid


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def test_the_share_averages_the_worst_patches_and_zero_is_the_worst_one() -> None:
    distances = np.arange(2 * GRID, dtype=np.float32).reshape(2, GRID)[:, ::-1]  # worst first, unsorted order
    assert frame_scores(distances, 0.0).tolist() == [GRID - 1, 2 * GRID - 1]
    # 1 % of 256 patches is 3 (rounded), never fewer than one
    assert frame_scores(distances, 0.01) == pytest.approx([GRID - 2, 2 * GRID - 2])
    assert frame_scores(distances[:, -10:], 0.01).tolist() == [9, GRID + 9]  # 1 % of 10: still one


def test_a_defect_over_a_few_tokens_outranks_single_noisy_tokens_only_with_the_share() -> None:
    """Normal frames with one stray token each, defective frames with three moderately odd tokens."""
    rng = np.random.default_rng(0)
    normal = rng.uniform(0.1, 0.2, size=(40, GRID))
    normal[np.arange(40), rng.integers(GRID, size=40)] = rng.uniform(0.45, 0.6, size=40)  # one stray token
    defect = rng.uniform(0.1, 0.2, size=(40, GRID))
    defect[:, 100:103] = rng.uniform(0.38, 0.5, size=(40, 3))  # a crack across three tokens
    assert auroc(frame_scores(normal), frame_scores(defect)) < 0.3  # the worst token picks the strays
    assert auroc(frame_scores(normal, 0.01), frame_scores(defect, 0.01)) > 0.95


def test_the_profile_calibrates_scores_and_keeps_the_share(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    centre = _unit(rng.normal(size=CHANNELS))
    embeddings = _unit(rng.normal(size=(40, 8)) + 3.0)
    patches = _unit(centre + 0.1 * rng.normal(size=(40, GRID, CHANNELS)))
    profile = build_profile("f" * 64, embeddings, patches, max_patches=512, top_share=0.01)
    assert profile.patch_top_share == 0.01
    save_profile(profile, tmp_path / "p.npz")
    loaded = load_profile(tmp_path / "p.npz")
    assert loaded.patch_top_share == 0.01
    # the scorer's patch head is the mean of the worst 1 % of the frame's scaled distances
    query_embeddings, query_patches = embeddings[:3], _unit(centre + 0.1 * rng.normal(size=(3, GRID, CHANNELS)))
    scores = BaselineScorer(loaded).score(query_embeddings, query_patches)
    assert scores.patch_distances is not None
    expected = np.sort(scores.patch_distances, axis=1)[:, -3:].mean(axis=1)
    assert scores.heads[PATCH_HEAD] == pytest.approx(expected, rel=1e-6)
    # calibration scores are on the same footing: a normal frame's p-value is not pushed to an extreme
    assert 0.05 < float(np.median(scores.p_values)) < 0.95
    raw = patch_distances(query_patches, loaded.patch_memory)  # type: ignore[arg-type]
    assert not np.allclose(scores.heads[PATCH_HEAD], frame_scores(raw, 0.01))  # the local scale is applied


def test_a_profile_with_an_impossible_share_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    embeddings = _unit(rng.normal(size=(8, 8)))
    patches = _unit(rng.normal(size=(8, 16, CHANNELS)))
    profile = build_profile("f" * 64, embeddings, patches, max_patches=64)
    save_profile(replace(profile, patch_top_share=1.5), tmp_path / "bad.npz")
    with pytest.raises(InputError, match="patch_top_share"):
        load_profile(tmp_path / "bad.npz")
