"""A camera's region of interest: validated config, crop, flat fill outside a polygon, CLI syntax."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edge.errors import InputError
from edge.frames.roi import RegionOfInterest, apply_roi, parse_roi


def test_rect_crops_the_fraction_of_the_frame() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[20:60, 50:150] = 255
    crop = apply_roi(frame, RegionOfInterest(rect=(0.25, 0.2, 0.75, 0.6)))
    assert crop.shape == (40, 100, 3) and crop.min() == 255


def test_polygon_paints_outside_in_the_inside_mean_colour() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :, 1] = 100  # green everywhere ...
    frame[90:100, 90:100] = (255, 0, 0)  # ... and a red corner outside the triangle
    triangle = RegionOfInterest(polygon=[(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)])
    out = apply_roi(frame, triangle)
    assert out.shape == (100, 100, 3)
    assert tuple(out[95, 95]) == tuple(out[60, 60]) and out[95, 95, 0] < 30  # the red corner is gone
    assert tuple(out[10, 10]) == (0, 100, 0)  # the inside is untouched


@pytest.mark.parametrize("fields", [
    {},
    {"rect": (0.1, 0.1, 0.9, 0.9), "polygon": [(0, 0), (1, 0), (0, 1)]},
    {"rect": (0.5, 0.1, 0.4, 0.9)},
    {"rect": (0.1, 0.1, 1.5, 0.9)},
    {"polygon": [(0, 0), (1, 0)]},
])
def test_bad_regions_are_refused_with_a_reason(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RegionOfInterest.model_validate(fields)


def test_cli_syntax() -> None:
    assert parse_roi("0.1,0.2,0.9,0.8").rect == (0.1, 0.2, 0.9, 0.8)
    assert parse_roi("0,0 1,0 0.5,1").polygon == [(0.0, 0.0), (1.0, 0.0), (0.5, 1.0)]
    for text in ("0.1,0.2", "a,b,c,d", "0.5,0.1,0.4,0.9"):
        with pytest.raises(InputError, match="region of interest"):
            parse_roi(text)
