"""One check of one asset, up to the fused verdict: the single path every caller goes through.

    grab frames -> frame health -> vision evidence -> + sensor evidence -> fusion -> Assessment

``Service.check`` (the loop) stores, escalates, alerts and publishes what this returns;
``edgewatch check`` builds an ``Asset`` for one image file and escalates it at once; the ELPV
benchmark scores through ``edgewatch check``. So a frame judged by hand, in a benchmark or by the
running service gets the same p-value from the same stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edge.errors import SourceError
from edge.evidence import Evidence, Verdict
from edge.frames.frame import Frame
from edge.service.stages import Asset, VisionStage
from edge.sources.health import unavailable


@dataclass(frozen=True)
class Assessment:
    """What one check found, before anything is stored or sent."""

    verdict: Verdict
    frames: tuple[Frame, ...]  # most telling first: the worst scored frame, then fit ones, then unfit ones
    anomaly_map: np.ndarray | None  # of the top frame, when it was scored
    vision: VisionStage | None = field(default=None, repr=False)

    def embedding(self) -> np.ndarray | None:
        """The top frame's camera's last embedding, what escalation learns from: read only when escalating."""
        return self.vision.last_embedding(self.frames[0].camera) if self.vision is not None and self.frames else None


def assess(asset: Asset, wall_clock: Callable[[], float], learn: bool = True) -> Assessment:
    """Judge ``asset`` once; ``wall_clock`` stamps what happens when it happens (the verdict when it
    is fused, so frame-to-verdict latency is what the check took). ``learn=False`` (planned
    maintenance) keeps the sensors' learned baselines as they were. A camera that cannot deliver
    becomes evidence saying why; an unfit frame (black, blurred, frozen) is not scored, as it would
    say nothing true."""
    evidence: list[Evidence] = []
    frames: list[tuple[int, Frame]] = []  # (severity rank of what the frame showed, frame); -1: unfit
    for camera in asset.cameras:
        try:
            frame = camera.grab()
        except SourceError as exc:
            evidence.append(unavailable(camera.name, str(exc), wall_clock()))
            continue
        health = asset.frame_health.get(camera.name)
        problem = health.check(frame) if health is not None else None
        if problem is not None:
            evidence.append(problem)
            frames.append((-1, frame))
            continue
        seen = asset.vision(frame) if asset.vision is not None else None
        if seen is not None:
            evidence.append(seen)
        frames.append((seen.condition.rank if seen is not None and seen.condition is not None else 0, frame))
    if asset.sensors is not None:
        evidence.extend(asset.sensors.evidence(learn=learn))
    verdict = asset.fusion(evidence, wall_clock())
    ranked = tuple(frame for _, frame in sorted(frames, key=lambda item: -item[0]))
    scored = bool(frames) and max(rank for rank, _ in frames) >= 0  # the top frame was scored, not unfit
    anomaly_map = asset.vision.last_anomaly_map(ranked[0].camera) if asset.vision is not None and scored else None
    return Assessment(verdict, ranked, anomaly_map, asset.vision)
