"""Helpers for escalation tests: hand-made fused verdicts, configs pointing at the local server, camera images."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from edge.escalation.config import EscalationConfig
from edge.evidence import Condition, Evidence, EvidenceKind
from edge.fusion.config import FusionConfig
from edge.fusion.fuse import FusionResult, fuse


def camera_image(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A smooth random scene (noise blocks, bilinear): JPEG-compressible like a camera's, distinct per seed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1] // 40, size[0] // 40, 3), dtype=np.uint8)
    return Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)


def config_for(url: str, **overrides: Any) -> EscalationConfig:
    """Escalation on, at ``url``, with fast timings; nested sections given as dicts."""
    settings: dict[str, Any] = {
        "enabled": True, "base_url": url, "model": "gpt-4o", "timeout_s": 5.0, "max_retries": 0,
        "policy": {"cooldown_s": 3600.0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return EscalationConfig.model_validate(settings)


def unsure(asset: str = "pump", fault_type: str = "outer_race", confidence: float = 0.55) -> FusionResult:
    """A fused result the policy escalates: vision ok, vibration warning, low confidence."""
    evidence = [
        Evidence("vision:top", EvidenceKind.VISION, Condition.OK, 0.6, reasons=("vision: 'normal' p=0.60",)),
        Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition.WARNING, confidence,
                 reasons=("zone C, 5.2 mm/s",), values={"velocity_rms_mm_s": 5.2, "zone": "C"},
                 fault_type=fault_type),
    ]
    return fuse(asset, evidence, FusionConfig(), 1000.0)


def sure_ok(asset: str = "pump") -> FusionResult:
    evidence = [Evidence("vision:top", EvidenceKind.VISION, Condition.OK, 0.95),
                Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition.OK, 0.95)]
    return fuse(asset, evidence, FusionConfig(), 1000.0)
