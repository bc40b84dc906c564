"""The one way a frame is decoded: image bytes or file -> upright 8-bit RGB, 16-bit aware, size-capped.

Every camera plug-in that receives encoded images (folder, HTTP snapshot), the model's
preprocessing and ``edgewatch check`` decode through here, so a frame reads the same wherever it
comes from. The pixel cap is checked against the header (after JPEG draft scaling, which decodes
at 1/2..1/8 inside the decoder) before a single pixel is decoded: a 139 KB PNG can declare
12000 x 12000 pixels and would otherwise take a 1 GB board out of memory.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edge.errors import InputError

# Pixels a frame may decode to: 40 MP is 120 MB as RGB, the most a 1 GB board can spare for one
# frame. Larger JPEGs still pass when draft scaling brings them under it.
MAX_DECODED_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # an encoded frame (a snapshot, a file) larger than this is not one frame
_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")

# (header width, header height) -> the smallest (width, height) the caller still needs
ShrinkTo = Callable[[int, int], tuple[int, int]]


def open_frame(source: bytes | Path, what: str, shrink_to: ShrinkTo | None = None) -> Image.Image:
    """Decode an image (bytes or a file) upright, refusing it from its header if it is too large.

    ``shrink_to`` lets a JPEG decode at reduced scale (never below the size it returns).
    Raises InputError naming ``what`` for missing, unreadable, corrupt or oversized images.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own cap applies below
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            header = image.size
            if shrink_to is not None and image.format == "JPEG":
                image.draft("RGB", shrink_to(*header))
            if image.width * image.height > MAX_DECODED_PIXELS:
                raise InputError(f"{what} is {header[0]}x{header[1]} pixels, more than the "
                                 f"{MAX_DECODED_PIXELS // 1_000_000} MP a frame may decode to; refused before decoding")
            image.load()
    except FileNotFoundError as exc:
        raise InputError(f"image {what} does not exist") from exc
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"{what} is not a readable image: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or corrupt data in a known format
        raise InputError(f"{what} is corrupt or truncated: {exc}") from exc
    return upright(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; 16-bit and float greyscale are scaled from their full range.

    Pillow's own ``convert("RGB")`` clips 16-bit values at 255, so an EL or thermal camera's
    frame would read as white.
    """
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        return Image.fromarray(_grey_to_8bit(image), mode="L").convert("RGB")
    # Palette, L, LA, RGBA, CMYK, YCbCr: Pillow's conversion, as the HF processors do (alpha dropped).
    return image.convert("RGB")


def decode_frame(source: bytes | Path, what: str, max_px: int | None = None) -> np.ndarray:
    """Encoded image -> (H, W, 3) uint8 RGB; a JPEG larger than ``max_px`` a side decodes at reduced scale."""
    shrink_to = None if max_px is None else (lambda width, height: (max_px, max_px))
    return np.asarray(to_rgb(open_frame(source, what, shrink_to)))


def sixteen_to_eight_bit(pixels: np.ndarray) -> np.ndarray:
    """uint16 pixels (any shape) -> uint8, 65535 -> 255, rounded."""
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)  # uint32: +128 cannot wrap


def _grey_to_8bit(image: Image.Image) -> np.ndarray:
    """(H, W) 16-bit, 32-bit integer or float grey -> (H, W) uint8 over the range the data uses."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return sixteen_to_eight_bit(np.asarray(image))
    pixels = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)  # (H, W)
    peak = float(pixels.max(initial=0.0))
    if image.mode == "F" and peak <= 1.0:
        full_scale = 1.0
    else:
        full_scale = 65535.0 if peak > 255 else 255.0
    return np.clip(pixels * (255.0 / full_scale) + 0.5, 0, 255).astype(np.uint8)


def upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (a portrait phone photo is judged upright); no copy when upright."""
    if image.getexif().get(_EXIF_ORIENTATION, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)
