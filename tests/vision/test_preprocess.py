"""Preprocessing: parity with the transformers image processors, odd inputs, reduced-scale decoding."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from edge.bundle.manifest import Preprocessing
from edge.errors import InputError
from edge.vision.preprocess import load_rgb, prepare

CLIP = Preprocessing(input_size=(224, 224), resize_mode="shortest_edge", resize_px=224, crop="center",
                     interpolation="bicubic", mean=(0.48145466, 0.4578275, 0.40821073),
                     std=(0.26862954, 0.26130258, 0.27577711))
SIGLIP = Preprocessing(input_size=(224, 224), resize_mode="exact", resize_px=224, crop="none",
                       interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
# Measured max abs difference to the HF processors is 4.8e-7 (float32 rounding); allow 1e-5.
PARITY_ATOL = 1e-5


def _photos() -> list[tuple[str, Image.Image]]:
    import elpv_dataset

    photos = [(name, Image.fromarray(getattr(data, name)())) for name in ("astronaut", "coffee", "chelsea", "rocket")]
    photos.append(("camera (grey)", Image.fromarray(data.camera())))
    cells = Path(elpv_dataset.__file__).parent / "data" / "images"
    photos += [(path.name, Image.open(path)) for path in sorted(cells.glob("*.png"))[:3]]
    return photos


@pytest.fixture(scope="module")
def hf_processors() -> dict[str, object]:
    import transformers

    return {"clip": transformers.CLIPImageProcessor(), "siglip": transformers.SiglipImageProcessor()}


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_parity_with_transformers_processor(kind: str, hf_processors: dict[str, object]) -> None:
    pre = CLIP if kind == "clip" else SIGLIP
    processor = hf_processors[kind]
    worst = 0.0
    for name, image in _photos():
        # The SigLIP processor cannot take greyscale arrays; RGB conversion is a no-op for our side.
        reference = processor(images=image.convert("RGB"), return_tensors="np")["pixel_values"]  # type: ignore[operator]
        ours = prepare(image, pre).tensor
        assert ours.shape == reference.shape == (1, 3, 224, 224), name
        worst = max(worst, float(np.abs(ours - reference).max()))
    assert worst < PARITY_ATOL


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    upright = np.zeros((40, 20, 3), dtype=np.uint8)
    upright[:10] = 255  # white band at the top of a portrait frame
    sideways = Image.fromarray(np.rot90(upright, k=1).copy())  # stored landscape, as a phone does
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    sideways.save(path, exif=exif, quality=95)
    image = load_rgb(path)
    assert image.size == (20, 40)
    assert np.asarray(image)[:10].mean() > 200 and np.asarray(image)[-10:].mean() < 50


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16", "1", "CMYK"])
def test_every_pixel_mode_becomes_rgb(mode: str, tmp_path: Path) -> None:
    base = Image.fromarray(data.coffee()).resize((64, 48))
    if mode == "I;16":
        grey = np.asarray(base.convert("L"), dtype=np.uint16) * 257
        image = Image.fromarray(grey)  # mode I;16
    else:
        image = base.convert(mode)
    path = tmp_path / "frame.png" if mode != "CMYK" else tmp_path / "frame.jpg"
    image.save(path)
    tensor = prepare(path, CLIP).tensor
    assert tensor.shape == (1, 3, 224, 224) and tensor.dtype == np.float32
    assert np.isfinite(tensor).all()
    if mode == "I;16":  # full 16-bit range maps to full 8-bit range, not clipped white
        expected = prepare(base.convert("L"), CLIP).tensor
        assert np.abs(tensor - expected).max() < 0.05


def test_numpy_frames_match_pillow_frames() -> None:
    rgb = data.astronaut()
    from_pillow = prepare(Image.fromarray(rgb), CLIP).tensor
    assert np.array_equal(prepare(rgb, CLIP).tensor, from_pillow)
    as_float = prepare(rgb.astype(np.float32) / 255.0, CLIP).tensor
    assert np.abs(as_float - from_pillow).max() < 1e-5
    assert prepare((rgb.astype(np.uint16) * 257), CLIP).tensor.shape == (1, 3, 224, 224)
    with pytest.raises(InputError, match="NaN"):
        prepare(np.full((8, 8, 3), np.nan, dtype=np.float32), CLIP)
    with pytest.raises(InputError, match="shape"):
        prepare(np.zeros((8, 8, 5), dtype=np.uint8), CLIP)


@pytest.mark.parametrize("size", [(1, 1), (3, 500), (500, 3)])
def test_tiny_and_thin_images(size: tuple[int, int]) -> None:
    for pre in (CLIP, SIGLIP):
        tensor = prepare(np.full((*size, 3), 128, dtype=np.uint8), pre).tensor
        assert tensor.shape == (1, 3, 224, 224) and np.isfinite(tensor).all()


def test_huge_jpeg_is_decoded_at_reduced_scale_and_close_to_full_decode(tmp_path: Path) -> None:
    big = Image.fromarray(data.astronaut()).resize((4032, 3024), Image.Resampling.BICUBIC)
    path = tmp_path / "12mp.jpg"
    big.save(path, quality=90)
    with Image.open(path) as full:
        full_tensor = prepare(full.convert("RGB"), CLIP).tensor
    prepared = prepare(path, CLIP)
    # Decoding at 1/8 scale inside libjpeg changes pixels slightly, not the picture.
    assert np.abs(prepared.tensor - full_tensor).mean() < 0.05
    assert prepared.thumbnail.shape == (16, 16)


def test_corrupt_and_missing_files_raise_input_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="not a readable image"):
        prepare(garbage, CLIP)
    buffer = io.BytesIO()
    Image.fromarray(data.coffee()).save(buffer, format="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    with pytest.raises(InputError, match="corrupt or truncated"):
        prepare(truncated, CLIP)
    with pytest.raises(InputError, match="does not exist"):
        prepare(tmp_path / "missing.png", CLIP)
