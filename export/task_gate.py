"""What the board's normal-baseline heads would conclude, with FP32 outputs and with INT8 ones.

An image-only bundle has no labels; its heads rank frames by distance to normal. So the INT8 gate
asks whether INT8 ranks the held-back images as FP32 does: each image is scored against all the
others (leave one out: the others play the enrolled normal frames) by the board's own heads (global
k-NN on the embedding, nearest normal patch on the patch features), and the Spearman rank
correlation of the FP32 and INT8 scores is the figure. ImageNet top-1 agreement says nothing
about solar cells or machine parts and is not used here.

With a labelled validation folder (``good/``, ``defect/``) the task itself is measured: the first
half of the good images play the enrolled normal frames, and the AUROC of the remaining good
images against the defective ones is computed with FP32 and with INT8 outputs.
"""

from __future__ import annotations

import numpy as np

from edge.vision.baseline import DEFAULT_K, knn_scores, patch_scores
from edge.vision.encoder import l2_normalise


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve = P(positive scores above negative), ties counted half (Mann-Whitney)."""
    scores = np.concatenate([negatives, positives])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    positive_rank_sum = ranks[len(negatives):].sum()
    return float((positive_rank_sum - len(positives) * (len(positives) + 1) / 2) / (len(positives) * len(negatives)))


def labelled_auroc(good: dict[str, np.ndarray], defect: dict[str, np.ndarray]) -> float:
    """AUROC of the patch head (k-NN when there are no patches), the first half of ``good`` enrolled."""
    half = len(good["embeddings"]) // 2
    if "patches" in good and "patches" in defect:
        memory = good["patches"][:half].reshape(-1, good["patches"].shape[-1])
        return auroc(patch_scores(good["patches"][half:], memory), patch_scores(defect["patches"], memory))
    memory = l2_normalise(good["embeddings"][:half])
    return auroc(knn_scores(l2_normalise(good["embeddings"][half:]), memory),
                 knn_scores(l2_normalise(defect["embeddings"]), memory))


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two score vectors (ties ranked by order; 1.0 when either is constant)."""
    ranks = [np.argsort(np.argsort(values, kind="stable"), kind="stable").astype(np.float64)
             for values in (first, second)]
    centred = [r - r.mean() for r in ranks]
    norm = float(np.linalg.norm(centred[0]) * np.linalg.norm(centred[1]))
    return 1.0 if norm == 0 else float(centred[0] @ centred[1] / norm)


def leave_one_out_knn(embeddings: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """(B, D) raw embeddings -> (B,) k-NN distance of each image to the others."""
    unit = l2_normalise(embeddings)
    return np.array([knn_scores(unit[i:i + 1], np.delete(unit, i, axis=0), k)[0] for i in range(len(unit))])


def leave_one_out_patches(patches: np.ndarray) -> np.ndarray:
    """(B, N, C) unit patch features -> (B,) worst-patch distance of each image to the others' patches."""
    channels = patches.shape[-1]
    return np.array([patch_scores(patches[i:i + 1], np.delete(patches, i, axis=0).reshape(-1, channels))[0]
                     for i in range(len(patches))])


def score_rank_correlation(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> dict[str, float]:
    """Per head ('knn', 'patchcore'): Spearman of the FP32 and INT8 leave-one-out scores.

    ``reference``/``candidate`` hold 'embeddings' (B, D) and, when the bundle has them, 'patches' (B, N, C).
    """
    figures = {"knn": spearman(leave_one_out_knn(reference["embeddings"]),
                               leave_one_out_knn(candidate["embeddings"]))}
    if "patches" in reference and "patches" in candidate:
        figures["patchcore"] = spearman(leave_one_out_patches(reference["patches"]),
                                        leave_one_out_patches(candidate["patches"]))
    return figures
