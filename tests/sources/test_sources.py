"""Camera plug-ins: folder replay, HTTP snapshots from a real server, PyAV streams, picamera2 (faked
hardware), reconnect backoff, and frame health."""

from __future__ import annotations

import base64
import io
import os
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from edge.errors import SourceError
from edge.evidence import EvidenceKind
from edge.frames.decode import MAX_IMAGE_BYTES
from edge.frames.frame import Frame
from edge.sources.base import Reconnecting
from edge.sources.config import (
    CameraHealthSettings,
    FolderCamera,
    HttpSnapshotCamera,
    Picamera2Camera,
    RtspCamera,
    V4l2Camera,
)
from edge.sources.health import FrameHealth, sharpness, thumbnail
from edge.sources.picamera2 import yuv420_to_rgb
from edge.sources.plugins import make_camera


def textured(seed: int, size: tuple[int, int] = (120, 160)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, size=(*size, 3), dtype=np.uint8)


def jpeg_bytes(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", quality=95)
    return out.getvalue()


# -- folder --------------------------------------------------------------------------------------

def write_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"frame-{index:02d}.png"
        Image.fromarray(np.full((40, 60, 3), 20 * index, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_folder_replays_in_name_order_and_loops(tmp_path: Path) -> None:
    write_images(tmp_path / "imgs", 3)
    (tmp_path / "imgs" / "notes.txt").write_text("ignored")
    config = FolderCamera(type="folder", name="top", path=tmp_path / "imgs")
    with make_camera(config, wall_clock=lambda: 123.0) as camera:
        frames = [camera.grab() for _ in range(4)]
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 20, 40, 0]
    assert frames[0].timestamp == 123.0 and frames[0].camera == "top" and frames[0].image.shape == (40, 60, 3)


def test_folder_without_loop_ends_with_a_clear_error(tmp_path: Path) -> None:
    write_images(tmp_path, 2)
    camera = make_camera(FolderCamera(type="folder", name="top", path=tmp_path / "*.png", loop=False))
    camera.grab()
    camera.grab()
    with pytest.raises(SourceError, match="replayed all 2 images"):
        camera.grab()
    assert camera.health().consecutive_failures == 1 and not camera.health().connected


def test_folder_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images in"):
        make_camera(FolderCamera(type="folder", name="top", path=tmp_path)).open()
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SourceError, match=r"broken\.jpg is not a readable image"):
        make_camera(FolderCamera(type="folder", name="top", path=tmp_path)).grab()


def test_folder_reads_only_regular_files_under_the_snapshot_cap(tmp_path: Path) -> None:
    write_images(tmp_path, 1)
    os.mkfifo(tmp_path / "frame-01.png")  # nobody writes to it: a plain read would hang the check
    (tmp_path / "frame-02.png").symlink_to("/dev/zero")  # a plain read fills memory
    (tmp_path / "frame-03.png").write_bytes(b"\xff" * (MAX_IMAGE_BYTES + 1))
    camera = make_camera(FolderCamera(type="folder", name="top", path=tmp_path))
    assert camera.grab().image.shape == (40, 60, 3)
    with pytest.raises(SourceError, match=r"camera top: image .*frame-01.png is not a regular file but a FIFO"):
        camera.grab()
    with pytest.raises(SourceError, match=r"frame-02.png is not a regular file but a character device"):
        camera.grab()
    with pytest.raises(SourceError, match=r"frame-03.png is larger than 20 MiB; is it one frame\?"):
        camera.grab()
    assert camera.grab().image.shape == (40, 60, 3)  # the good file again: the camera keeps working


def test_a_camera_watches_a_machine_unless_told_it_sees_parts(tmp_path: Path) -> None:
    assert FolderCamera(type="folder", name="top", path=tmp_path).watches == "machine"
    assert FolderCamera(type="folder", name="top", path=tmp_path, watches="parts").watches == "parts"
    with pytest.raises(ValueError, match="watches"):
        FolderCamera(type="folder", name="top", path=tmp_path, watches="part")  # type: ignore[arg-type]


def test_frames_are_downscaled_early(tmp_path: Path) -> None:
    Image.fromarray(textured(0, (600, 800))).save(tmp_path / "big.jpg")
    frame = make_camera(FolderCamera(type="folder", name="top", path=tmp_path, resize_max_px=200)).grab()
    assert max(frame.image.shape[:2]) <= 200 and frame.image.dtype == np.uint8


def test_grayscale_images_become_rgb(tmp_path: Path) -> None:
    Image.fromarray(np.full((30, 30), 99, dtype=np.uint8), "L").save(tmp_path / "grey.png")
    frame = make_camera(FolderCamera(type="folder", name="top", path=tmp_path)).grab()
    assert frame.image.shape == (30, 30, 3) and (frame.image == 99).all()


# -- HTTP snapshot against a real server ------------------------------------------------------------

class SnapshotServer:
    def __init__(self) -> None:
        self.status = 200
        self.body = jpeg_bytes(textured(1))
        self.auth: str | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if server.auth and self.headers.get("Authorization") != server.auth:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="cam"')
                    self.end_headers()
                    return
                self.send_response(server.status)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/snapshot.jpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def snapshot_server() -> Iterator[SnapshotServer]:
    server = SnapshotServer()
    yield server
    server.stop()


def test_http_snapshot_grabs_a_jpeg(snapshot_server: SnapshotServer) -> None:
    config = HttpSnapshotCamera(type="http", name="gate", url=snapshot_server.url)
    with make_camera(config) as camera:
        frame = camera.grab()
    assert frame.image.shape == (120, 160, 3)
    expected = np.asarray(Image.open(io.BytesIO(snapshot_server.body)).convert("RGB"))
    assert np.array_equal(frame.image, expected)


def test_http_snapshot_with_basic_auth(snapshot_server: SnapshotServer) -> None:
    snapshot_server.auth = "Basic " + base64.b64encode(b"viewer:secret").decode()
    good = HttpSnapshotCamera(type="http", name="gate", url=snapshot_server.url, username="viewer", password="secret")
    assert make_camera(good).grab().image.shape == (120, 160, 3)
    bad = HttpSnapshotCamera(type="http", name="gate", url=snapshot_server.url, username="viewer", password="wrong")
    with pytest.raises(SourceError, match="HTTP 401"):
        make_camera(bad).grab()


def test_http_errors_are_source_errors(snapshot_server: SnapshotServer) -> None:
    camera = make_camera(HttpSnapshotCamera(type="http", name="gate", url=snapshot_server.url, timeout_s=2))
    snapshot_server.status = 503
    with pytest.raises(SourceError, match="HTTP 503"):
        camera.grab()
    snapshot_server.status, snapshot_server.body = 200, b"<html>login</html>"
    with pytest.raises(SourceError, match="not a readable image"):
        camera.grab()
    snapshot_server.stop()
    with pytest.raises(SourceError, match="cannot be reached"):
        camera.grab()


def test_reconnect_backs_off_without_blocking_and_recovers(snapshot_server: SnapshotServer) -> None:
    now = [0.0]
    camera = Reconnecting(make_camera(HttpSnapshotCamera(type="http", name="gate", url=snapshot_server.url)),
                          initial_backoff_s=1.0, max_backoff_s=4.0, monotonic=lambda: now[0])
    assert camera.grab().camera == "gate"
    snapshot_server.status = 500
    with pytest.raises(SourceError, match="HTTP 500"):
        camera.grab()
    snapshot_server.status = 200
    with pytest.raises(SourceError, match="next reconnect in 1 s"):
        camera.grab()  # still backing off: no request made
    now[0] = 1.0
    assert camera.grab().image.shape == (120, 160, 3)
    snapshot_server.status = 500
    delays = []
    for _ in range(4):  # 1, 2, 4, 4: doubling, capped
        with pytest.raises(SourceError):
            camera.grab()
        delays.append(camera._retry_at - now[0])
        now[0] = camera._retry_at
    assert delays == [1.0, 2.0, 4.0, 4.0]


def test_redacts_password_in_url() -> None:
    from edge.sources.http import _redact

    assert _redact("http://admin:hunter2@cam.local/snap.jpg") == "http://***@cam.local/snap.jpg"
    assert _redact("http://cam.local/snap.jpg") == "http://cam.local/snap.jpg"


# -- PyAV streams (a local video file stands in for the RTSP server) -----------------------------

def write_video(path: Path, codec: str, colours: list[int]) -> None:
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for value in colours:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), value, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize(("codec", "suffix"), [("mpeg4", "mp4"), ("mjpeg", "avi")])
def test_stream_returns_the_newest_frame_then_reports_the_end(tmp_path: Path, codec: str, suffix: str) -> None:
    path = tmp_path / f"clip.{suffix}"
    write_video(path, codec, [30, 60, 90, 120, 150, 180, 210])
    camera = make_camera(RtspCamera(type="rtsp", name="line", url=str(path), timeout_s=5))
    with camera:
        camera._reader._thread.join(5)  # a file is read at once; a live stream keeps going
        frame = camera.grab()
        assert frame.image.shape == (48, 64, 3)
        assert abs(int(frame.image.mean()) - 210) < 8  # the newest frame, older ones dropped
        with pytest.raises(SourceError, match="the stream ended"):
            camera.grab()


