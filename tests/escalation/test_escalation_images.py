"""What leaves the board with an escalation: frames resized and re-encoded within the providers'
limits, their token estimates per model, and the difference hash that spots a repeated frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.escalation.config import EscalationConfig, PolicyConfig
from edge.escalation.images import difference_hash, hamming_bits, image_tokens, prepare, target_size
from tests.cloud_helpers import camera_image

POLICY = PolicyConfig()


@pytest.mark.parametrize(("size", "detail", "expected"), [
    ((4000, 3000), "low", (512, 384)),
    ((4000, 3000), "high", (1024, 768)),  # fit 2048 -> 2048x1536, short side 768
    ((1000, 500), "high", (1000, 500)),  # never upscaled
    ((300, 200), "low", (300, 200)),
])
def test_target_size(size: tuple[int, int], detail: str, expected: tuple[int, int]) -> None:
    assert target_size(*size, detail) == expected


def test_image_tokens_follow_the_per_model_tables() -> None:
    config = EscalationConfig()
    gpt4o, mini = config.pricing["gpt-4o"], config.pricing["gpt-4o-mini"]
    assert image_tokens(512, 384, "low", gpt4o) == 85
    assert image_tokens(1024, 768, "high", gpt4o) == 85 + 170 * 4
    assert image_tokens(1024, 768, "high", mini) == 2833 + 5667 * 4
    assert image_tokens(512, 384, "low", mini) == 2833


def test_prepare_downscales_a_big_frame_to_a_jpeg_data_url() -> None:
    prepared = prepare(camera_image(1, (5000, 2500)), "high")
    assert (prepared.width, prepared.height) == (1536, 768)
    assert prepared.data_url.startswith("data:image/jpeg;base64,/9j/")
    assert prepare(camera_image(1), "low").jpeg_bytes < prepared.jpeg_bytes


def test_difference_hash_sees_near_duplicates() -> None:
    frame = camera_image(3)
    noisy = Image.fromarray(np.clip(np.asarray(frame, dtype=np.int16) + np.random.default_rng(0).integers(
        -3, 4, np.asarray(frame).shape), 0, 255).astype(np.uint8))
    assert hamming_bits(difference_hash(frame), difference_hash(noisy)) <= POLICY.duplicate_frame_bits
    assert hamming_bits(difference_hash(frame), difference_hash(camera_image(4))) > POLICY.duplicate_frame_bits


@pytest.mark.parametrize("kind", ["noise_8k_png", "grey_16bit", "cmyk_jpeg", "animated_gif", "rgba_webp"])
@pytest.mark.parametrize("detail", ["low", "high"])
def test_images_sent_meet_the_providers_size_and_format_limits(tmp_path: Path, kind: str, detail: str) -> None:
    """At most 20 MB, a still PNG/JPEG/WEBP/GIF, nothing beyond 2048 px: whatever the camera or file gave."""
    import base64
    import io

    from edge.frames.decode import open_frame

    rng = np.random.default_rng(1)
    path = tmp_path / kind
    if kind == "noise_8k_png":  # the worst case for JPEG size: pure noise at 7680 x 4320
        Image.fromarray(rng.integers(0, 255, (4320, 7680, 3), dtype=np.uint8)).save(path, format="PNG")
    elif kind == "grey_16bit":
        Image.fromarray(rng.integers(0, 65535, (600, 800), dtype=np.uint16)).save(path, format="PNG")
    elif kind == "cmyk_jpeg":
        Image.fromarray(rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)).convert("CMYK").save(path, format="JPEG")
    elif kind == "animated_gif":
        frames = [Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).convert("P") for _ in range(3)]
        frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    else:
        Image.fromarray(rng.integers(0, 255, (600, 800, 4), dtype=np.uint8), "RGBA").save(path, format="WEBP")
    prepared = prepare(open_frame(path, kind), detail, jpeg_quality=95)
    header, encoded = prepared.data_url.split(",", 1)
    data = base64.b64decode(encoded)
    sent = Image.open(io.BytesIO(data))
    assert header == "data:image/jpeg;base64" and sent.format == "JPEG" and not getattr(sent, "is_animated", False)
    assert len(data) <= 20 * 1024 * 1024 and prepared.jpeg_bytes >= len(data) - 2
    assert max(sent.size) <= (512 if detail == "low" else 2048) and sent.size == (prepared.width, prepared.height)
