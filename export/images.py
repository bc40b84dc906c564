"""The user's calibration folder -> model-ready tensors; a quarter is held back from calibration.

Images go through ``edge.vision.preprocess`` with the bundle's own preprocessing, so INT8 is calibrated
and validated on exactly the tensors the board will compute. Unreadable files are skipped with a
warning; a folder with no usable image is an error.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.bundle.load import sha256_file
from edge.bundle.manifest import Preprocessing
from edge.errors import ExportError, InputError
from edge.vision.preprocess import prepare

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
HOLD_BACK_FRACTION = 0.25  # of the readable images, kept out of calibration to validate INT8 on


@dataclass(frozen=True)
class ImageSet:
    calibration: list[np.ndarray]  # each (1, 3, H, W) float32
    held_back: list[np.ndarray]  # never calibrated on
    every: list[np.ndarray]  # all of them, in file-name order: what the accuracy gate scores
    fingerprint: str  # sha256 over the sorted per-file hashes of the images used
    skipped: list[str]


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ExportError(f"calibration folder {folder} does not exist or is not a folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_folder(
    folder: Path,
    pre: Preprocessing,
    progress: Callable[[Iterable[Path]], Iterable[Path]] = iter,
) -> ImageSet:
    """Read every image under ``folder``; every fourth readable one is held back from calibration."""
    tensors, hashes, skipped = _read(folder, pre, progress)
    fingerprint = hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
    if len(tensors) < 2:
        log.warning("only one calibration image: INT8 is validated on the image it was calibrated on")
        return ImageSet(tensors, tensors, tensors, fingerprint, skipped)
    step = round(1 / HOLD_BACK_FRACTION)
    held = set(range(step - 1, len(tensors), step)) or {len(tensors) - 1}
    calibration = [t for i, t in enumerate(tensors) if i not in held]
    held_back = [t for i, t in enumerate(tensors) if i in held]
    return ImageSet(calibration, held_back, tensors, fingerprint, skipped)


def _read(folder: Path, pre: Preprocessing, progress: Callable[[Iterable[Path]], Iterable[Path]] = iter,
          what: str = "calibration") -> tuple[list[np.ndarray], list[str], list[str]]:
    """Every readable image under ``folder`` -> (tensors, sha256 per file, names skipped); none is an error."""
    files = image_files(folder)
    if not files:
        raise ExportError(f"{what} folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    tensors: list[np.ndarray] = []
    hashes: list[str] = []
    skipped: list[str] = []
    for path in progress(files):
        try:
            tensors.append(prepare(path, pre).tensor)
        except InputError as exc:
            log.warning("skipping %s image: %s", what, exc)
            skipped.append(path.name)
            continue
        hashes.append(sha256_file(path))
    if not tensors:
        raise ExportError(f"{what} folder {folder}: none of its {len(files)} images could be read")
    return tensors, hashes, skipped


@dataclass(frozen=True)
class LabelledSet:
    """A validation folder's ``good/`` and ``defect/`` images, as model inputs."""

    good: list[np.ndarray]  # each (1, 3, H, W) float32
    defect: list[np.ndarray]


MIN_GOOD = 4  # half of them play the enrolled normal frames, the rest are scored


def load_labelled(folder: Path, pre: Preprocessing) -> LabelledSet:
    """``folder/good`` and ``folder/defect`` -> LabelledSet; a missing or empty side is an error."""
    sides = {}
    for side in ("good", "defect"):
        if not (folder / side).is_dir():
            raise ExportError(f"validation folder {folder} needs a '{side}/' subfolder of images")
        sides[side] = _read(folder / side, pre, what="validation")[0]
    if len(sides["good"]) < MIN_GOOD:
        raise ExportError(f"validation folder {folder}/good holds {len(sides['good'])} readable images; "
                          f"at least {MIN_GOOD} are needed")
    return LabelledSet(sides["good"], sides["defect"])


def synthetic_images(pre: Preprocessing, count: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Smooth random colour fields, for validating dynamic INT8 when the user gave no images."""
    rng = np.random.default_rng(seed)
    h, w = pre.input_size
    images = []
    for _ in range(count):
        coarse = rng.uniform(0, 255, size=(4, 4, 3))
        pixels = np.kron(coarse, np.ones((h // 4 + 1, w // 4 + 1, 1)))[:h, :w]  # (H, W, 3) blocky field
        pixels = pixels + rng.normal(0, 12, size=pixels.shape)
        x = (np.clip(pixels, 0, 255) * pre.rescale_factor - np.asarray(pre.mean)) / np.asarray(pre.std)
        images.append(np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32))
    return images
