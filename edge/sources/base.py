"""The one camera interface: open -> grab -> close, plus health; every plug-in implements it.

A plug-in subclasses ``Camera`` and implements ``_open``, ``_grab`` (one RGB frame) and
``_close``; the base class adds the context manager, early downscaling, health bookkeeping and
the translation of any library error into ``SourceError``. ``Reconnecting`` wraps any camera
so that a disconnect is retried with exponential backoff without blocking the caller.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge.errors import InputError, SourceError
from edge.frames.frame import Frame, downscale
from edge.sources.config import CameraBase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraHealth:
    """What ``health()`` reports: whether the camera is delivering, and why not."""

    camera: str
    connected: bool
    frames: int  # frames delivered since the process started
    consecutive_failures: int
    last_frame_at: float | None  # unix seconds
    last_error: str | None


class Camera(ABC):
    """Base of every camera plug-in; use it as a context manager so the device is released."""

    def __init__(self, config: CameraBase, wall_clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.name = config.name
        self.resize_max_px = config.resize_max_px
        self._wall_clock = wall_clock
        self._opened = False
        self._frames = 0
        self._failures = 0
        self._last_frame_at: float | None = None
        self._last_error: str | None = None

    @abstractmethod
    def _open(self) -> None:
        """Acquire the device or connection; raise SourceError (or any library error) on failure."""

    @abstractmethod
    def _grab(self) -> np.ndarray:
        """Return the newest frame as an RGB uint8 array (H, W, 3)."""

    @abstractmethod
    def _close(self) -> None:
        """Release the device; must not raise for an already broken connection."""

    def open(self) -> None:
        if self._opened:
            return
        try:
            self._open()
        except SourceError as exc:
            self._fail(str(exc))
            raise
        except Exception as exc:  # a library error: translated here, at the boundary
            self._fail(f"camera {self.name}: cannot open: {exc}")
            raise SourceError(f"camera {self.name}: cannot open: {exc}") from exc
        self._opened = True

    def grab(self) -> Frame:
        """Grab one frame now, downscaled to ``resize_max_px``; raises SourceError on failure."""
        if not self._opened:
            self.open()
        try:
            image = self._grab()
        except SourceError as exc:
            self._fail(str(exc))
            raise
        except Exception as exc:
            self._fail(f"camera {self.name}: grab failed: {exc}")
            raise SourceError(f"camera {self.name}: grab failed: {exc}") from exc
        image = _as_rgb(image, self.name)
        image = downscale(image, self.resize_max_px)
        now = self._wall_clock()
        self._frames += 1
        self._failures = 0
        self._last_frame_at = now
        self._last_error = None
        return Frame(image, now, self.name)

    def close(self) -> None:
        if self._opened:
            self._opened = False
            try:
                self._close()
            except Exception as exc:  # releasing a broken device must not hide why it broke
                log.debug("camera %s: error while closing: %s", self.name, exc)

    def health(self) -> CameraHealth:
        return CameraHealth(self.name, self._opened and self._failures == 0, self._frames, self._failures,
                            self._last_frame_at, self._last_error)

    def _fail(self, message: str) -> None:
        self._failures += 1
        self._last_error = message

    def __enter__(self) -> Camera:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Reconnecting:
    """A camera that reopens itself after failures, with exponential backoff.

    ``grab`` never sleeps: while waiting for the next attempt it raises SourceError at once,
    so one dead camera never holds up a check. The outage is logged once when it starts and
    once when the camera comes back.
    """

    def __init__(self, camera: Camera, initial_backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.camera = camera
        self.name = camera.name
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._monotonic = monotonic
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._down = False

    def grab(self) -> Frame:
        now = self._monotonic()
        if now < self._retry_at:
            raise SourceError(
                f"camera {self.name} is down ({self.camera.health().last_error}); "
                f"next reconnect in {self._retry_at - now:.0f} s"
            )
        try:
            frame = self.camera.grab()
        except SourceError as exc:
            self.camera.close()  # the next grab reopens
            self._backoff_s = min(self._max_backoff_s, max(self._initial_backoff_s, 2 * self._backoff_s))
            self._retry_at = now + self._backoff_s
            if not self._down:
                log.warning("%s; retrying with backoff", exc)
                self._down = True
            raise
        if self._down:
            log.warning("camera %s is back", self.name)
        self._down = False
        self._backoff_s = 0.0
        self._retry_at = 0.0
        return frame

    def health(self) -> CameraHealth:
        return self.camera.health()

    def close(self) -> None:
        self.camera.close()

    def __enter__(self) -> Reconnecting:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _as_rgb(image: np.ndarray, camera: str) -> np.ndarray:
    if image.ndim == 2:  # grayscale cameras and images
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise SourceError(f"camera {camera} delivered a {image.shape} {image.dtype} array, not an RGB image")
    return np.ascontiguousarray(image)


def decode_image(data: bytes, max_px: int, what: str) -> np.ndarray:
    """JPEG/PNG/WEBP bytes -> (H, W, 3) uint8 RGB through the one frame decoder, as a SourceError when
    unreadable or too large (the service turns it into camera evidence saying why)."""
    from edge.frames.decode import decode_frame

    try:
        return decode_frame(data, what, max_px)
    except InputError as exc:
        raise SourceError(str(exc)) from exc
