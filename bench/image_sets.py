"""Real photos for export tests and benchmarks: scikit-image's sample images plus ELPV solar cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# scikit-image samples that ship inside the wheel (no download): photos, textures, microscopy
SKIMAGE_SAMPLES = (
    "astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass",
    "gravel", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page", "rocket", "text",
    "retina", "motorcycle_left", "horse", "checkerboard",
)


def elpv_images() -> list[Path]:
    import elpv_dataset

    return sorted((Path(elpv_dataset.__file__).parent / "data" / "images").glob("*.png"))


def write_real_images(folder: Path, elpv_count: int = 16) -> Path:
    """Write the sample photos that load offline and an evenly spaced sample of ELPV cells as PNGs."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for name in SKIMAGE_SAMPLES:
        try:
            pixels = np.asarray(getattr(data, name)())
        except Exception:  # samples not bundled with this scikit-image need a download: skip them
            continue
        if pixels.dtype != np.uint8:
            pixels = (pixels.astype(np.float64) / max(float(pixels.max()), 1e-9) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"skimage_{name}.png")
    cells = elpv_images()
    for path in cells[:: max(1, len(cells) // elpv_count)][:elpv_count]:
        Image.open(path).save(folder / f"elpv_{path.name}")
    return folder


def elpv_cells() -> tuple[list[Path], np.ndarray]:
    """Every ELPV cell image with its defect probability (0, 1/3, 2/3 or 1)."""
    import elpv_dataset

    root = Path(elpv_dataset.__file__).parent / "data"
    paths, probabilities = [], []
    for line in (root / "labels.csv").read_text().splitlines():
        name, probability, _kind = line.split()
        paths.append(root / name)
        probabilities.append(float(probability))
    return paths, np.asarray(probabilities)
