"""The normal frames a board keeps so that a new model can be checked and enrolled on the board.

Each asset keeps, under ``<state_dir>/fleet/normal/<asset>/``, the last few frames its running model
judged ``ok`` with confidence (as the model saw them, after the camera's ROI), at most one per
interval so that they span the shifts and the light of a day rather than one minute. A rollout
scores them with the old and the new model (agreement), and enrolls from them when a profile does
not fit the new model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.evidence import Condition, Evidence
from edge.files import write_atomically
from edge.fleet.config import FleetSettings

log = logging.getLogger(__name__)

NORMAL_DIR = "normal"
KeepFrame = Callable[[str, np.ndarray, Evidence], None]  # (camera, the image as the model judged it, its evidence)


def normal_folder(state_dir: Path, asset_id: str) -> Path:
    return state_dir / "fleet" / NORMAL_DIR / asset_id


def kept_frames(folder: Path) -> list[Path]:
    """The kept frames, oldest first (their names start with the time they were taken)."""
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


class NormalFrames:
    """``keep`` is the vision stage's hook: called with each scored frame and what the model said."""

    def __init__(self, folder: Path, max_frames: int, min_confidence: float, interval_s: float) -> None:
        self.folder = folder
        self.max_frames = max_frames
        self.min_confidence = min_confidence
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last_kept = -float("inf")  # monotonic

    def keep(self, camera: str, image: np.ndarray, seen: Evidence) -> None:
        if seen.condition is not Condition.OK or seen.confidence < self.min_confidence:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._last_kept < self.interval_s:
                return
            self._last_kept = now
        from PIL import Image

        target = self.folder / f"{time.time_ns():020d}-{camera}.png"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomically(target, lambda handle: Image.fromarray(np.ascontiguousarray(image)).save(handle, "PNG"))
            for old in kept_frames(self.folder)[:-self.max_frames]:
                old.unlink()
        except OSError as exc:  # a full disk costs this frame, never the check
            log.warning("fleet: normal frame not kept in %s: %s", self.folder, exc)


def normal_keeper(fleet: FleetSettings, state_dir: Path, asset_id: str) -> KeepFrame | None:
    """The vision stage's hook on a fleet board (``fleet.keep_normal_frames``); None otherwise."""
    if not fleet.enabled or fleet.keep_normal_frames == 0:
        return None
    return NormalFrames(normal_folder(state_dir, asset_id), fleet.keep_normal_frames,
                        fleet.keep_min_confidence, fleet.keep_interval_s).keep
