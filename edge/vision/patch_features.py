"""Mid-level feature maps -> one grid of patch features, as PatchCore builds them (pure numpy).

A small defect (a hairline crack, a pinhole) changes a few cells of a mid-level feature map
(stride 8 or 16) and almost nothing in the last, global one. Each map is averaged over a 3x3
neighbourhood (a patch then describes its surroundings, not one receptive field: robust to a
one-pixel shift of the part), resized bilinearly to the finest map's grid, L2-normalised per map
(so a 40-channel map weighs as much as a 112-channel one) and concatenated; the result is
L2-normalised again so the baseline head's cosine distance applies unchanged.
"""

from __future__ import annotations

import numpy as np

NEIGHBOURHOOD_PX = 3  # side of the local averaging window, in feature-map cells


def _window_sums(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Sums over a centred window of ``size`` cells along ``axis``, zero beyond the edges."""
    pad = size // 2
    padding = [(0, 0)] * values.ndim
    padding[axis] = (pad, pad)
    padded = np.pad(values, padding)
    length = values.shape[axis]
    total = np.take(padded, range(0, length), axis=axis)
    for offset in range(1, size):
        total = total + np.take(padded, range(offset, offset + length), axis=axis)
    return total


def local_average(maps: np.ndarray, size: int = NEIGHBOURHOOD_PX) -> np.ndarray:
    """(B, C, H, W) -> (B, C, H, W): mean over a ``size`` x ``size`` window, edge cells over what exists."""
    if size <= 1:
        return maps
    # the window is separable: rows then columns, and so is the count of cells that exist
    sums = _window_sums(_window_sums(maps.astype(np.float32, copy=False), size, 2), size, 3)
    height, width = maps.shape[2:]
    counts = np.outer(_window_sums(np.ones(height, np.float32), size, 0),
                      _window_sums(np.ones(width, np.float32), size, 0))
    return np.asarray(sums / counts, dtype=np.float32)


def _interpolation_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) weights of bilinear resampling along one axis (half-pixel centres)."""
    position = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, source - 1)
    frac = (position - low).astype(np.float32)
    weights = np.zeros((target, source), dtype=np.float32)
    weights[np.arange(target), low] += 1 - frac
    weights[np.arange(target), high] += frac
    return weights


def resize_maps(maps: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(B, C, h, w) -> (B, C, H, W) bilinear; a map already on the grid is returned as it is."""
    if maps.shape[2:] == grid:
        return maps
    rows = _interpolation_matrix(maps.shape[2], grid[0])  # (H, h)
    cols = _interpolation_matrix(maps.shape[3], grid[1])  # (W, w)
    return np.asarray(rows @ maps @ cols.T, dtype=np.float32)


def _unit(maps: np.ndarray) -> np.ndarray:
    """Unit length along the channel axis (axis 1)."""
    return maps / np.maximum(np.linalg.norm(maps, axis=1, keepdims=True), 1e-12)


def patch_features(maps: list[np.ndarray],
                   neighbourhood_px: int = NEIGHBOURHOOD_PX) -> tuple[np.ndarray, tuple[int, int]]:
    """Feature maps [(B, C_i, H_i, W_i), ...] -> ((B, H*W, sum C_i) unit patch features, (H, W)).

    The grid is the finest map's, so a defect is located as precisely as the model allows.
    ``neighbourhood_px`` is the bundle's ``image_model.patch_neighbourhood_px`` (1: no average).
    """
    if not maps:
        raise ValueError("no feature maps to build patch features from")
    grid = max((m.shape[2], m.shape[3]) for m in maps)
    parts = [_unit(resize_maps(local_average(np.asarray(m, dtype=np.float32), neighbourhood_px), grid))
             for m in maps]
    joined = _unit(np.concatenate(parts, axis=1))  # (B, C, H, W)
    batch, channels = joined.shape[:2]
    return np.ascontiguousarray(joined.reshape(batch, channels, -1).transpose(0, 2, 1)), grid


def token_grid(tokens: int, input_size: tuple[int, int]) -> tuple[int, int]:
    """The (rows, cols) a ViT's ``tokens`` patch tokens form for an input of (height, width) pixels;
    one row when they form no grid of that shape (the map is then a strip, still in token order)."""
    height, width = input_size
    rows = max(1, round(float(np.sqrt(tokens * height / width))))
    return (rows, tokens // rows) if tokens % rows == 0 else (1, tokens)
