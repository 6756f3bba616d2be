"""Distance and angle in millimetres from pixel spacing.

PixelSpacing (0028,0030) is the physical distance in the patient between pixel centres,
row spacing first (PS3.3 10.7.1.3). When only ImagerPixelSpacing (0018,1164) is present
(projection radiography) the value is at the detector, not the patient: measurements are
magnified by the geometry, so they are returned but flagged as not calibrated. With neither,
results are in pixels. Enhanced multi-frame objects keep the spacing in the Pixel Measures
functional group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydicom.dataset import Dataset

from app.core.imaging_types import Measurement
from app.imaging.render import frame_attr

Point = tuple[float, float]  # (row, column) in pixel coordinates


@dataclass(frozen=True, slots=True)
class Spacing:
    row_mm: float  # distance between adjacent rows (vertical)
    col_mm: float  # distance between adjacent columns (horizontal)
    calibrated: bool
    note: str


def _pair(value: object) -> tuple[float, float] | None:
    try:
        items = [float(v) for v in value]  # type: ignore[union-attr]
    except Exception:  # absent or malformed
        return None
    if len(items) != 2 or not all(math.isfinite(v) and v > 0 for v in items):
        return None
    return items[0], items[1]


def _get(read: object) -> object:
    try:
        return read()  # type: ignore[operator]
    except Exception:  # a malformed value counts as absent
        return None


def pixel_spacing(ds: Dataset, frame: int = 0) -> Spacing:
    pair = _pair(_get(lambda: frame_attr(ds, frame, "PixelMeasuresSequence", "PixelSpacing")))
    if pair is not None:
        return Spacing(pair[0], pair[1], True, "")
    pair = _pair(_get(lambda: ds.get("ImagerPixelSpacing")))
    if pair is not None:
        return Spacing(pair[0], pair[1], False,
                       "spacing at the detector (ImagerPixelSpacing): not corrected for "
                       "magnification")
    return Spacing(1.0, 1.0, False, "no pixel spacing in the file: values in pixels")


def _unit(spacing: Spacing) -> str:
    return "px" if spacing.note.startswith("no pixel spacing") else "mm"


def distance(ds: Dataset, a: Point, b: Point, frame: int = 0) -> Measurement:
    s = pixel_spacing(ds, frame)
    dy = (b[0] - a[0]) * s.row_mm
    dx = (b[1] - a[1]) * s.col_mm
    return Measurement(math.hypot(dx, dy), _unit(s), s.calibrated, s.note)


def angle(ds: Dataset, a: Point, vertex: Point, b: Point, frame: int = 0) -> Measurement:
    """The angle a-vertex-b in degrees, measured in physical space (so non-square pixels
    do not skew it)."""
    s = pixel_spacing(ds, frame)
    v1 = ((a[0] - vertex[0]) * s.row_mm, (a[1] - vertex[1]) * s.col_mm)
    v2 = ((b[0] - vertex[0]) * s.row_mm, (b[1] - vertex[1]) * s.col_mm)
    n1, n2 = math.hypot(*v1), math.hypot(*v2)
    if n1 == 0 or n2 == 0:
        raise ValueError("an angle needs three distinct points")
    cos = max(-1.0, min(1.0, (v1[0] * v2[0] + v1[1] * v2[1]) / (n1 * n2)))
    return Measurement(math.degrees(math.acos(cos)), "deg", True,
                       "" if s.calibrated else s.note)
