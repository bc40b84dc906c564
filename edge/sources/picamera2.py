"""Raspberry Pi cameras through picamera2, reading the ISP's low-resolution (lores) stream.

The ISP scales the sensor image down in hardware and hands over raw YUV420 planes, so the
board never encodes or decodes a JPEG for a check; we convert the small lores frame to RGB
with numpy. picamera2 comes with Raspberry Pi OS, not from PyPI wheels that work::

    sudo apt install python3-picamera2
    python3 -m venv --system-site-packages /opt/edgewatch   # so the venv sees picamera2
    /opt/edgewatch/bin/pip install edgewatch

It is imported only when a ``picamera2`` camera is configured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.errors import SourceError
from edge.sources.base import Camera
from edge.sources.config import Picamera2Camera
from edge.sources.picamera2_import import import_picamera2


class Picamera2Source(Camera):
    config: Picamera2Camera
    _camera: Any = None

    def _open(self) -> None:
        try:
            picamera2 = import_picamera2()
        except SourceError as exc:
            raise SourceError(f"camera {self.name}: {exc}") from exc
        camera = picamera2(self.config.camera_index)
        try:
            lores = (self.config.lores_width, self.config.lores_height)
            # the main stream must be at least as large as lores; ask for the same size to stay small
            config = camera.create_video_configuration(main={"size": lores}, lores={"size": lores, "format": "YUV420"},
                                                       buffer_count=2)
            camera.configure(config)
            camera.start()
        except Exception:
            camera.close()
            raise
        self._camera = camera

    def _grab(self) -> np.ndarray:
        if self._camera is None:
            raise SourceError(f"camera {self.name} is not open")
        planes = self._camera.capture_array("lores")  # (H * 3 // 2, W) uint8 YUV420 (I420)
        return yuv420_to_rgb(planes, self.config.lores_width, self.config.lores_height)

    def _close(self) -> None:
        if self._camera is not None:
            camera, self._camera = self._camera, None
            try:
                camera.stop()
            finally:
                camera.close()


def yuv420_to_rgb(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """I420 planes (Y full size, then U and V at half size), possibly with row padding
    (stride wider than ``width``) -> (height, width, 3) uint8 RGB, BT.601 limited range."""
    if planes.ndim != 2 or planes.shape[0] != height * 3 // 2 or planes.shape[1] < width:
        raise SourceError(f"a YUV420 {width}x{height} frame must be ({height * 3 // 2}, >={width}), got {planes.shape}")
    stride = planes.shape[1]
    y = planes[:height, :width].astype(np.float32)
    chroma = planes[height:].reshape(-1)  # U then V, each (height/2) rows of stride/2 bytes
    half = (height // 2) * (stride // 2)
    u = chroma[:half].reshape(height // 2, stride // 2)[:, : width // 2]
    v = chroma[half: 2 * half].reshape(height // 2, stride // 2)[:, : width // 2]
    u = np.repeat(np.repeat(u.astype(np.float32) - 128.0, 2, axis=0), 2, axis=1)
    v = np.repeat(np.repeat(v.astype(np.float32) - 128.0, 2, axis=0), 2, axis=1)
    y = (y - 16.0) * 1.164
    rgb = np.stack((y + 1.596 * v, y - 0.392 * u - 0.813 * v, y + 2.017 * u), axis=-1)  # (H, W, 3)
    return np.clip(rgb, 0, 255).astype(np.uint8)
