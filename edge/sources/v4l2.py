"""USB / V4L2 cameras through PyAV, asking for MJPEG so the camera delivers full size at full rate."""

from __future__ import annotations

import logging

from edge.errors import SourceError
from edge.sources._av import LatestFrameReader, StreamCamera
from edge.sources.config import V4l2Camera

log = logging.getLogger(__name__)

_OPEN_TIMEOUT_S = 5.0


class V4l2Source(StreamCamera):
    config: V4l2Camera

    def _open(self) -> None:
        size = {"video_size": f"{self.config.width}x{self.config.height}"}
        try:
            self._reader = LatestFrameReader(self.name, self.config.device, _OPEN_TIMEOUT_S, format="v4l2",
                                             options={**size, "input_format": "mjpeg"})
        except SourceError as exc:  # some cameras only do raw YUYV
            log.info("camera %s: MJPEG not available (%s); using the camera's raw format", self.name, exc)
            self._reader = LatestFrameReader(self.name, self.config.device, _OPEN_TIMEOUT_S, format="v4l2",
                                             options=size)
