"""Normal baseline: how far is this frame from everything seen while the machine was in good condition?

Two heads over L2-normalised features, distance = 1 - cosine:
  * global k-NN: mean distance of the frame embedding to its k nearest normal embeddings;
  * PatchCore-style: every patch token of the frame against a memory of normal patch tokens, the
    frame's score is its worst patch, or the mean of its worst share of patches (a small scratch moves
    a few patches, not the global embedding; see ``frame_scores``).
The patch memory is bounded by a greedy k-center coreset, which keeps the patches that cover the
normal feature space best, so memory and scoring cost stay fixed however many frames are enrolled.
"""

from __future__ import annotations

import numpy as np

DEFAULT_K = 3
DEFAULT_MAX_PATCHES = 4096
_PROJECTION_DIM = 128


def _nearest_distances(queries: np.ndarray, memory: np.ndarray, k: int) -> np.ndarray:
    """(Q, D), (M, D) unit rows -> (Q, k) smallest cosine distances, ascending."""
    similarity = queries @ memory.T  # (Q, M)
    if k == 1:  # the patch head: a max is several times cheaper than a partition of (Q, M)
        return np.asarray(1.0 - similarity.max(axis=1, keepdims=True))
    k = min(k, memory.shape[0])
    if k < memory.shape[0]:
        similarity = np.partition(similarity, memory.shape[0] - k, axis=1)[:, -k:]
    distances: np.ndarray = np.sort(1.0 - similarity, axis=1)
    return distances


def knn_scores(embeddings: np.ndarray, memory: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """(Q, D) frame embeddings -> (Q,) mean distance to the k nearest normal embeddings."""
    return np.asarray(_nearest_distances(embeddings, memory, k).mean(axis=1), dtype=np.float64)


def patch_distances(patches: np.ndarray, memory: np.ndarray) -> np.ndarray:
    """(Q, N, C) patch features of Q frames -> (Q, N) distance of every patch to its nearest normal one.

    Reshaped to the patch grid, one row is the frame's anomaly map: where it differs from normal.
    """
    frames, tokens, channels = patches.shape
    nearest = _nearest_distances(patches.reshape(frames * tokens, channels), memory, 1)[:, 0]
    return np.asarray(nearest.reshape(frames, tokens), dtype=np.float32)


def frame_scores(distances: np.ndarray, top_share: float = 0.0) -> np.ndarray:
    """(Q, N) patch distances -> (Q,) each frame's score: the mean of its worst ``top_share`` of patches
    (at least one; 0: the worst patch alone).

    One token of a ViT's 16 x 16 grid is noisy (a single odd token in a normal frame sets the max,
    and INT8 moves single tokens) while a crack spans several, so token bundles score the mean of
    their worst few: on ELPV their INT8 scores then agree with FP32's (rank correlation 0.969 against
    0.942 for the max; docs/performance.md, "Model choice"). A CNN's 3 x 3-averaged map is smooth
    already: its worst patch is its score.
    """
    if top_share <= 0.0:
        return np.asarray(distances.max(axis=1), dtype=np.float64)
    count = max(1, round(top_share * distances.shape[1]))
    worst = np.partition(distances, distances.shape[1] - count, axis=1)[:, -count:]
    return np.asarray(worst.mean(axis=1), dtype=np.float64)


def patch_scores(patches: np.ndarray, memory: np.ndarray, top_share: float = 0.0) -> np.ndarray:
    """(Q, N, C) patch features of Q frames -> (Q,) each frame's score (``frame_scores``)."""
    return frame_scores(patch_distances(patches, memory), top_share)


def greedy_coreset(features: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Indices of ``size`` rows chosen by greedy k-center (farthest point) selection.

    Distances are computed in a random 128-d projection (Johnson-Lindenstrauss), as PatchCore
    does, so selection costs O(rows x size x 128) rather than the full feature width.
    """
    rows = features.shape[0]
    if size >= rows:
        return np.arange(rows)
    rng = np.random.default_rng(seed)
    if features.shape[1] > _PROJECTION_DIM:
        projection = rng.normal(size=(features.shape[1], _PROJECTION_DIM)).astype(np.float32)
        points = features @ (projection / np.float32(np.sqrt(_PROJECTION_DIM)))
    else:
        points = features
    points = np.ascontiguousarray(points, dtype=np.float32)
    # |p - c|^2 = |p|^2 - 2 p.c + |c|^2, into one preallocated buffer per pick. einsum, not BLAS:
    # one matrix-vector product is too small to share across threads, and on a busy CPU BLAS's
    # threads waiting on each other made the selection 5-9x slower than one thread's loop.
    norms_sq = np.einsum("ij,ij->i", points, points)
    chosen = np.empty(size, dtype=np.int64)
    chosen[0] = int(rng.integers(rows))
    min_sq = np.full(rows, np.inf, dtype=np.float32)
    step = np.empty(rows, dtype=np.float32)
    for index in range(size):
        if index:
            chosen[index] = int(np.argmax(min_sq))
        pick = chosen[index]
        np.einsum("ij,j->i", points, points[pick], out=step)
        step *= -2
        step += norms_sq
        step += norms_sq[pick]
        np.minimum(min_sq, step, out=min_sq)
    return chosen


def build_patch_memory(patches: np.ndarray, max_patches: int = DEFAULT_MAX_PATCHES) -> np.ndarray:
    """(F, N, C) normal frames' patch tokens -> (<= max_patches, C) coreset memory."""
    flat = patches.reshape(-1, patches.shape[-1]).astype(np.float32, copy=False)
    memory: np.ndarray = flat[greedy_coreset(flat, max_patches)]
    return memory
