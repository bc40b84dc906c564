"""Temporal context per camera: one odd frame must not flip a verdict, a static scene is not re-scored.

Each camera keeps its last N anomaly probabilities (default 20). The decision uses the median
of the most recent few (robust to one glitch frame) with hysteresis: the state turns anomalous
above ``on_threshold`` and only returns to normal below ``off_threshold``. Near-duplicate frames
(a 16x16 grey thumbnail that barely changed since the last scored frame) reuse the last result,
which saves the whole inference on a machine that is standing still.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TemporalSettings:
    window_frames: int = 20
    smooth_frames: int = 5
    on_threshold: float = 0.7
    off_threshold: float = 0.4
    duplicate_mean_abs_diff: float = 0.01  # on [0, 1] grey thumbnails; sensor noise is ~0.002
    max_skipped_frames: int = 10  # re-score a static scene at least this often

    def __post_init__(self) -> None:
        if not 0.0 <= self.off_threshold <= self.on_threshold <= 1.0:
            raise ValueError("need 0 <= off_threshold <= on_threshold <= 1")
        if not 1 <= self.smooth_frames <= self.window_frames:
            raise ValueError("need 1 <= smooth_frames <= window_frames")


@dataclass(frozen=True)
class TemporalState:
    smoothed_p_anomaly: float
    anomalous: bool
    frames: int  # frames in the window
    anomalous_fraction: float  # share of window frames with p_anomaly >= on_threshold


@dataclass
class CameraWindow:
    settings: TemporalSettings
    history: deque[float] = field(init=False)
    anomalous: bool = False
    last_thumbnail: np.ndarray | None = None
    skipped: int = 0

    def __post_init__(self) -> None:
        self.history = deque(maxlen=self.settings.window_frames)

    def is_duplicate(self, thumbnail: np.ndarray) -> bool:
        """True when this frame may reuse the last result (and counts the skip)."""
        if self.last_thumbnail is None or self.skipped >= self.settings.max_skipped_frames:
            return False
        if float(np.abs(thumbnail - self.last_thumbnail).mean()) > self.settings.duplicate_mean_abs_diff:
            return False
        self.skipped += 1
        return True

    def update(self, p_anomaly: float, thumbnail: np.ndarray | None = None) -> TemporalState:
        """Add a scored frame and return the smoothed, hysteresis-filtered state."""
        if thumbnail is not None:
            self.last_thumbnail = thumbnail
            self.skipped = 0
        self.history.append(float(p_anomaly))
        recent = list(self.history)[-self.settings.smooth_frames:]
        smoothed = float(np.median(recent))
        if self.anomalous and smoothed <= self.settings.off_threshold:
            self.anomalous = False
        elif not self.anomalous and smoothed >= self.settings.on_threshold:
            self.anomalous = True
        high = sum(value >= self.settings.on_threshold for value in self.history)
        return TemporalState(smoothed_p_anomaly=smoothed, anomalous=self.anomalous, frames=len(self.history),
                             anomalous_fraction=high / len(self.history))


@dataclass
class TemporalContext:
    """Windows for every camera, created on first use."""

    settings: TemporalSettings = field(default_factory=TemporalSettings)
    windows: dict[str, CameraWindow] = field(default_factory=dict)

    def window(self, camera: str) -> CameraWindow:
        if camera not in self.windows:
            self.windows[camera] = CameraWindow(self.settings)
        return self.windows[camera]
