"""RTSP cameras against a real RTSP server on 127.0.0.1 (GStreamer's, bench/rtsp_server.py): both
transports, a server restarted mid-stream, and a stream that stalls."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from bench.rtsp_server import RtspServer
from edge.errors import SourceError
from edge.sources.base import Reconnecting
from edge.sources.config import RtspCamera
from edge.sources.health import unavailable
from edge.sources.plugins import make_camera

TIMEOUT_S = 3.0


@pytest.fixture
def server() -> Iterator[RtspServer]:
    with RtspServer("h264") as running:
        yield running


def _camera(url: str, transport: str = "tcp") -> RtspCamera:
    return RtspCamera(type="rtsp", name="line", url=url, transport=transport, timeout_s=TIMEOUT_S)  # type: ignore[arg-type]


@pytest.mark.parametrize(("codec", "transport"), [("h264", "tcp"), ("h264", "udp"), ("mjpeg", "tcp")])
def test_live_frames_over_the_network(codec: str, transport: str) -> None:
    with RtspServer(codec) as server, make_camera(_camera(server.url, transport)) as camera:
        first = camera.grab()
        time.sleep(0.5)  # the test pattern's ball moves at 10 fps
        second = camera.grab()
    assert first.image.shape == second.image.shape == (240, 320, 3)
    assert second.timestamp > first.timestamp
    assert np.abs(first.image.astype(int) - second.image.astype(int)).mean() > 0.1  # a live stream, not one frame


def test_frames_resume_after_the_server_restarts(server: RtspServer) -> None:
    camera = Reconnecting(make_camera(_camera(server.url)), initial_backoff_s=0.5, max_backoff_s=2.0)
    with camera:
        assert camera.grab().image.shape == (240, 320, 3)
        server.stop()
        with pytest.raises(SourceError):
            deadline = time.monotonic() + 3 * TIMEOUT_S
            while time.monotonic() < deadline:  # frames already received may still be handed out
                camera.grab()
                time.sleep(0.1)
        server.start()  # the same port, a new process: the camera must find it by itself
        deadline, frame = time.monotonic() + 30, None
        while frame is None and time.monotonic() < deadline:
            try:
                frame = camera.grab()
            except SourceError:
                time.sleep(0.25)
    assert frame is not None and frame.image.shape == (240, 320, 3)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_a_stalled_stream_is_a_camera_fault_within_its_timeout(transport: str) -> None:
    with RtspServer("h264") as server:
        camera = Reconnecting(make_camera(_camera(server.url, transport)), initial_backoff_s=0.5)
        with camera:
            camera.grab()
            server.stall()
            try:
                started = time.monotonic()
                with pytest.raises(SourceError, match="no new frame") as failure:
                    for _ in range(200):  # the newest frame before the stall may be handed out once
                        camera.grab()
                waited_s = time.monotonic() - started
            finally:
                server.resume()
    assert waited_s <= TIMEOUT_S + 1.5
    evidence = unavailable("line", str(failure.value), time.time())
    assert evidence.condition is None and "no new frame for 3 s" in evidence.reasons[0]
