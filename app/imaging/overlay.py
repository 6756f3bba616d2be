"""Overlay planes (PS3.3 C.9.2, groups 6000-601E): 1-bit graphics and ROI masks that a
modality or a reader drew over the image, burnt into the rendered 8-bit image.

Drawn the way dcmtk draws them by default ("Replace" mode, foreground density 1): overlay
pixels become white (or white in every channel of a colour image). Only overlays held in
their own Overlay Data element are supported; the retired form embedded in the unused high
bits of the pixel data is ignored. Multi-frame overlays are matched to the image frame
through Image Frame Origin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

_GROUPS = range(0x6000, 0x6020, 2)


@dataclass(frozen=True, slots=True)
class Overlay:
    group: int
    kind: str  # "G" graphics or "R" ROI
    origin: tuple[int, int]  # 0-based row, column of the overlay's top-left pixel
    bitmap: np.ndarray  # bool (rows, cols) for the requested frame


def overlays(ds: Dataset, frame: int = 0) -> list[Overlay]:
    """The overlays that apply to image frame ``frame`` (0-based). Malformed overlays are
    skipped: an overlay is an annotation, never a reason not to show the image."""
    out = []
    for group in _GROUPS:
        if (group << 16 | 0x3000) not in ds:
            continue
        overlay = _one(ds, group, frame)
        if overlay is not None:
            out.append(overlay)
    return out


def _one(ds: Dataset, group: int, frame: int) -> Overlay | None:
    def get(element: int, default: object = None) -> object:
        elem = ds.get(group << 16 | element)
        return default if elem is None else elem.value

    try:
        rows, cols = int(get(0x0010)), int(get(0x0011))  # type: ignore[arg-type]
        frames = int(get(0x0015, 1) or 1)  # type: ignore[arg-type]
        first = int(get(0x0051, 1) or 1)  # type: ignore[arg-type]
        origin_raw = get(0x0050, [1, 1])
        origin = (int(origin_raw[0]) - 1, int(origin_raw[1]) - 1)  # type: ignore[index]
        kind = str(get(0x0040, "G") or "G").upper()
        data = get(0x3000)
        if not isinstance(data, bytes | bytearray) or rows < 1 or cols < 1:
            return None
        which = frame - (first - 1)
        if not 0 <= which < frames:
            return None
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        start = which * rows * cols
        if bits.size < start + rows * cols:
            return None
        bitmap = bits[start : start + rows * cols].reshape(rows, cols).astype(bool)
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return Overlay(group, kind, origin, bitmap)


def burn_in(image: np.ndarray, items: list[Overlay], value: int = 255) -> np.ndarray:
    """A copy of ``image`` with the overlays drawn in ``value``; clipped to the image."""
    if not items:
        return image
    out = image.copy()
    height, width = out.shape[:2]
    for ov in items:
        r0, c0 = ov.origin
        r1, c1 = min(height, r0 + ov.bitmap.shape[0]), min(width, c0 + ov.bitmap.shape[1])
        rs, cs = max(r0, 0), max(c0, 0)
        if rs >= r1 or cs >= c1:
            continue
        mask = ov.bitmap[rs - r0 : r1 - r0, cs - c0 : c1 - c0]
        out[rs:r1, cs:c1][mask] = value
    return out
