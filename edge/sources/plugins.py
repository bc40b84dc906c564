"""The camera plug-ins: config ``type`` -> the class that grabs its frames (``edge.plugins``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from edge import plugins
from edge.sources.base import Camera
from edge.sources.config import CameraBase

# camera ``type`` -> "module:class"
PLUGINS: dict[str, str] = {
    "folder": "edge.sources.folder:FolderSource",
    "http": "edge.sources.http:HttpSnapshotSource",
    "v4l2": "edge.sources.v4l2:V4l2Source",
    "rtsp": "edge.sources.rtsp:RtspSource",
    "picamera2": "edge.sources.picamera2:Picamera2Source",
}


def make_camera(config: CameraBase, wall_clock: Callable[[], float] = time.time) -> Camera:
    """The (unopened) camera plug-in for ``config``."""
    plugin: type[Camera] = plugins.load(PLUGINS, config.type)  # type: ignore[attr-defined]
    return plugin(config, wall_clock)
