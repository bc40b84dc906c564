"""An asset's camera stages, built from its camera configs: the vision stage and frame health.

Apart from ``wiring.py`` so that a one-frame check (``edgewatch check``) and the vision benchmarks
build exactly the service's stages without loading the service's other parts (sensor analytics,
escalation, outputs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from edge.evidence import Evidence
from edge.frames.frame import Frame
from edge.frames.roi import RegionOfInterest, apply_roi
from edge.sources.config import CameraBase
from edge.sources.health import FrameHealth
from edge.vision.evidence import to_evidence
from edge.vision.pipeline import VisionResult, VisionScorer
from edge.vision.profile import Profile
from edge.vision.temporal import TemporalContext

if TYPE_CHECKING:
    from edge.fleet.normal import KeepFrame


class CameraVision:
    """The vision stage of one asset: ``VisionScorer.score_frame`` per camera, as evidence.

    ``use_profile`` swaps the heads while the service runs (what the cloud taught, see learning).
    """

    def __init__(self, scorer: VisionScorer, temporal: TemporalContext | None = None,
                 rois: Mapping[str, RegionOfInterest] | None = None, parts: frozenset[str] = frozenset(),
                 keep: KeepFrame | None = None) -> None:
        self.scorer = scorer
        self.temporal = temporal or TemporalContext()
        self.rois = dict(rois or {})  # camera name -> the part of its frame the model judges
        self.parts = parts  # cameras that show another part in every frame: each frame judged alone
        self.keep = keep or (lambda camera, image, seen: None)  # a fleet board keeps normal frames
        self._results: dict[str, VisionResult] = {}

    def __call__(self, frame: Frame) -> Evidence:
        roi = self.rois.get(frame.camera)
        image = frame.image if roi is None else apply_roi(frame.image, roi)
        context = None if frame.camera in self.parts else self.temporal
        result, state = self.scorer.score_frame(image, frame.camera, context)
        self._results[frame.camera] = result
        seen = to_evidence(result, frame.camera, frame.timestamp, state)
        self.keep(frame.camera, image, seen)
        return seen

    def last_result(self, camera: str) -> VisionResult | None:
        """Every head's output behind that camera's last evidence (``edgewatch check`` prints it)."""
        return self._results.get(camera)

    def last_embedding(self, camera: str) -> np.ndarray | None:
        return self.scorer.last_embedding(camera)

    def last_anomaly_map(self, camera: str) -> np.ndarray | None:
        return self.scorer.last_anomaly_map(camera)

    def use_profile(self, profile: Profile) -> None:
        """Judge later frames with ``profile``; safe from another thread (the escalation worker).

        The new scorer starts without cached results: a reused one would carry the old judgement.
        """
        self.scorer = VisionScorer(self.scorer.encoder, profile)


def build_vision(scorer: VisionScorer, cameras: Sequence[CameraBase], keep: KeepFrame | None = None,
                 one_frame: bool = False) -> CameraVision:
    """The vision stage for these cameras: each judges its region of interest; a camera that watches
    parts, and every camera of a ``one_frame`` check (no earlier frames to smooth over), judges each
    frame alone."""
    rois = {camera.name: camera.roi for camera in cameras if camera.roi is not None}
    parts = frozenset(camera.name for camera in cameras if one_frame or camera.watches == "parts")
    return CameraVision(scorer, rois=rois, parts=parts, keep=keep)


def build_frame_health(cameras: Sequence[CameraBase]) -> dict[str, FrameHealth]:
    """Each camera's fitness test (black, blurred, frozen frames), with its own thresholds."""
    return {camera.name: FrameHealth(camera.name, camera.health) for camera in cameras}
