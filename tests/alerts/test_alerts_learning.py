"""Corrections in the learned memory: an "it was OK" on a profile without labels must widen the
normal memory (a one-class few-shot head cannot be fitted), a label makes a few-shot class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.vision.config import LearningConfig
from edge.vision.enrollment import NORMAL_NAME
from edge.vision.learning import LearnedMemory
from edge.vision.profile import Profile


def normal_only() -> Profile:
    memory = np.eye(4, dtype=np.float32)[:3]  # (3, 4) unit embeddings of normal frames
    return Profile(bundle_fingerprint="test", memory=memory, calibration={"knn": np.linspace(0, 1, 11)})


def test_an_ok_correction_widens_the_normal_memory(tmp_path: Path) -> None:
    memory = LearnedMemory(tmp_path, "press-1", LearningConfig(enabled=True, min_confidence=0.0))
    memory.learn(NORMAL_NAME, "ok", np.array([0.0, 0.0, 0.0, 2.0]), "correction-7", 1.0)
    merged = memory.merge_into(normal_only())
    assert merged.memory.shape == (4, 4) and np.allclose(merged.memory[-1], [0, 0, 0, 1])
    assert merged.few_shot_embeddings is None  # no one-class few-shot head


def test_a_label_correction_makes_a_few_shot_class(tmp_path: Path) -> None:
    memory = LearnedMemory(tmp_path, "press-1", LearningConfig(enabled=True, min_confidence=0.0))
    memory.learn(NORMAL_NAME, "ok", np.array([0.0, 0.0, 0.0, 1.0]), "correction-7", 1.0)
    memory.learn("belt wear", "warning", np.array([0.0, 1.0, 1.0, 0.0]), "correction-8", 1.0)
    merged = memory.merge_into(normal_only())
    assert merged.few_shot_names == (NORMAL_NAME, "belt wear")
    assert merged.few_shot_label_ids is not None and list(merged.few_shot_label_ids) == [0, 0, 0, 0, 1]
