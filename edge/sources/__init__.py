"""Frame sources: cameras (picamera2, V4L2/RTSP, HTTP snapshot) and folder replay.

``make_camera(config)`` builds the plug-in for a camera config; each plug-in module is imported
only when a camera of its type is configured, so PyAV and picamera2 stay optional.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

from edge.sources.base import Camera, CameraHealth, Frame, Reconnecting
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
    module_name, class_name = PLUGINS[config.type].split(":")  # type: ignore[attr-defined]
    plugin: type[Camera] = getattr(importlib.import_module(module_name), class_name)
    return plugin(config, wall_clock)


__all__ = ["PLUGINS", "Camera", "CameraHealth", "Frame", "Reconnecting", "make_camera"]
