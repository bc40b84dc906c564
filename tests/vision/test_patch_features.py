"""Mid-level maps -> patch features on one grid, the anomaly map they give, and the INT8 task gate."""

from __future__ import annotations

import numpy as np
import pytest

from edge.vision.baseline import build_patch_memory, greedy_coreset, patch_distances
from edge.vision.patch_features import local_average, patch_features, resize_maps, token_grid
from export.task_gate import auroc, labelled_scores, score_rank_correlation, spearman


def test_local_average_is_the_window_mean_of_the_cells_that_exist() -> None:
    maps = np.random.default_rng(0).normal(size=(2, 3, 5, 6)).astype(np.float32)
    averaged = local_average(maps)
    for y, x in [(0, 0), (2, 3), (4, 5), (0, 3)]:
        window = maps[:, :, max(y - 1, 0):y + 2, max(x - 1, 0):x + 2]
        assert np.allclose(averaged[:, :, y, x], window.mean(axis=(2, 3)), atol=1e-5)


def test_resize_matches_torch_bilinear_with_half_pixel_centres() -> None:
    import torch
    maps = np.random.default_rng(1).normal(size=(1, 4, 7, 5)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(maps), size=(14, 10), mode="bilinear",
                                               align_corners=False).numpy()
    assert np.allclose(resize_maps(maps, (14, 10)), expected, atol=1e-5)
    assert np.array_equal(resize_maps(maps, (7, 5)), maps)


def test_patch_features_join_maps_on_the_finest_grid_as_unit_rows() -> None:
    rng = np.random.default_rng(2)
    fine, coarse = rng.normal(size=(2, 8, 12, 12)), rng.normal(size=(2, 16, 6, 6))
    patches, grid = patch_features([fine, coarse])
    assert grid == (12, 12) and patches.shape == (2, 144, 24)
    assert np.allclose(np.linalg.norm(patches, axis=-1), 1.0, atol=1e-5)
    # a change in one coarse cell moves only the patches around it, not the far corner
    changed = coarse.copy()
    changed[0, :, 1, 1] += 50.0
    moved = np.linalg.norm(patch_features([fine, changed])[0][0] - patches[0], axis=-1).reshape(12, 12)
    assert moved[2:4, 2:4].min() > 0.1 and moved[9:, 9:].max() < 1e-5


def test_token_grid_recovers_vit_grids_and_falls_back_to_a_strip() -> None:
    assert token_grid(49, (224, 224)) == (7, 7)
    assert token_grid(14 * 20, (224, 320)) == (14, 20)
    assert token_grid(7, (224, 224)) == (1, 7)


def test_anomaly_map_points_at_the_defect() -> None:
    """Normal frames: a smooth pattern; the test frame has a foreign patch at (3, 5) of an 8x8 grid."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=(16, 8, 8))

    def frame(noise: float) -> np.ndarray:
        return base + noise * rng.normal(size=base.shape)

    normal = patch_features([np.stack([frame(0.1) for _ in range(6)])])[0]
    memory = build_patch_memory(normal, max_patches=200)
    test = frame(0.1)
    test[:, 3, 5] = rng.normal(size=16) * 5
    distances = patch_distances(patch_features([test[None]])[0], memory)[0].reshape(8, 8)
    peak = np.unravel_index(distances.argmax(), distances.shape)
    assert abs(peak[0] - 3) <= 1 and abs(peak[1] - 5) <= 1  # 3x3 averaging spreads a cell over its neighbours
    assert distances[3, 5] > 3 * np.median(distances)


def test_fast_coreset_picks_the_farthest_point_each_time() -> None:
    points = np.random.default_rng(4).normal(size=(300, 20)).astype(np.float32)
    chosen = greedy_coreset(points, 12, seed=0)
    nearest = ((points[:, None] - points[chosen[:-1]][None]) ** 2).sum(-1).min(1)  # to the first 11
    assert chosen[-1] == nearest.argmax()
    assert len(set(chosen.tolist())) == 12


def test_spearman_and_the_score_rank_gate() -> None:
    assert spearman(np.arange(10.0), np.arange(10.0) ** 3) == pytest.approx(1.0)
    assert spearman(np.arange(10.0), -np.arange(10.0)) == pytest.approx(-1.0)
    rng = np.random.default_rng(5)
    embeddings = rng.normal(size=(12, 32))
    patches = patch_features([rng.normal(size=(12, 8, 6, 6))])[0]
    reference = {"embeddings": embeddings, "patches": patches}
    same = score_rank_correlation(reference, {"embeddings": embeddings * 1.01, "patches": patches})
    assert {head: (f.value, f.low) for head, f in same.items()} == {"knn": (1.0, 1.0), "patchcore": (1.0, 1.0)}
    scrambled = {"embeddings": rng.normal(size=(12, 32)),
                 "patches": patch_features([rng.normal(size=(12, 8, 6, 6))])[0]}
    figures = score_rank_correlation(reference, scrambled)
    assert max(f.value for f in figures.values()) < 0.9
    assert all(f.low <= f.value <= f.high and f.high - f.low > 0.1 for f in figures.values())  # 12 images: wide
    assert figures == score_rank_correlation(reference, scrambled)  # seeded: a rerun gives the same interval


def test_labelled_auroc_enrolls_half_the_good_images_and_scores_the_rest() -> None:
    rng = np.random.default_rng(6)
    base = rng.normal(size=(1, 8, 6, 6))
    good_maps = base + 0.1 * rng.normal(size=(10, 8, 6, 6))
    defect_maps = base + 0.1 * rng.normal(size=(4, 8, 6, 6))
    defect_maps[:, :, 2, 3] += 3.0  # one foreign cell each
    good = {"embeddings": good_maps.mean(axis=(2, 3)), "patches": patch_features([good_maps])[0]}
    defect = {"embeddings": defect_maps.mean(axis=(2, 3)), "patches": patch_features([defect_maps])[0]}
    assert auroc(*labelled_scores(good, defect)) == 1.0
    same = {**good, "embeddings": good["embeddings"][5:], "patches": good["patches"][5:]}
    assert auroc(*labelled_scores(good, same)) < 0.75
