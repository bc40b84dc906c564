"""RTSP network cameras (and any URL FFmpeg opens): newest frame kept, older ones dropped."""

from __future__ import annotations

from edge.sources._av import LatestFrameReader, StreamCamera
from edge.sources.config import RtspCamera


class RtspSource(StreamCamera):
    config: RtspCamera

    def _open(self) -> None:
        options: dict[str, str] = {}
        if self.config.url.startswith("rtsp"):
            options["rtsp_transport"] = self.config.transport
        self._reader = LatestFrameReader(self.name, self.config.url, self.config.timeout_s, options=options)
