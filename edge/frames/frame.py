"""One camera frame and the early downscale every source applies: shared by cameras, vision, history and escalation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One camera frame: ``image`` is (H, W, 3) uint8 RGB; ``timestamp`` is unix seconds."""

    image: np.ndarray
    timestamp: float
    camera: str


def downscale(image: np.ndarray, max_px: int) -> np.ndarray:
    """Shrink (H, W, 3) so its long side is at most ``max_px``; smaller images pass unchanged."""
    height, width = image.shape[:2]
    if max(height, width) <= max_px:
        return image
    from PIL import Image

    scale = max_px / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
