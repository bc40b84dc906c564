"""Before a switch: enrolling from kept normal frames, and the agreement of two models on them, on the
demo bundle's real encoder and the demo camera's frames."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.bundle.load import load_bundle
from edge.errors import InputError
from edge.evidence import Condition, Evidence, EvidenceKind
from edge.fleet.compare import agreement, enroll
from edge.fleet.normal import NormalFrames, kept_frames
from edge.vision.encoder import ImageEncoder
from edge.vision.pipeline import VisionScorer
from edge.vision.profile import load_profile
from tests.service_support import DEMO_DIR

FRAMES = sorted((DEMO_DIR / "frames").glob("*.jpg"))
NORMAL = [path for path in FRAMES if "normal" in path.name]
HOT = DEMO_DIR / "frames" / "03-hot.jpg"


@pytest.fixture(scope="module")
def encoder() -> ImageEncoder:
    return ImageEncoder.load(load_bundle(DEMO_DIR / "bundle"))


def test_a_profile_is_enrolled_from_kept_frames_for_the_new_bundle(encoder: ImageEncoder, tmp_path: Path) -> None:
    out = tmp_path / "profiles" / "press-1.npz"
    enroll(encoder, NORMAL, out, "press-1")
    assert load_profile(out, encoder.bundle).info["normal_frames"] == len(NORMAL)
    with pytest.raises(InputError, match="only 3 normal frames are kept"):
        enroll(encoder, NORMAL[:3], tmp_path / "few.npz", "press-1")


def test_agreement_counts_the_frames_both_models_judge_alike(encoder: ImageEncoder, tmp_path: Path) -> None:
    running = VisionScorer(encoder)  # zero-shot: the normal panels are ok, the red-hot one a fault
    assert agreement(running, VisionScorer(encoder), [*NORMAL, HOT]).agreeing == len(NORMAL) + 1
    hot_copies = []
    for index in range(4):
        hot_copies.append(tmp_path / f"hot-{index}.jpg")
        shutil.copy(HOT, hot_copies[-1])
    # a "model" that learned the red-hot panel as normal: it calls the normal ones abnormal
    upside_down = VisionScorer(encoder, enroll(encoder, hot_copies, tmp_path / "hot.npz", "press-1"))
    measured = agreement(running, upside_down, NORMAL)
    assert measured.frames == len(NORMAL) and measured.agreeing == 0 and measured.ratio == 0.0


def test_only_confident_ok_frames_are_kept_and_only_the_last_ones(tmp_path: Path) -> None:
    keeper = NormalFrames(tmp_path / "normal", max_frames=3, min_confidence=0.8, interval_s=0)
    image = np.zeros((8, 8, 3), np.uint8)
    for condition, confidence in [(Condition.OK, 0.9)] * 5 + [(Condition.OK, 0.5), (Condition.WARNING, 0.99)]:
        keeper.keep("panel", image, Evidence("vision:panel", EvidenceKind.VISION, condition, confidence))
    assert len(kept_frames(tmp_path / "normal")) == 3
    spaced = NormalFrames(tmp_path / "spaced", max_frames=3, min_confidence=0.8, interval_s=3600)
    for _ in range(3):
        spaced.keep("panel", image, Evidence("vision:panel", EvidenceKind.VISION, Condition.OK, 0.9))
    assert len(kept_frames(tmp_path / "spaced")) == 1
