"""Capture enrolment frames through the camera path the service uses, keeping only frames fit to judge.

The same plug-in, downscaling and frame-health thresholds as ``edgewatch run``: a profile enrolled
from these frames sees the machine exactly as the service will. Black, blurred and frozen frames
(``edge.sources.health``) and failed grabs are skipped, not saved, and do not count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from edge.errors import InputError, SourceError, StorageError
from edge.files import write_atomically
from edge.sources.config import CameraBase
from edge.sources.health import FrameHealth
from edge.sources.plugins import make_camera

log = logging.getLogger(__name__)

TRIES_PER_FRAME = 3  # a camera that gives fewer fit frames than one in three is not worth enrolling from


@dataclass
class CaptureReport:
    """What one capture saved, and why the other grabs were skipped (one sentence each)."""

    saved: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def capture(
    camera_config: CameraBase,
    count: int,
    every_s: float,
    out: Path,
    *,
    prefix: str = "",
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], float] = time.time,
) -> CaptureReport:
    """Save ``count`` fit frames of one camera into ``out`` as PNG (lossless), one every ``every_s``.

    Gives up after ``TRIES_PER_FRAME * count`` grabs with an error listing why frames were skipped.
    """
    out.mkdir(parents=True, exist_ok=True)
    health = FrameHealth(camera_config.name, camera_config.health)
    report = CaptureReport()
    tries = 0
    with make_camera(camera_config, wall_clock) as camera:
        while len(report.saved) < count:
            if tries >= TRIES_PER_FRAME * count:
                reasons = "; ".join(dict.fromkeys(report.skipped))
                raise InputError(f"camera {camera_config.name}: only {len(report.saved)} of {count} frames were fit "
                                 f"to enrol after {tries} grabs ({reasons})")
            if tries:
                sleep(every_s)
            tries += 1
            try:
                frame = camera.grab()
            except SourceError as exc:
                report.skipped.append(str(exc))
                continue
            problem = health.check(frame)
            if problem is not None:
                report.skipped.append("; ".join(problem.reasons))
                continue
            path = out / f"{prefix}{camera_config.name}-{int(frame.timestamp * 1000)}-{len(report.saved):04d}.png"
            _save_png(frame.image, path)
            report.saved.append(path)
            log.info("camera %s: frame %d of %d saved to %s", camera_config.name, len(report.saved), count, path)
    return report


def _save_png(image: np.ndarray, path: Path) -> None:
    """Atomically: an interrupted capture never leaves half a frame to enrol."""
    try:  # (H, W, 3) uint8 RGB
        write_atomically(path, lambda handle: Image.fromarray(image).save(handle, format="PNG"), mode=0o644)
    except OSError as exc:
        raise StorageError(f"cannot save captured frame {path}: {exc}") from exc
