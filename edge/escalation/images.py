"""Frames for the cloud: downscale per ``detail``, JPEG-encode, data URLs, and what they will cost in tokens.

Sizes follow OpenAI's vision rules: ``low`` sends at most 512 px a side; ``high`` fits the
image in 2048 x 2048 and then scales the short side to 768 px, and is billed per 512-px tile.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from edge.escalation.config import ModelPricing

Detail = Literal["low", "high"]

_LOW_PX = 512
_HIGH_FIT_PX = 2048
_HIGH_SHORT_PX = 768
_TILE_PX = 512


@dataclass(frozen=True)
class PreparedImage:
    data_url: str
    width: int
    height: int
    detail: Detail

    @property
    def jpeg_bytes(self) -> int:
        return len(self.data_url) * 3 // 4


def target_size(width: int, height: int, detail: Detail) -> tuple[int, int]:
    """The (width, height) the provider will see; never upscales."""
    if detail == "low":
        scale = min(1.0, _LOW_PX / max(width, height))
    else:
        scale = min(1.0, _HIGH_FIT_PX / max(width, height))
        short_px = min(width, height) * scale
        if short_px > _HIGH_SHORT_PX:
            scale *= _HIGH_SHORT_PX / short_px
    return max(1, round(width * scale)), max(1, round(height * scale))


def image_tokens(width: int, height: int, detail: Detail, pricing: ModelPricing) -> int:
    """Tokens billed for one image of this size (after ``target_size``)."""
    if detail == "low":
        return pricing.image_low_tokens
    tiles = math.ceil(width / _TILE_PX) * math.ceil(height / _TILE_PX)
    return pricing.image_base_tokens + pricing.image_tile_tokens * tiles


def prepare(image: Image.Image, detail: Detail, jpeg_quality: int = 85) -> PreparedImage:
    """Downscale and encode one frame as a ``data:image/jpeg;base64,...`` URL."""
    if image.mode not in ("RGB", "RGBA", "L"):  # palette, 16-bit, CMYK: resampling needs a plain mode
        image = image.convert("RGB")
    size = target_size(*image.size, detail)
    if size != image.size:
        # reducing_gap: integer box reduction first, Lanczos only for the last factor of 2 (fast on 12 MP)
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    rgb = image.convert("RGB")  # after the resize: converting the full frame would copy it
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=jpeg_quality, optimize=True)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return PreparedImage(f"data:image/jpeg;base64,{encoded}", rgb.size[0], rgb.size[1], detail)


def difference_hash(image: Image.Image) -> int:
    """64-bit dHash: near-identical frames differ in few bits, whatever their size or JPEG noise."""
    grey = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)  # (8, 9)
    bits = (grey[:, 1:] > grey[:, :-1]).flatten()  # (64,) bool
    return int(sum(1 << index for index, bit in enumerate(bits) if bit))


def hamming_bits(a: int, b: int) -> int:
    return bin(a ^ b).count("1")