def test_closing_a_stream_stops_its_reader(tmp_path: Path) -> None:
    path = tmp_path / "long.avi"
    write_video(path, "mjpeg", [value % 256 for value in range(0, 2400, 4)])  # 600 frames
    camera = make_camera(RtspCamera(type="rtsp", name="line", url=str(path), timeout_s=5))
    camera.open()
    reader = camera._reader
    assert camera.grab().image.shape == (48, 64, 3)
    camera.close()
    assert not reader._thread.is_alive() and camera._reader is None


def test_stream_open_failure_is_a_source_error(tmp_path: Path) -> None:
    pytest.importorskip("av")
    with pytest.raises(SourceError, match="cannot open"):
        make_camera(RtspCamera(type="rtsp", name="line", url=str(tmp_path / "missing.mp4"), timeout_s=1)).open()
    with pytest.raises(SourceError, match="cannot open"):
        make_camera(V4l2Camera(type="v4l2", name="usb", device=str(tmp_path / "video9"))).open()


# -- picamera2 (hardware we lack: a fake module with the same lifecycle) -----------------------------

def test_yuv420_to_rgb_matches_bt601() -> None:
    width, height, stride = 4, 2, 8
    planes = np.zeros((3, stride), dtype=np.uint8)
    planes[:2, :width] = 126  # Y
    planes[2, :2] = 128  # U (2 x 1 after 2x2 subsampling), padding beyond
    planes[2, 4:6] = 128  # V
    rgb = yuv420_to_rgb(planes, width, height)
    assert rgb.shape == (2, 4, 3) and np.all(np.abs(rgb.astype(int) - 128) <= 1)  # 1.164 * (126 - 16)
    planes[2, 4:6] = 255  # strong V: red goes up, green down
    rgb = yuv420_to_rgb(planes, width, height)
    assert rgb[0, 0, 0] == 255 and rgb[0, 0, 1] < 60
    with pytest.raises(SourceError, match="YUV420"):
        yuv420_to_rgb(np.zeros((2, 4), dtype=np.uint8), 4, 2)


