"""What the board's normal-baseline heads would conclude, with FP32 outputs and with INT8 ones.

An image-only bundle has no labels; its heads rank frames by distance to normal. So the INT8 gate
asks whether INT8 ranks the user's images as FP32 does: every image of the calibration folder is
scored against all the others (leave one out: the others play the enrolled normal frames) by the
board's own heads (global k-NN on the embedding, nearest normal patch on the patch features), and
the Spearman rank correlation of the FP32 and INT8 scores is the figure. ImageNet top-1 agreement
says nothing about solar cells or machine parts and is not used here.

With a labelled validation folder (``good/``, ``defect/``) the task itself is measured: the first
half of the good images play the enrolled normal frames, and the AUROC of the remaining good
images against the defective ones is computed with FP32 and with INT8 outputs.

Every figure carries a bootstrap interval over the images (seeded, so a rerun gives the same
interval), and the gate decides on the interval's pessimistic end: a folder too small to show that
INT8 holds falls back to the accurate recipe every time, instead of passing or failing by the luck
of which images it held. Scores are compared at a fixed resolution before ranking, so the float
noise between two FP32 runs (another CPU, another thread count) cannot reorder near-equal scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge.vision.baseline import DEFAULT_K, DEFAULT_MAX_PATCHES, knn_scores, patch_scores
from edge.vision.encoder import l2_normalise

RESAMPLES = 2000
SEED = 0
CONFIDENCE = 0.95  # one-sided: the gate's bound holds with this probability
# Scores closer than this share of the largest score count as tied: FP32 runs on two x86 CPUs differed by
# ~1e-6 relative, well below it, and the heads' scores of distinct images differ by far more.
_SCORE_RESOLUTION = 1e-5
_FIGURE_DIGITS = 3  # decisions compare the figure as printed


@dataclass(frozen=True)
class Figure:
    """A gate figure with its bootstrap interval (``low``: the one-sided bound at ``CONFIDENCE``)."""

    value: float
    low: float
    high: float

    def rounded(self) -> Figure:
        return Figure(*(round(v, _FIGURE_DIGITS) for v in (self.value, self.low, self.high)))


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank."""
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    values, inverse = np.unique(scores, return_inverse=True)
    if len(values) < len(scores):
        ranks = (np.bincount(inverse, weights=ranks) / np.bincount(inverse))[inverse]
    return ranks


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve = P(positive scores above negative), ties counted half (Mann-Whitney)."""
    ranks = _average_ranks(np.concatenate([negatives, positives]))
    positive_rank_sum = ranks[len(negatives):].sum()
    return float((positive_rank_sum - len(positives) * (len(positives) + 1) / 2) / (len(positives) * len(negatives)))


def _at_resolution(scores: np.ndarray) -> np.ndarray:
    scale = float(np.max(np.abs(scores))) if scores.size else 0.0
    return scores if scale == 0 else np.round(scores / (scale * _SCORE_RESOLUTION))


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two score vectors (ties share ranks; 1.0 when either is constant)."""
    centred = [r - r.mean() for r in (_average_ranks(_at_resolution(v)) for v in (first, second))]
    norm = float(np.linalg.norm(centred[0]) * np.linalg.norm(centred[1]))
    return 1.0 if norm == 0 else float(centred[0] @ centred[1] / norm)


def bootstrap(statistic: Callable[[np.ndarray], float], sizes: tuple[int, ...]) -> Figure:
    """``statistic(indices)`` on the data and on ``RESAMPLES`` resamples (each group of ``sizes`` resampled
    within itself; ``indices`` holds one index array per group, concatenated with offsets)."""
    offsets = np.cumsum((0, *sizes[:-1]))
    everything = np.concatenate([offset + np.arange(size) for offset, size in zip(offsets, sizes, strict=True)])
    rng = np.random.default_rng(SEED)
    values = np.array([statistic(np.concatenate([offset + rng.integers(0, size, size)
                                                 for offset, size in zip(offsets, sizes, strict=True)]))
                       for _ in range(RESAMPLES)])
    low, high = np.quantile(values, [1 - CONFIDENCE, CONFIDENCE])
    return Figure(statistic(everything), float(low), float(high)).rounded()


