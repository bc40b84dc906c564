"""Frame -> model input tensor, driven by the bundle manifest, in numpy + Pillow (no torch).

The steps and their order copy the Hugging Face image processors (CLIPImageProcessor,
SiglipImageProcessor): convert to RGB, resize with Pillow on uint8 pixels, centre-crop,
rescale, normalise, channels first. Frames are shrunk as early as possible because a camera
frame can be 12 MP: JPEGs are decoded at 1/2..1/8 scale inside the decoder (``Image.draft``),
and other large images are reduced by an integer box filter before the final resample
(Pillow's ``reducing_gap``). Neither shortcut applies to images within 3x of the model input,
so ordinary images match the HF processor to float rounding.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edge.bundle.manifest import Preprocessing
from edge.errors import InputError
from edge.frames.decode import open_frame, sixteen_to_eight_bit, to_rgb, upright

log = logging.getLogger(__name__)

ImageInput = str | Path | Image.Image | np.ndarray

# Keep at least this many times the target size before the final resample (Pillow reducing_gap).
REDUCING_GAP = 3.0
_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
            "nearest": Image.Resampling.NEAREST}
THUMBNAIL_PX = 16


@dataclass(frozen=True)
class Prepared:
    """A model-ready tensor plus what the cheaper stages need (duplicate check, timings)."""

    tensor: np.ndarray  # (1, 3, H, W) float32 (or (1, H, W, 3) for NHWC bundles)
    thumbnail: np.ndarray  # (16, 16) float32 grey in [0, 1], for near-duplicate detection
    decode_ms: float
    preprocess_ms: float


def _pre_resize_size(width: int, height: int, pre: Preprocessing) -> tuple[int, int]:
    """(width, height) the resize step produces, exactly as the HF processors compute it."""
    if pre.resize_mode == "exact":
        return pre.input_size[1], pre.input_size[0]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = pre.resize_px, int(pre.resize_px * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def open_image(source: str | Path, pre: Preprocessing | None = None) -> Image.Image:
    """Open an image file upright, decoding a JPEG at reduced scale when ``pre`` says how small it may be."""
    # draft keeps the decoded size >= the request, so the final resample still downsamples.
    shrink_to = None if pre is None else (lambda width, height: _pre_resize_size(width, height, pre))
    return open_frame(Path(source), str(source), shrink_to)


def _from_array(array: np.ndarray) -> Image.Image:
    """An already-decoded frame (picamera2, OpenCV after BGR->RGB) -> Pillow image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"frame array has shape {array.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")
    if array.size == 0:
        raise InputError("frame array is empty")
    if array.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(array))
    if array.dtype == np.uint16:
        return Image.fromarray(sixteen_to_eight_bit(array))
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InputError("frame array contains NaN or infinite values")
        scale = 255.0 if array.max(initial=0.0) <= 1.0 else 1.0
        return Image.fromarray(np.clip(array * scale + 0.5, 0, 255).astype(np.uint8))
    raise InputError(f"frame array has dtype {array.dtype}; expected uint8, uint16 or float")


def resize_and_crop(image: Image.Image, pre: Preprocessing) -> np.ndarray:
    """RGB image -> (H, W, 3) uint8 at the model's input size (resize, then centre crop or pad)."""
    width, height = _pre_resize_size(image.width, image.height, pre)
    width, height = max(width, 1), max(height, 1)
    resized = image.resize((width, height), resample=_FILTERS[pre.interpolation], reducing_gap=REDUCING_GAP)
    pixels = np.asarray(resized)  # (h, w, 3) uint8
    if pre.crop == "none":
        return pixels
    crop_h, crop_w = pre.input_size
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    if top >= 0 and left >= 0:
        return pixels[top:top + crop_h, left:left + crop_w]
    # Smaller than the crop: zero-pad around the centre, like the HF processors.
    out = np.zeros((crop_h, crop_w, 3), dtype=np.uint8)
    src_top, src_left = max(top, 0), max(left, 0)
    dst_top, dst_left = max(-top, 0), max(-left, 0)
    h, w = min(height, crop_h), min(width, crop_w)
    out[dst_top:dst_top + h, dst_left:dst_left + w] = pixels[src_top:src_top + h, src_left:src_left + w]
    return out


def normalise(pixels: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 (or NHWC), rescaled and normalised per channel."""
    mean = np.asarray(pre.mean, dtype=np.float32)
    std = np.asarray(pre.std, dtype=np.float32)
    scale = np.float32(pre.rescale_factor) / std
    if pre.channel_order == "BGR":
        pixels, scale, mean, std = pixels[:, :, ::-1], scale[::-1], mean[::-1], std[::-1]
    tensor = pixels.astype(np.float32) * scale - mean / std  # (H, W, 3)
    if pre.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[None])


def thumbnail(image: Image.Image) -> np.ndarray:
    """A 16x16 grey thumbnail in [0, 1]: the cheap fingerprint used to skip near-duplicate frames."""
    small = image.convert("L").resize((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.BOX, reducing_gap=2.0)
    return np.asarray(small, dtype=np.float32) / 255.0


def load_rgb(source: ImageInput, pre: Preprocessing | None = None) -> Image.Image:
    """Whatever the caller holds (path, Pillow image, numpy array) -> an RGB Pillow image."""
    if isinstance(source, np.ndarray):
        return to_rgb(_from_array(source))
    if isinstance(source, Image.Image):
        return to_rgb(upright(source))
    if isinstance(source, (str, Path)):
        return to_rgb(open_image(source, pre))
    raise InputError(f"cannot read an image from a {type(source).__name__}")


def prepare(source: ImageInput, pre: Preprocessing) -> Prepared:
    """The whole path from a frame to the model input, timing decode and preprocessing apart."""
    start = time.perf_counter()
    image = load_rgb(source, pre)
    decoded = time.perf_counter()
    if image.width < 1 or image.height < 1:
        raise InputError("image has no pixels")
    try:
        tensor = normalise(resize_and_crop(image, pre), pre)
    except (OSError, ValueError) as exc:
        raise InputError(f"image could not be resized: {exc}") from exc
    small = thumbnail(image)
    done = time.perf_counter()
    return Prepared(tensor=tensor, thumbnail=small, decode_ms=(decoded - start) * 1e3,
                    preprocess_ms=(done - decoded) * 1e3)
