"""Few-shot references: a handful of labelled example frames per condition, scored by prototype.

Each condition's prototype is the normalised mean of its examples' embeddings; a frame's class
probabilities are a softmax over its cosine similarity to every prototype. The softmax
temperature is fitted on the enrolled examples themselves by leave-one-out (each example is
scored against prototypes built without it), so the probabilities are calibrated for this
backbone and this asset instead of borrowing CLIP's logit scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.vision.encoder import l2_normalise, softmax

DEFAULT_SCALE = 10.0
_SCALES = np.geomspace(1.0, 300.0, 60)


@dataclass(frozen=True)
class FewShotHead:
    names: tuple[str, ...]
    prototypes: np.ndarray  # (K, D) float32, unit rows
    scale: float  # softmax inverse temperature fitted by leave-one-out

    @classmethod
    def fit(cls, embeddings: np.ndarray, label_ids: np.ndarray, names: tuple[str, ...]) -> FewShotHead:
        """(N, D) unit embeddings with (N,) class indices into ``names`` -> a fitted head."""
        classes = len(names)
        counts = np.bincount(label_ids, minlength=classes)
        if classes < 2 or (counts == 0).any():
            found = dict(zip(names, counts.tolist(), strict=True))
            raise ValueError(f"few-shot needs at least two classes with examples, got counts {found}")
        sums = np.stack([embeddings[label_ids == k].sum(axis=0) for k in range(classes)])  # (K, D)
        prototypes = l2_normalise(sums)
        return cls(names=names, prototypes=prototypes, scale=_fit_scale(embeddings, label_ids, sums, counts))

    def probabilities(self, embedding: np.ndarray) -> dict[str, float]:
        """(D,) unit embedding -> {condition: probability}, summing to 1."""
        probs = softmax(self.scale * (self.prototypes @ embedding))
        return {name: float(p) for name, p in zip(self.names, probs, strict=True)}


def _fit_scale(embeddings: np.ndarray, label_ids: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> float:
    """The softmax scale minimising leave-one-out negative log-likelihood over the examples."""
    usable = counts[label_ids] > 1  # an example alone in its class has no prototype without it
    if not usable.any():
        return DEFAULT_SCALE
    x, y = embeddings[usable], label_ids[usable]
    similarity = x @ l2_normalise(sums).T  # (n, K) against full prototypes
    own_sum = sums[y] - x  # the example's own class prototype without it
    similarity[np.arange(len(y)), y] = (l2_normalise(own_sum) * x).sum(axis=1)
    losses = [-np.log(softmax(scale * similarity)[np.arange(len(y)), y] + 1e-12).mean() for scale in _SCALES]
    return float(_SCALES[int(np.argmin(losses))])
