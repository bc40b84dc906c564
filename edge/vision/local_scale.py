"""Locally adaptive scale of the patch head: how unusual is this frame's worst patch *for frames like it*?

Normal frames are rarely one population: a line runs two variants of a part, solar cells are mono-
or polycrystalline, the light changes over a shift. A textured variant's normal patches sit farther
from their nearest neighbours in memory than a plain variant's, so one threshold on the raw
worst-patch distance either misses defects on the plain variant or raises alarms on the textured
one. Dividing the raw distances by the typical raw score of the frame's nearest enrolled frames (by
global embedding) puts every variant on one scale, as normalised nonconformity scores do in
conformal prediction. Each enrolled frame's typical score is measured out of fold: against a coreset
memory built without the frames of its fold, so it is what a new normal frame of that kind scores.
With one homogeneous population the scale is nearly constant and the ranking of frames unchanged.

On ELPV (EfficientNet-Lite0 INT8, 200 normal cells enrolled, three draws) it lifted the patch
head's AUROC from 0.872-0.894 to 0.898-0.916; see docs/performance.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.vision.baseline import DEFAULT_MAX_PATCHES, frame_scores, greedy_coreset, patch_distances, patch_scores

NEIGHBOUR_SHARE = 0.4  # of the enrolled frames: enough to average out one frame's luck, few enough to stay local
FOLDS = 4
# A fold's memory is selected from a random quarter of the other folds' patches: the scale needs
# scores comparable between kinds of frame, not the exact ones, and on ELPV this gave the same AUROC
# (0.908 mean over three draws) in a seventh of the time of selecting from all of them.
CANDIDATE_SHARE = 0.25
_FLOOR = 1e-6  # a scale of zero (identical frames) would divide by zero


@dataclass(frozen=True)
class LocalScale:
    """Enrolled frames' embeddings and out-of-fold patch scores: the reference a new frame is scaled by."""

    embeddings: np.ndarray  # (R, D) unit global embeddings of the enrolled normal frames
    scores: np.ndarray  # (R,) each one's worst-patch distance against a memory without it
    neighbours: int

    @classmethod
    def fit(cls, embeddings: np.ndarray, patches: np.ndarray, max_patches: int = DEFAULT_MAX_PATCHES,
            seed: int = 0, top_share: float = 0.0) -> LocalScale:
        """(R, D) embeddings and (R, N, C) patch features of normal frames (R >= 2) -> their scale, in
        the units of the frame score the profile uses (``top_share``, see ``baseline.frame_scores``)."""
        frames = embeddings.shape[0]
        if frames < 2:
            raise ValueError("a local scale needs at least two normal frames")
        scores = np.empty(frames, dtype=np.float64)
        rng = np.random.default_rng(seed)
        for fold in np.array_split(rng.permutation(frames), min(FOLDS, frames)):
            rest = np.setdiff1d(np.arange(frames), fold)
            candidates = patches[rest].reshape(-1, patches.shape[-1])
            keep = max(max_patches, round(CANDIDATE_SHARE * len(candidates)))
            if keep < len(candidates):
                candidates = candidates[rng.choice(len(candidates), keep, replace=False)]
            memory = candidates[greedy_coreset(candidates, max_patches, seed)]
            scores[fold] = patch_scores(patches[fold], memory, top_share)
        neighbours = max(1, min(frames - 1, round(NEIGHBOUR_SHARE * frames)))
        return cls(embeddings.astype(np.float32), scores, neighbours)

    def of(self, embeddings: np.ndarray, own_rows: np.ndarray | None = None) -> np.ndarray:
        """(Q, D) frame embeddings -> (Q,) mean reference score of each frame's nearest enrolled frames.

        ``own_rows`` gives, for frames that are themselves enrolled, their row here: a frame is
        never its own neighbour (its calibration score must look like a new frame's).
        """
        similarity = embeddings.astype(np.float32) @ self.embeddings.T  # (Q, R)
        if own_rows is not None:
            similarity[np.arange(len(own_rows)), own_rows] = -np.inf
        count = min(self.neighbours, similarity.shape[1] - (own_rows is not None))
        nearest = np.argpartition(-similarity, count - 1, axis=1)[:, :count]
        return np.maximum(self.scores[nearest].mean(axis=1), _FLOOR)


def scaled_patch_distances(embeddings: np.ndarray, patches: np.ndarray, patch_memory: np.ndarray,
                           scale: LocalScale | None, own_rows: np.ndarray | None = None) -> np.ndarray:
    """(Q, N) every patch's distance to normal, in units of the frame's local scale when there is one.

    The row's worst patches give the patch head's score; the row, on the patch grid, the anomaly map.
    """
    distances = patch_distances(patches, patch_memory)
    if scale is None:  # a profile enrolled before the local scale existed: raw distances, as calibrated
        return distances
    return np.asarray(distances / scale.of(embeddings, own_rows)[:, None], dtype=np.float32)


def scaled_patch_scores(embeddings: np.ndarray, patches: np.ndarray, patch_memory: np.ndarray,
                        scale: LocalScale | None, own_rows: np.ndarray | None = None,
                        top_share: float = 0.0) -> np.ndarray:
    """(Q,) the patch head's score of each frame: its most unusual patches, on the local scale."""
    return frame_scores(scaled_patch_distances(embeddings, patches, patch_memory, scale, own_rows), top_share)
