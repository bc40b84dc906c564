"""Is a frame fit to be judged? Black, badly blurred and frozen frames become CAMERA_HEALTH evidence.

An unfit frame must not be scored as if it showed the machine: a lens cap would read as "ok"
or as a fault. The evidence has ``condition=None`` so fusion lowers its confidence instead.
Pure numpy on a 128-px grey thumbnail: well under a millisecond per frame on a Pi.
"""

from __future__ import annotations

import hashlib

import numpy as np

from edge.evidence import Evidence, EvidenceKind
from edge.frames.frame import Frame
from edge.sources.config import CameraHealthSettings

THUMBNAIL_PX = 128


class FrameHealth:
    """Judges each camera's frames in turn.

    Frozen means bit-identical frames: a live sensor's noise never repeats exactly, while a
    stalled stream, a hung driver or a camera serving a cached snapshot does. (A thumbnail
    difference threshold would flag a still scene seen by a low-noise camera.)
    """

    def __init__(self, camera: str, settings: CameraHealthSettings) -> None:
        self.camera = camera
        self.settings = settings
        self._previous_digest: bytes | None = None
        self._same_count = 1

    def check(self, frame: Frame) -> Evidence | None:
        """None when the frame is fit to be scored, else CAMERA_HEALTH evidence saying why not."""
        grey = thumbnail(frame.image)  # (<=128, <=128) float32
        values = {"brightness": float(grey.mean()), "sharpness": sharpness(grey)}
        reasons = []
        if values["brightness"] < self.settings.black_below:
            reasons.append(f"camera {self.camera}: frame is black (brightness {values['brightness']:.1f} "
                           f"< {self.settings.black_below:g})")
        elif values["sharpness"] < self.settings.blur_below:
            reasons.append(f"camera {self.camera}: frame is badly blurred (sharpness {values['sharpness']:.1f} "
                           f"< {self.settings.blur_below:g}); clean or refocus the lens")
        digest = hashlib.blake2b(np.ascontiguousarray(frame.image).data, digest_size=16).digest()
        self._same_count = self._same_count + 1 if digest == self._previous_digest else 1
        self._previous_digest = digest
        values["identical_frames"] = self._same_count
        if self._same_count >= self.settings.frozen_after:
            reasons.append(f"camera {self.camera}: frame is frozen ({self._same_count} identical frames)")
        if not reasons:
            return None
        return Evidence(f"camera:{self.camera}", EvidenceKind.CAMERA_HEALTH, None, 0.0, tuple(reasons), values,
                        None, frame.timestamp)


def unavailable(camera: str, reason: str, timestamp: float) -> Evidence:
    """CAMERA_HEALTH evidence for a camera that delivered no frame at all."""
    return Evidence(f"camera:{camera}", EvidenceKind.CAMERA_HEALTH, None, 0.0, (reason,), {}, None, timestamp)


def thumbnail(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> grey float32 with the long side at most THUMBNAIL_PX (box average)."""
    grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (H, W)
    step = max(1, -(-max(grey.shape) // THUMBNAIL_PX))
    height, width = (grey.shape[0] // step) * step, (grey.shape[1] // step) * step
    if step > 1:
        grey = grey[:height, :width].reshape(height // step, step, width // step, step).mean(axis=(1, 3))
    return grey


def sharpness(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: high for edges and texture, near 0 for a blur."""
    if min(grey.shape) < 3:
        return 0.0
    lap = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1])
    return float(lap.var())
