"""Labels file (YAML) -> one prompt-ensemble text embedding per label, so the board needs no text model.

Each label's prompts go through the text tower; their embeddings are L2-normalised, averaged and
normalised again (CLIP's prompt ensembling), giving a (L, D) float32 matrix saved as ``.npy``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from pydantic import Field, field_validator

from edge.bundle.manifest import Label
from edge.config.loader import load_model
from edge.config.section import Section
from export.towers import TextSide

log = logging.getLogger(__name__)

DEFAULT_LABELS = Path(__file__).with_name("default_labels.yaml")


class LabelsFile(Section):
    labels: list[Label] = Field(min_length=1, description="Conditions the camera should recognise.")

    @field_validator("labels")
    @classmethod
    def _unique_names(cls, labels: list[Label]) -> list[Label]:
        names = [label.name for label in labels]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"label names must be unique; repeated: {', '.join(duplicates)}")
        return labels


def load_labels(path: Path | None) -> list[Label]:
    """Read a labels file (the built-in set when ``path`` is None); errors are ConfigErrors with the key path."""
    return load_model(path or DEFAULT_LABELS, LabelsFile).labels


def embed_labels(labels: list[Label], text: TextSide) -> np.ndarray:
    """(L, D) float32: per label, the normalised mean of its normalised prompt embeddings."""
    rows = []
    with torch.no_grad():
        for label in labels:
            prompts = text.tower(text.token_ids(label.prompts)).numpy()  # (P, D)
            prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
            mean = prompts.mean(axis=0)
            rows.append(mean / np.linalg.norm(mean))
    log.info("embedded %d labels from %d prompts", len(labels), sum(len(label.prompts) for label in labels))
    return np.stack(rows).astype(np.float32)
