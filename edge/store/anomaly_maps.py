"""Anomaly maps kept beside the saved frames of non-ok verdicts, and drawn over them for people.

A map is the patch head's (rows, cols) grid of distances to normal. It is stored losslessly as a
``.npy`` file named after its frame (``<frame>.anomaly.npy``), so retention that removes a frame
takes its map along (``remove_beside``) and a map never outlives the verdict that explains it.
The overlay tints the frame red where the map is high; the colour scale runs from the frame's
own median distance (normal wear shows nothing) to its peak, so the worst region always stands out.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import numpy as np

from edge.errors import StorageError

log = logging.getLogger(__name__)

SUFFIX = ".anomaly.npy"
_OVERLAY_ALPHA = 0.6  # opacity of the tint where the map peaks


def path_beside(frame: Path) -> Path:
    """Where the map of ``frame`` lives."""
    return frame.with_name(frame.name + SUFFIX)


def save_beside(frame: Path, anomaly_map: np.ndarray) -> bool:
    """Write the (rows, cols) map next to its frame, atomically; False (logged) when it cannot be
    kept: the verdict and its frame matter more than the picture of where, so they are kept anyway."""
    values = np.asarray(anomaly_map, dtype=np.float32)
    if values.ndim != 2 or values.size == 0 or not np.isfinite(values).all():
        log.warning("anomaly map of %s not kept: it must be a finite 2-D array, got shape %s",
                    frame.name, values.shape)
        return False
    target = path_beside(frame)
    partial = target.with_name(target.name + ".partial")
    try:
        with open(partial, "wb") as handle:
            np.save(handle, values, allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        log.warning("anomaly map of %s not kept: %s", frame.name, exc)
        return False
    return True


def load_beside(frame: Path) -> np.ndarray | None:
    """The map saved with ``frame``, or None when it has none (ok verdict, older history, no patch head)."""
    try:
        return np.load(path_beside(frame), allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageError(f"the anomaly map of {frame.name} is unreadable: {exc}") from exc


def remove_beside(frame: Path) -> None:
    """Remove the map of a frame that retention removed (missing is fine)."""
    try:
        path_beside(frame).unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove the anomaly map of %s: %s", frame.name, exc)


def overlay_png(frame: Path, anomaly_map: np.ndarray) -> bytes:
    """The frame with the map drawn over it in red, as PNG bytes."""
    from PIL import Image

    try:
        with Image.open(frame) as opened:
            image = opened.convert("RGB")
    except OSError as exc:
        raise StorageError(f"cannot read frame {frame.name}: {exc}") from exc
    low, high = float(np.median(anomaly_map)), float(anomaly_map.max())
    strength = np.clip((anomaly_map - low) / max(high - low, 1e-12), 0.0, 1.0)  # (rows, cols) in [0, 1]
    grey = Image.fromarray((strength * 255).astype(np.uint8), "L")
    weight = np.asarray(grey.resize(image.size, Image.Resampling.BILINEAR), dtype=np.float32)[..., None] / 255
    pixels = np.asarray(image, dtype=np.float32)  # (H, W, 3)
    red = np.array([255.0, 0.0, 0.0], dtype=np.float32)
    blended = pixels * (1 - _OVERLAY_ALPHA * weight) + red * (_OVERLAY_ALPHA * weight)
    buffer = io.BytesIO()
    Image.fromarray(blended.astype(np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()
