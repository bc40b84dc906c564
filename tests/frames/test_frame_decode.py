"""The one frame decoder (edge/frames/decode.py): 16-bit frames keep their contrast and an oversized
image is refused from its header, for folder and HTTP cameras alike."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.errors import InputError, SourceError
from edge.frames.decode import MAX_DECODED_PIXELS, decode_frame
from edge.frames.frame import Frame
from edge.sources.config import CameraHealthSettings, FolderCamera, HttpSnapshotCamera
from edge.sources.health import FrameHealth, sharpness, thumbnail
from edge.sources.plugins import make_camera


def textured_grey(seed: int, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """(H, W) uint8: a mid-grey texture with edges, which frame health calls sharp and bright."""
    rng = np.random.default_rng(seed)
    return np.clip(110 + rng.normal(0, 40, size=size), 0, 255).astype(np.uint8)


def sixteen_bit_png(grey8: np.ndarray) -> bytes:
    """The same picture as a 16-bit greyscale PNG, as EL and thermal cameras write them."""
    out = io.BytesIO()
    Image.fromarray(grey8.astype(np.uint16) * 257).save(out, "PNG")
    return out.getvalue()


def huge_png(width: int, height: int) -> bytes:
    """A valid all-black 8-bit greyscale PNG of any size, compressed row by row (a few hundred KB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 + black pixels
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_a_16_bit_frame_reads_like_its_8_bit_copy() -> None:
    grey8 = textured_grey(1)
    decoded = decode_frame(sixteen_bit_png(grey8), "frame.png")  # (H, W, 3) uint8
    assert decoded.shape == (*grey8.shape, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded[:, :, 0].astype(int) - grey8).max() <= 1  # not clipped to white
    health = FrameHealth("el", CameraHealthSettings())
    assert health.check(Frame(decoded, 0.0, "el")) is None
    assert sharpness(thumbnail(decoded)) > 100


def test_folder_camera_decodes_16_bit_frames(tmp_path: Path) -> None:
    grey8 = textured_grey(2)
    (tmp_path / "el.png").write_bytes(sixteen_bit_png(grey8))
    with make_camera(FolderCamera(type="folder", name="el", path=tmp_path)) as camera:
        frame = camera.grab()
    assert np.abs(frame.image[:, :, 1].astype(int) - grey8).max() <= 1


def test_float_and_32_bit_frames_use_their_range() -> None:
    grey8 = textured_grey(3)
    for image in (Image.fromarray(grey8.astype(np.float32) / 255.0, mode="F"),
                  Image.fromarray(grey8.astype(np.int32) * 257, mode="I")):
        out = io.BytesIO()
        image.save(out, "TIFF")
        decoded = decode_frame(out.getvalue(), "frame.tiff")
        assert np.abs(decoded[:, :, 2].astype(int) - grey8).max() <= 1


def test_an_oversized_image_is_refused_from_its_header() -> None:
    data = huge_png(12000, 12000)
    assert len(data) < 1_000_000  # tiny on disk, 144 M pixels declared
    with pytest.raises(InputError, match=r"12000x12000 pixels, more than the 40 MP .* refused before decoding"):
        decode_frame(data, "bomb.png")


def test_a_large_jpeg_passes_when_draft_scaling_brings_it_under_the_cap() -> None:
    side = int((MAX_DECODED_PIXELS * 1.5) ** 0.5)  # over the cap at full size
    out = io.BytesIO()
    Image.new("RGB", (side, side), (40, 90, 140)).save(out, "JPEG", quality=50)
    with pytest.raises(InputError, match="more than the 40 MP"):
        decode_frame(out.getvalue(), "full.jpg")
    frame = decode_frame(out.getvalue(), "drafted.jpg", max_px=1024)
    assert 1024 <= min(frame.shape[:2]) < side


def test_folder_camera_refuses_an_oversized_image_saying_why(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(huge_png(12000, 12000))
    camera = make_camera(FolderCamera(type="folder", name="top", path=tmp_path))
    with pytest.raises(SourceError, match=r"camera top: .*bomb\.png is 12000x12000 pixels"):
        camera.grab()
    assert "12000x12000" in (camera.health().last_error or "")


@pytest.fixture()
def bomb_server() -> Iterator[str]:
    body = huge_png(12000, 12000)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/snapshot.png"
    finally:
        server.shutdown()
        server.server_close()


def test_http_camera_refuses_an_oversized_snapshot(bomb_server: str) -> None:
    camera = make_camera(HttpSnapshotCamera(type="http", name="gate", url=bomb_server))
    with pytest.raises(SourceError, match="12000x12000 pixels"):
        camera.grab()
