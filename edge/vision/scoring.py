"""A frame's anomaly score and p-value against an asset's profile: the one way they are computed.

``edgewatch check``, the service (both through ``pipeline.VisionHeads``), ``edgewatch eval`` (which
reads what the service stored) and the benchmarks all call ``BaselineScorer.score``, so a figure a
benchmark reports for a set of frames is what ``check --json`` prints for the same frames and profile.

The heads: global k-NN on the embedding and, when the bundle has patch features, the worst patches'
distance to the patch memory on the frame's local scale (``local_scale``; the mean of the profile's
``patch_top_share`` of patches, ``baseline.frame_scores``). Each head's score becomes a
conformal p-value against the profile's held-out normal scores; the heads' p-values are combined
(Bonferroni) into the frame's one p-value. The anomaly score is the patch head's (k-NN without patches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.vision.baseline import frame_scores, knn_scores
from edge.vision.calibration import ConformalScorer, combine_p_values
from edge.vision.local_scale import scaled_patch_distances
from edge.vision.profile import Profile

PATCH_HEAD = "patchcore"
GLOBAL_HEAD = "knn"


@dataclass(frozen=True)
class BaselineScores:
    """Q frames' baseline scores."""

    heads: dict[str, np.ndarray]  # head -> (Q,) score
    p_values: np.ndarray  # (Q,) combined conformal p-value under "this frame is normal"
    patch_distances: np.ndarray | None  # (Q, N) every patch's scaled distance to normal (anomaly maps)

    @property
    def anomaly_scores(self) -> np.ndarray:
        """(Q,) the score people see: the patch head's, else the k-NN head's."""
        return self.heads.get(PATCH_HEAD, self.heads[GLOBAL_HEAD])


class BaselineScorer:
    """An asset profile's baseline heads and their conformal calibration, fitted once."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.conformal = {head: ConformalScorer.fit(scores) for head, scores in profile.calibration.items()}

    def score(self, embeddings: np.ndarray, patches: np.ndarray | None) -> BaselineScores:
        """(Q, D) unit embeddings and (Q, N, C) unit patch features (None: the bundle has none) -> scores."""
        profile = self.profile
        heads = {GLOBAL_HEAD: knn_scores(embeddings, profile.memory, profile.knn_k)}
        distances = None
        if profile.patch_memory is not None and patches is not None and PATCH_HEAD in self.conformal:
            distances = scaled_patch_distances(embeddings, patches, profile.patch_memory, profile.local_scale)
            heads[PATCH_HEAD] = frame_scores(distances, profile.patch_top_share)
        p_values = np.array([combine_p_values([self.conformal[head].p_value(float(scores[row]))
                                               for head, scores in heads.items()])
                             for row in range(len(embeddings))])
        return BaselineScores(heads, p_values, distances)

    def p_value(self, head: str, score: float) -> float:
        """One head's conformal p-value (the Platt map reads its head's alone)."""
        return self.conformal[head].p_value(score)
