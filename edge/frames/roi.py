"""A camera's region of interest: the model sees the machine part, not the floor or the wall behind it.

The region is given in fractions of the frame (0..1, x to the right, y down), so it survives a
change of camera resolution. A rectangle crops; a polygon crops to its bounding box and paints
everything outside it in the mean colour of the inside, a flat area the features find unremarkable,
so a person walking past behind the part changes nothing. Enrollment applies the same region
(``edgewatch enroll --roi``), or the profile would describe a different picture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from pydantic import Field, model_validator

from edge.config.section import Section
from edge.errors import InputError

Point = tuple[float, float]


class RegionOfInterest(Section):
    rect: tuple[float, float, float, float] | None = Field(
        None, description="[left, top, right, bottom] in fractions of the frame width and height (0..1)."
    )
    polygon: list[Point] | None = Field(
        None, min_length=3, description="Corner points [[x, y], ...] in fractions of the frame (0..1), in order."
    )

    @model_validator(mode="after")
    def _one_shape(self) -> RegionOfInterest:
        if (self.rect is None) == (self.polygon is None):
            raise ValueError("give either 'rect' or 'polygon' for the region of interest, not both or neither")
        points = [(self.rect[0], self.rect[1]), (self.rect[2], self.rect[3])] if self.rect else self.polygon or []
        if any(not (0.0 <= v <= 1.0) for point in points for v in point):
            raise ValueError("region of interest coordinates are fractions of the frame: each must be in 0..1")
        left, top, right, bottom = self.bounds()
        if right <= left or bottom <= top:
            raise ValueError("the region of interest is empty: right must exceed left and bottom must exceed top")
        return self

    def bounds(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) fractions of the region's bounding box."""
        if self.rect is not None:
            return self.rect
        xs, ys = zip(*(self.polygon or []), strict=True)
        return min(xs), min(ys), max(xs), max(ys)


def parse_roi(text: str) -> RegionOfInterest:
    """'0.1,0.2,0.9,0.8' (a rectangle) or '0.1,0.1 0.9,0.1 0.5,0.9' (polygon corners) -> the region."""
    try:
        points = [tuple(float(v) for v in corner.split(",")) for corner in text.split()]
        if len(points) == 1 and len(points[0]) == 4:
            return RegionOfInterest(rect=points[0])
        if len(points) >= 3 and all(len(p) == 2 for p in points):
            return RegionOfInterest(polygon=[(p[0], p[1]) for p in points])
    except ValueError as exc:
        raise InputError(f"region of interest {text!r}: {exc}") from exc
    raise InputError(f"region of interest {text!r}: give 'left,top,right,bottom' or three or more 'x,y' corners")


def apply_roi(frame: np.ndarray, roi: RegionOfInterest) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame -> the region's (h, w, 3) uint8 crop, outside a polygon painted flat."""
    height, width = frame.shape[:2]
    left, top, right, bottom = roi.bounds()
    x0, y0 = int(left * width), int(top * height)
    x1, y1 = max(int(np.ceil(right * width)), x0 + 1), max(int(np.ceil(bottom * height)), y0 + 1)
    crop = frame[y0:y1, x0:x1]
    if roi.polygon is None:
        return np.ascontiguousarray(crop)
    mask_image = Image.new("L", (crop.shape[1], crop.shape[0]), 0)
    ImageDraw.Draw(mask_image).polygon([(x * width - x0, y * height - y0) for x, y in roi.polygon], fill=1)
    inside = np.asarray(mask_image, dtype=bool)  # (h, w)
    out = crop.copy()
    if inside.any():
        out[~inside] = crop[inside].mean(axis=0).astype(np.uint8)
    return out
