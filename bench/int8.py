"""What the FP32-vs-INT8 benchmarks share: paired timing, KL between probabilities, the real image sets.

Workstation only (onnxruntime sessions built by the caller; ELPV cells from the elpv-dataset package).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from bench.image_sets import elpv_images, write_real_images
from edge.bundle.manifest import Preprocessing
from edge.vision.preprocess import prepare

# ELPV cells: every ELPV_STEP-th for evaluation (at most ELPV_EVAL); calibration starts 3 further on
ELPV_EVAL, ELPV_CALIBRATION, ELPV_STEP = 360, 60, 7


def timed_pairs(fp32: object, int8: object, feed: dict[str, np.ndarray], runs: int) -> tuple[float, float, float]:
    """(median FP32 ms, median INT8 ms, median of per-pair speedups), FP32 and INT8 run back to back.

    Pairing keeps the ratio honest on a shared machine: a burst of load hits both halves of a pair.
    """
    for _ in range(3):
        fp32.run(None, feed)  # type: ignore[attr-defined]
        int8.run(None, feed)  # type: ignore[attr-defined]
    fp32_ms, int8_ms, ratios = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        fp32.run(None, feed)  # type: ignore[attr-defined]
        middle = time.perf_counter()
        int8.run(None, feed)  # type: ignore[attr-defined]
        end = time.perf_counter()
        fp32_ms.append((middle - start) * 1e3)
        int8_ms.append((end - middle) * 1e3)
        ratios.append((middle - start) / (end - middle))
    return statistics.median(fp32_ms), statistics.median(int8_ms), statistics.median(ratios)


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """Mean KL(p || q) over rows of (N, C) probabilities."""
    return float(np.mean(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)), axis=1)))


def real_sets(folder: Path, pre: Preprocessing) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(photos, ELPV evaluation cells, calibration images), each a list of (1, 3, H, W) float32."""
    written = write_real_images(folder, elpv_count=1)
    photos = [prepare(p, pre).tensor for p in sorted(written.glob("skimage_*.png"))]
    cells = elpv_images()
    elpv = [prepare(p, pre).tensor for p in cells[::ELPV_STEP][:ELPV_EVAL]]
    calibration = photos + [prepare(p, pre).tensor for p in cells[3::ELPV_STEP][:ELPV_CALIBRATION]]
    return photos, elpv, calibration