def leave_one_out_knn(embeddings: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """(B, D) raw embeddings -> (B,) k-NN distance of each image to the others."""
    unit = l2_normalise(embeddings)
    return np.array([knn_scores(unit[i:i + 1], np.delete(unit, i, axis=0), k)[0] for i in range(len(unit))])


def leave_one_out_patches(patches: np.ndarray, max_patches: int = DEFAULT_MAX_PATCHES,
                          top_share: float = 0.0) -> np.ndarray:
    """(B, N, C) unit patch features -> (B,) patch score of each image against the others' patches, as
    the board scores a frame (``top_share``: the bundle's ``patch_top_share``, ``baseline.frame_scores``).

    The memory is at most ``max_patches`` of all patches, as the board's is: a seeded sample whose
    rows depend only on the shape, so FP32 and INT8 are scored against the same images' patches, and
    the gate's cost grows with the number of images, not with its square.
    """
    images, tokens, channels = patches.shape
    flat = patches.reshape(-1, channels)
    rows = np.arange(len(flat))
    if len(rows) > max_patches:
        rows = np.sort(np.random.default_rng(SEED).choice(len(flat), max_patches, replace=False))
    owner = rows // tokens  # (M,) the image each memory row comes from
    return np.array([patch_scores(patches[i:i + 1], flat[rows[owner != i]], top_share)[0] for i in range(images)])


def score_rank_correlation(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray],
                           top_share: float = 0.0) -> dict[str, Figure]:
    """Per head ('knn', 'patchcore'): Spearman of the FP32 and INT8 leave-one-out scores, with its interval.

    ``reference``/``candidate`` hold 'embeddings' (B, D) and, when the bundle has them, 'patches' (B, N, C).
    """
    pairs = {"knn": (leave_one_out_knn(reference["embeddings"]), leave_one_out_knn(candidate["embeddings"]))}
    if "patches" in reference and "patches" in candidate:
        pairs["patchcore"] = (leave_one_out_patches(reference["patches"], top_share=top_share),
                              leave_one_out_patches(candidate["patches"], top_share=top_share))
    return {head: bootstrap(lambda rows, a=fp32, b=int8: spearman(a[rows], b[rows]), (len(fp32),))
            for head, (fp32, int8) in pairs.items()}


def labelled_scores(good: dict[str, np.ndarray], defect: dict[str, np.ndarray],
                    top_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the patch head (k-NN when there are no patches), the first half of ``good`` enrolled:
    (good images not enrolled, defective images)."""
    half = len(good["embeddings"]) // 2
    if "patches" in good and "patches" in defect:
        memory = good["patches"][:half].reshape(-1, good["patches"].shape[-1])
        return (patch_scores(good["patches"][half:], memory, top_share),
                patch_scores(defect["patches"], memory, top_share))
    memory = l2_normalise(good["embeddings"][:half])
    return (knn_scores(l2_normalise(good["embeddings"][half:]), memory),
            knn_scores(l2_normalise(defect["embeddings"]), memory))


def auroc_difference(reference: tuple[np.ndarray, np.ndarray], candidate: tuple[np.ndarray, np.ndarray]) -> Figure:
    """INT8 minus FP32 AUROC on the same (good, defect) images, with a paired bootstrap interval
    (good and defective images resampled apart, the same images for both models)."""
    sizes = (len(reference[0]), len(reference[1]))

    def difference(rows: np.ndarray) -> float:
        good, defect = rows[rows < sizes[0]], rows[rows >= sizes[0]] - sizes[0]
        return (auroc(candidate[0][good], candidate[1][defect])
                - auroc(reference[0][good], reference[1][defect]))

    return bootstrap(difference, sizes)
