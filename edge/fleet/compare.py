"""Before a switch: enroll an asset's profile for the new model from its kept normal frames, and
measure how often the old and the new model agree on them.

Agreement counts kept frames on which both models reach the same condition (ok, warning, fault).
The frames were judged ``ok`` by the running model, so a new model that calls many of them
abnormal would raise false alarms on that machine: ``fleet.min_agreement`` refuses such a release
before anything is switched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from edge.errors import InputError
from edge.vision.encoder import ImageEncoder
from edge.vision.enrollment import MIN_NORMAL_FRAMES, build_profile
from edge.vision.evidence import to_evidence
from edge.vision.pipeline import VisionScorer, embed_many
from edge.vision.profile import Profile, bundle_fingerprint, save_profile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Agreement:
    frames: int
    agreeing: int

    @property
    def ratio(self) -> float:
        return self.agreeing / self.frames if self.frames else 1.0

    def to_dict(self) -> dict[str, float]:
        return {"frames": self.frames, "agreeing": self.agreeing, "ratio": round(self.ratio, 3)}


def enroll(encoder: ImageEncoder, frames: list[Path], out: Path, asset_id: str) -> Profile:
    """A profile for ``encoder``'s bundle from kept normal frames, written to ``out``."""
    if len(frames) < MIN_NORMAL_FRAMES:
        raise InputError(f"asset {asset_id}: its profile was enrolled with another model and only {len(frames)} "
                         f"normal frames are kept to enroll again (at least {MIN_NORMAL_FRAMES}); let it run "
                         "longer on the current release, or enroll it for the new bundle by hand")
    embeddings, patches = embed_many(encoder, frames)
    profile = build_profile(bundle_fingerprint(encoder.bundle), embeddings, patches,
                            top_share=encoder.bundle.manifest.image_model.patch_top_share)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_profile(profile, out)
    log.info("fleet: asset %s enrolled for %s from %d kept frames", asset_id, encoder.bundle.root, len(frames))
    return profile


def agreement(old: VisionScorer, new: VisionScorer, frames: list[Path]) -> Agreement:
    """How many of ``frames`` both scorers judge the same (each frame scored on its own)."""
    agreeing = 0
    for path in frames:
        before = to_evidence(old.score(path), "kept").condition
        after = to_evidence(new.score(path), "kept").condition
        agreeing += before is after
    return Agreement(len(frames), agreeing)
