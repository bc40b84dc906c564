"""Live video through PyAV (FFmpeg): the shared engine of the V4L2 and RTSP cameras.

Why PyAV rather than OpenCV-headless: one library covers USB/V4L2 devices and RTSP with
FFmpeg's own options (``rtsp_transport=tcp``, ``input_format=mjpeg``) and real open/read
timeouts (OpenCV's RTSP timeouts depend on how the wheel was built); it hands frames over as
RGB directly (no BGR swap); it lets us demux without decoding; and its wheels (aarch64 too)
are about half the size of OpenCV's. It is an optional extra (``pip install
'edgewatch[video]'``) imported only when such a camera is configured.

A reader thread keeps only the newest frame, so the check always sees "now" rather than a
driver buffer of stale frames, and memory stays flat. For intra-only codecs (MJPEG, raw
V4L2 formats) it keeps the newest *packet* and decodes only on grab: a USB camera at 30 fps
then costs one JPEG decode per check instead of thirty per second.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from edge.errors import SourceError
from edge.sources.base import Camera

log = logging.getLogger(__name__)


def import_av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise SourceError(
            "V4L2 and RTSP cameras need PyAV: pip install 'edgewatch[video]' (or: pip install av)"
        ) from exc
    return av


class LatestFrameReader:
    """Open ``url`` with PyAV and keep decoding in a thread; ``latest()`` returns the newest frame."""

    def __init__(self, camera: str, url: str, timeout_s: float, format: str | None = None,
                 options: dict[str, str] | None = None) -> None:
        av = import_av()
        self.camera = camera
        self.timeout_s = timeout_s
        try:
            self._container = av.open(url, format=format, options=options or {}, timeout=(timeout_s, timeout_s))
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError, OSError) as exc:
            raise SourceError(f"camera {camera}: cannot open {url}: {exc}") from exc
        self._stream.thread_type = "AUTO"
        self._intra_only = bool(self._stream.codec_context.codec.intra_only)
        self._lock = threading.Condition()
        self._newest: Any = None  # an av.Packet (intra-only codecs) or an av.VideoFrame
        self._sequence = 0  # bumps with every new frame
        self._returned = 0  # sequence of the frame last handed out
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        av = import_av()
        try:
            for packet in self._container.demux(self._stream):
                if self._stop.is_set():
                    return
                if self._intra_only:
                    if packet.size:
                        self._publish(packet)
                    continue
                for frame in packet.decode():  # the final empty packet flushes the decoder
                    self._publish(frame)
            self._finish("the stream ended")
        except av.FFmpegError as exc:
            self._finish(f"the stream failed: {exc}")
        except Exception as exc:  # the thread must always report why it stopped
            self._finish(f"the reader stopped: {exc!r}")

    def _publish(self, item: Any) -> None:
        with self._lock:
            self._newest = item
            self._sequence += 1
            self._lock.notify_all()

    def _finish(self, reason: str) -> None:
        with self._lock:
            self._error = reason
            self._lock.notify_all()

    def latest(self) -> np.ndarray:
        """The newest frame not yet returned, waiting up to ``timeout_s`` for one. (H, W, 3) RGB."""
        deadline = time.monotonic() + self.timeout_s
        with self._lock:
            while self._sequence == self._returned and self._error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SourceError(f"camera {self.camera}: no new frame for {self.timeout_s:g} s")
                self._lock.wait(left)
            if self._sequence == self._returned:
                raise SourceError(f"camera {self.camera}: {self._error}")
            item, self._returned = self._newest, self._sequence
        frames = item.decode() if self._intra_only else [item]
        if not frames:
            raise SourceError(f"camera {self.camera}: a packet did not decode to a frame")
        return frames[-1].to_ndarray(format="rgb24")

    def close(self) -> None:
        """Stop the reader, then close the container from this thread. Closing it under a running
        demux could free what FFmpeg is still reading; the read timeout bounds the wait instead."""
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 1.0)
        if self._thread.is_alive():
            log.warning("camera %s: the stream reader did not stop; leaving its connection to the OS", self.camera)
            return
        try:
            self._container.close()
        except Exception as exc:
            log.debug("camera %s: closing the stream: %s", self.camera, exc)


class StreamCamera(Camera):
    """A camera whose ``_open`` sets ``self._reader``; grabbing and closing are shared."""

    _reader: LatestFrameReader | None = None

    def _grab(self) -> np.ndarray:
        if self._reader is None:
            raise SourceError(f"camera {self.name} is not open")
        return self._reader.latest()

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