def test_picamera2_lifecycle_uses_the_lores_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class FakePicamera2:
        def __init__(self, index: int) -> None:
            calls.append(f"init {index}")

        def create_video_configuration(self, main: dict, lores: dict, buffer_count: int) -> dict:
            return {"main": main, "lores": lores}

        def configure(self, config: dict) -> None:
            calls.append(f"configure {config['lores']['format']} {config['lores']['size']}")

        def start(self) -> None:
            calls.append("start")

        def capture_array(self, stream: str) -> np.ndarray:
            calls.append(f"capture {stream}")
            return np.full((24 * 3 // 2, 32), 128, dtype=np.uint8)

        def stop(self) -> None:
            calls.append("stop")

        def close(self) -> None:
            calls.append("close")

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    config = Picamera2Camera(type="picamera2", name="pi", camera_index=1, lores_width=32, lores_height=24)
    with make_camera(config) as camera:
        assert camera.grab().image.shape == (24, 32, 3)
    assert calls == ["init 1", "configure YUV420 (32, 24)", "start", "capture lores", "stop", "close"]


def test_picamera2_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(SourceError, match="apt install python3-picamera2"):
        make_camera(Picamera2Camera(type="picamera2", name="pi")).open()


# -- frame health --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def elpv_images() -> np.ndarray:
    elpv = pytest.importorskip("elpv_dataset.utils")
    return elpv.load_dataset()[0][:320:40]  # (8, 300, 300) uint8 real solar-cell images


def as_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def test_real_frames_are_healthy(elpv_images: np.ndarray) -> None:
    health = FrameHealth("top", CameraHealthSettings())
    assert all(health.check(Frame(as_rgb(image), 0.0, "top")) is None for image in elpv_images)


def test_black_blurred_and_frozen_frames_are_reported(elpv_images: np.ndarray) -> None:
    settings = CameraHealthSettings()
    sharp = as_rgb(elpv_images[0])
    black = FrameHealth("top", settings).check(Frame(np.full((100, 100, 3), 3, dtype=np.uint8), 5.0, "top"))
    assert black is not None and black.kind is EvidenceKind.CAMERA_HEALTH and black.condition is None
    assert "black" in black.reasons[0] and black.timestamp == 5.0
    blurred = np.asarray(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(8)))
    found = FrameHealth("top", settings).check(Frame(blurred, 0.0, "top"))
    assert found is not None and "badly blurred" in found.reasons[0]
    health = FrameHealth("top", settings)
    results = [health.check(Frame(sharp, float(t), "top")) for t in range(3)]
    assert results[:2] == [None, None]
    assert results[2] is not None and "frozen (3 identical frames)" in results[2].reasons[0]
    noisy = np.clip(sharp.astype(int) + np.random.default_rng(0).integers(-3, 4, sharp.shape), 0, 255)
    assert health.check(Frame(noisy.astype(np.uint8), 3.0, "top")) is None  # a live camera's noise


def test_sharpness_falls_with_blur(elpv_images: np.ndarray) -> None:
    sharp = as_rgb(elpv_images[1])
    values = [sharpness(thumbnail(np.asarray(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(r)))))
              for r in (0, 2, 4, 8)]
    assert values == sorted(values, reverse=True)
