"""Zero-shot labels: cosine similarity to the bundle's label text embeddings, as the model was trained."""

from __future__ import annotations

import numpy as np

from edge.bundle.manifest import Labels
from edge.vision.encoder import softmax


def label_probabilities(embedding: np.ndarray, label_embeddings: np.ndarray, labels: Labels) -> np.ndarray:
    """(D,) L2-normalised image embedding, (L, D) text embeddings -> (L,) probabilities.

    CLIP was trained with a softmax over labels (they compete and sum to 1); SigLIP with an
    independent sigmoid per label plus a learned bias (each is a yes/no question).
    """
    logits = labels.logit_scale * (label_embeddings @ embedding) + labels.logit_bias  # (L,)
    if labels.activation == "softmax":
        return np.asarray(softmax(logits), dtype=np.float64)
    return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)
