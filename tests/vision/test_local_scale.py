"""The patch head's local scale: normal frames of two kinds (plain and textured) on one footing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge.errors import InputError
from edge.vision.baseline import build_patch_memory, patch_scores
from edge.vision.calibration import ConformalScorer
from edge.vision.enrollment import build_profile
from edge.vision.local_scale import LocalScale, scaled_patch_distances, scaled_patch_scores
from edge.vision.profile import load_profile, save_profile

CHANNELS, PATCHES = 24, 16


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


class Line:
    """Frames of a plain variant (patches tightly alike) and a textured one (patches spread out)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.looks = _unit(self.rng.normal(size=(2, 64)))  # each variant's global look
        self.centres = _unit(self.rng.normal(size=(2, CHANNELS)))
        self.spread = (0.03, 0.25)

    def frames(self, variant: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        embeddings = _unit(self.looks[variant] + 0.05 * self.rng.normal(size=(count, 64)))
        noise = self.spread[variant] * self.rng.normal(size=(count, PATCHES, CHANNELS))
        return embeddings, _unit(self.centres[variant] + noise)

    def mixed(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        plain, textured = self.frames(0, count // 2), self.frames(1, count - count // 2)
        return np.concatenate([plain[0], textured[0]]), np.concatenate([plain[1], textured[1]])


def test_a_small_defect_on_the_plain_variant_outranks_every_normal_textured_frame() -> None:
    line = Line()
    embeddings, patches = line.mixed(80)
    memory = build_patch_memory(patches, max_patches=512)
    scale = LocalScale.fit(embeddings, patches, max_patches=512)
    normal_embeddings, normal_patches = line.mixed(40)
    defect_embedding, defect_patches = line.frames(0, 1)
    defect_patches[0, 5] = _unit(line.centres[0] + 0.12 * line.rng.normal(size=CHANNELS))  # one odd patch

    raw_normal, raw_defect = patch_scores(normal_patches, memory), patch_scores(defect_patches, memory)[0]
    assert raw_defect < np.median(raw_normal[20:])  # on the raw distance the textured variant hides it

    scaled_normal = scaled_patch_scores(normal_embeddings, normal_patches, memory, scale)
    scaled_defect = scaled_patch_scores(defect_embedding, defect_patches, memory, scale)[0]
    assert scaled_defect > scaled_normal.max()
    # each variant is scaled by its own kind: the textured frames' typical score is several times the plain
    typical = scale.of(normal_embeddings)
    assert typical[20:].min() > 3 * typical[:20].max()


def test_one_population_keeps_its_ranking() -> None:
    line = Line(1)
    embeddings, patches = line.frames(1, 60)
    memory = build_patch_memory(patches, max_patches=512)
    scale = LocalScale.fit(embeddings, patches, max_patches=512)
    test_embeddings, test_patches = line.frames(1, 30)
    typical = scale.of(test_embeddings)
    assert typical.std() < 0.1 * typical.mean()  # nearly constant, so it cannot reorder frames much
    raw = patch_scores(test_patches, memory)
    scaled = scaled_patch_scores(test_embeddings, test_patches, memory, scale)
    ranks = np.argsort(np.argsort(raw)), np.argsort(np.argsort(scaled))
    assert np.corrcoef(*ranks)[0, 1] > 0.9


def test_an_enrolled_frame_is_never_its_own_neighbour() -> None:
    embeddings = _unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    scale = LocalScale(embeddings, np.array([5.0, 1.0, 2.0]), neighbours=1)
    assert scale.of(embeddings[:1])[0] == 5.0
    assert scale.of(embeddings[:1], own_rows=np.array([0]))[0] == 1.0


def test_enrolled_profile_keeps_the_false_alarm_promise_on_a_mixed_line(tmp_path: Path) -> None:
    """Conformal p-values promise P(p <= alpha) <= alpha over new normal frames and enrolments alike."""
    rates = []
    for seed in range(4):
        line = Line(seed)
        embeddings, patches = line.mixed(120)
        profile = build_profile("f" * 64, embeddings, patches, max_patches=512)
        assert profile.local_scale is not None and profile.patch_memory is not None
        scorer = ConformalScorer.fit(profile.calibration["patchcore"])
        new_embeddings, new_patches = line.mixed(300)
        scores = scaled_patch_scores(new_embeddings, new_patches, profile.patch_memory, profile.local_scale)
        rates.append(np.mean([scorer.p_value(float(s)) <= 0.1 for s in scores]))
    assert np.mean(rates) <= 0.13, rates  # 0.1 plus sampling noise of 30 calibration frames per enrolment
    assert "nearest" in profile.info["patch_scale"]

    path = tmp_path / "profile.npz"
    save_profile(profile, path)
    loaded = load_profile(path).local_scale
    assert loaded is not None and loaded.neighbours == profile.local_scale.neighbours
    np.testing.assert_array_equal(loaded.scores, profile.local_scale.scores)


def test_a_profile_without_a_scale_scores_raw_distances_and_a_broken_scale_is_refused(tmp_path: Path) -> None:
    line = Line(3)
    embeddings, patches = line.mixed(20)
    profile = build_profile("f" * 64, embeddings, patches, max_patches=128)
    assert profile.patch_memory is not None
    older = replace(profile, local_scale=None)
    raw = scaled_patch_distances(embeddings, patches, older.patch_memory, older.local_scale)
    np.testing.assert_allclose(raw.max(axis=1), patch_scores(patches, profile.patch_memory), rtol=1e-6)
    save_profile(older, tmp_path / "older.npz")
    assert load_profile(tmp_path / "older.npz").local_scale is None

    assert profile.local_scale is not None
    broken = replace(profile, local_scale=replace(profile.local_scale, scores=np.full(20, np.nan)))
    save_profile(broken, tmp_path / "broken.npz")
    with pytest.raises(InputError, match="patch-head scale"):
        load_profile(tmp_path / "broken.npz")
