"""A verdict with numpy values in its evidence and an unhealthy camera: what history must round-trip."""

from __future__ import annotations

import numpy as np

from edge.evidence import Condition, Evidence, EvidenceKind, Verdict


def make_verdict(asset: str = "pump-1", ts: float = 1000.0, condition: Condition = Condition.OK) -> Verdict:
    evidence = (
        Evidence("vision:top", EvidenceKind.VISION, condition, 0.9, ("looks fine",),
                 {"anomaly_score": np.float32(0.25), "patch": np.array([1, 2])}, None, ts),
        Evidence("camera:top", EvidenceKind.CAMERA_HEALTH, None, 0.0, ("frame is black",), {}, None, ts),
    )
    return Verdict(asset, condition, 0.8, ("vision says so",), evidence, ts)
