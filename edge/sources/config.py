"""Camera config: a discriminated union on ``type``; each plug-in reads only its own fields."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edge.config.section import ConfigPath, Section
from edge.frames.roi import RegionOfInterest


class CameraHealthSettings(Section):
    """When a frame is too dark, too blurred or frozen to be judged (see edge/sources/health.py)."""

    black_below: float = Field(
        12.0, ge=0, le=255, description="Mean brightness (0-255) below which a frame counts as black."
    )
    blur_below: float = Field(
        4.0, ge=0, description="Sharpness (variance of the Laplacian at 128 px) below which a frame is badly blurred; "
        "'edgewatch doctor' prints each camera's value."
    )
    frozen_after: int = Field(
        3, ge=2, description="This many identical frames in a row mean the camera is frozen."
    )


class CameraBase(Section):
    name: str = Field(description="Camera name, unique within its asset.", min_length=1)
    resize_max_px: int = Field(
        1024, gt=0, description="Frames are downscaled to at most this long side as early as possible."
    )
    health: CameraHealthSettings = Field(
        default_factory=CameraHealthSettings, description="Thresholds for black, blurred and frozen frames."
    )
    roi: RegionOfInterest | None = Field(
        None, description="Part of the frame the model judges ('rect' or 'polygon', fractions of the frame); "
                          "enroll with the same region (edgewatch enroll --roi)."
    )
    watches: Literal["machine", "parts"] = Field(
        "machine", description="'machine': one scene over time, so one odd frame is outvoted by its neighbours "
        "(median of recent frames) and a near-identical frame reuses the last score; 'parts': every frame shows "
        "another part (an inspection camera on a line's output), so each frame is judged on its own."
    )


class FolderCamera(CameraBase):
    type: Literal["folder"] = Field(description="Replay image files from a folder, in name order.")
    path: ConfigPath = Field(description="Folder (or glob pattern) of JPEG/PNG/WEBP images.")
    loop: bool = Field(True, description="Start again from the first image after the last.")


class HttpSnapshotCamera(CameraBase):
    type: Literal["http"] = Field(description="Fetch a JPEG snapshot URL (most IP cameras).")
    url: str = Field(description="Snapshot URL, e.g. http://cam.local/snapshot.jpg.")
    timeout_s: float = Field(5.0, gt=0, description="Request timeout.")
    username: str | None = Field(None, description="HTTP basic/digest user, if the camera needs one.")
    password: str | None = Field(None, description="Password; use ${ENV} substitution for secrets.")


class V4l2Camera(CameraBase):
    type: Literal["v4l2"] = Field(description="USB/V4L2 camera.")
    device: str = Field("/dev/video0", description="Device path.")
    width: int = Field(1280, gt=0, description="Requested capture width.")
    height: int = Field(720, gt=0, description="Requested capture height.")


class RtspCamera(CameraBase):
    type: Literal["rtsp"] = Field(description="RTSP stream; the newest frame is kept, older ones dropped.")
    url: str = Field(description="rtsp://user:pass@host:554/stream")
    transport: Literal["tcp", "udp"] = Field(
        "tcp", description="RTP inside the RTSP connection (tcp: passes firewalls and NAT, never loses a packet) "
        "or beside it (udp: lower latency on a clean network, lost packets smear frames).")
    timeout_s: float = Field(10.0, gt=0, description="Open/read timeout: a stream that stalls this long is a "
                             "camera fault in the verdict, and the camera reconnects with backoff.")


class Picamera2Camera(CameraBase):
    type: Literal["picamera2"] = Field(description="Raspberry Pi camera through picamera2 (lores stream).")
    camera_index: int = Field(0, ge=0, description="Which Pi camera.")
    lores_width: int = Field(640, gt=0, description="Low-resolution stream width fed to the model.")
    lores_height: int = Field(480, gt=0, description="Low-resolution stream height.")


CameraConfig = Annotated[
    FolderCamera | HttpSnapshotCamera | V4l2Camera | RtspCamera | Picamera2Camera,
    Field(discriminator="type"),
]
