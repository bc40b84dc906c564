"""The asset's recent frames for the cloud: a sliding window kept as checks run, bounded when sent.

One frame rarely shows a leak growing or smoke starting; the last few do. Each check's frames are
prepared for the cloud as they arrive (downscaled per ``detail``, JPEG: a 512-px frame is ~40 kB,
so 20 of them cost a board ~1 MB, not the ~50 MB of raw 1024-px frames). An escalation sends the
newest frames whose image tokens and price stay within ``max_image_tokens`` and ``max_image_usd``,
oldest first, with a caption saying when each was taken.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from edge.escalation.budget import price
from edge.escalation.config import ModelPricing
from edge.escalation.images import PreparedImage, image_tokens


@dataclass(frozen=True)
class WindowFrame:
    image: PreparedImage
    timestamp: float  # UNIX time the frame was grabbed
    camera: str


class FrameWindow:
    """The last ``size`` prepared frames of each asset; safe to share between check threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._frames: dict[str, deque[WindowFrame]] = {}
        self._lock = threading.Lock()

    def add(self, asset_id: str, frames: Sequence[WindowFrame]) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._frames.setdefault(asset_id, deque(maxlen=self.size)).extend(frames)

    def recent(self, asset_id: str) -> list[WindowFrame]:
        """Oldest first."""
        with self._lock:
            return list(self._frames.get(asset_id, ()))


def fit(frames: Sequence[WindowFrame], pricing: ModelPricing, max_tokens: int, max_usd: float) -> list[WindowFrame]:
    """The newest frames (oldest first) whose image tokens and their price stay within both caps."""
    chosen: list[WindowFrame] = []
    tokens = 0
    for frame in reversed(frames):
        more = tokens + image_tokens(frame.image.width, frame.image.height, frame.image.detail, pricing)
        if more > max_tokens or price(pricing, more, 0).usd > max_usd:
            break
        chosen.append(frame)
        tokens = more
    return chosen[::-1]


def caption(frames: Sequence[WindowFrame]) -> str:
    """One line telling the model what the attached frames are, so it can judge change over time."""
    if len(frames) < 2:
        return ""
    newest = frames[-1].timestamp
    when = ", ".join(f"{frame.camera} {frame.timestamp - newest:+.0f} s" for frame in frames)
    return f"{len(frames)} frames are attached, oldest first, taken at (camera, seconds from the newest): {when}."
