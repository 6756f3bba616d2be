"""Stored pixel values -> 8-bit display values, following the grayscale pipeline of PS3.3
(C.11.1 Modality LUT / rescale, C.11.2 VOI LUT / window, then MONOCHROME1 inversion) and
the colour rules (RGB as is, YBR converted by the decoder, palette colour through its LUTs).

Speed: a grayscale frame with integer stored values is turned, once, into an index image
``stored - min``; a render then builds a lookup table over the stored-value range (at most
65 536 entries, each through the exact formulas) and gathers it with ``np.take``. Changing
the window only rebuilds the table, so re-windowing a 512x512 slice costs well under a
millisecond or two, independent of the formula's cost per pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut

from app.core.imaging_types import WindowLevel
from app.imaging.decode import decode_frame, frame_count
from app.imaging.errors import DecodeFailed, ImagingError

# A LUT over the stored range is used while the range is at most this many values (16-bit
# data always is); beyond (32-bit or float data) each pixel is computed directly.
_MAX_LUT = 1 << 20


# ------------------------------------------------------------------ attribute access


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    try:
        return seq[0] if seq else None
    except (TypeError, IndexError):
        return None


def frame_attr(ds: Dataset, index: int, group: str, keyword: str) -> object:
    """An attribute that an enhanced multi-frame object keeps in its functional groups
    (per-frame first, then shared, PS3.3 C.7.6.16), else the top-level one."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    candidates: list[Dataset] = []
    try:
        if per_frame and index < len(per_frame):
            candidates.append(per_frame[index])
    except TypeError:
        pass
    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    if shared is not None:
        candidates.append(shared)
    for fg in candidates:
        item = _first_item(fg, group)
        if item is not None and keyword in item:
            return item.get(keyword)
    return ds.get(keyword)


def _float_list(value: object) -> list[float]:
    if value is None or value == "":
        return []
    seq = value if isinstance(value, Sequence) and not isinstance(value, str | bytes) else [value]
    out: list[float] = []
    for v in seq:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def file_windows(ds: Dataset, index: int = 0) -> list[WindowLevel]:
    """The windows the file suggests (WindowCenter/Width may hold several pairs)."""
    centers = _float_list(frame_attr(ds, index, "FrameVOILUTSequence", "WindowCenter"))
    widths = _float_list(frame_attr(ds, index, "FrameVOILUTSequence", "WindowWidth"))
    names_raw = frame_attr(ds, index, "FrameVOILUTSequence", "WindowCenterWidthExplanation")
    names = [str(n) for n in names_raw] if isinstance(names_raw, Sequence) and not isinstance(
        names_raw, str) else ([str(names_raw)] if names_raw else [])
    out = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        if w >= 1:
            out.append(WindowLevel(c, w, names[i] if i < len(names) else f"file {i + 1}"))
    return out


@dataclass(frozen=True, slots=True)
class Lut:
    """A LUT from a Modality or VOI LUT Sequence item (PS3.3 C.11.1.1.1, C.11.2.1.1)."""

    first_mapped: int
    data: np.ndarray  # int64, one entry per input value from first_mapped on
    bits: int

    @staticmethod
    def from_item(item: Dataset, *, signed: bool = False) -> Lut | None:
        try:
            desc = [int(v) for v in item.LUTDescriptor]
            raw = item.LUTData
        except (AttributeError, TypeError, ValueError):
            return None
        if len(desc) != 3:
            return None
        count, first, bits = desc
        count = count or 65536  # PS3.3: 0 means 2^16 entries
        if isinstance(raw, bytes | bytearray):
            # LUT Data is 16-bit words (OW) even for 8-bit entries; a few writers pack two
            # 8-bit entries per word instead, which shows as half the expected length.
            packed = bits <= 8 and len(raw) == (count or 65536)
            data = np.frombuffer(raw, dtype="u1" if packed else "<u2", count=-1 if packed
                                 else len(raw) // 2)
        else:
            data = np.asarray(list(raw) if isinstance(raw, Sequence) else [raw])
        if data.size == 0 or not 1 <= bits <= 16:
            return None
        if signed and 32767 < first < 65536:
            # The first mapped value is US or SS by the pixel representation; read as US it
            # arrives as its two's complement.
            first -= 65536
        return Lut(first, data[:count].astype(np.int64), bits)

    def apply(self, x: np.ndarray) -> np.ndarray:
        idx = np.clip(np.rint(x).astype(np.int64) - self.first_mapped, 0, self.data.size - 1)
        return self.data[idx]


# ----------------------------------------------------------------------- VOI functions


def voi_linear(x: np.ndarray, wl: WindowLevel, ymin: float = 0.0, ymax: float = 255.0,
               *, exact: bool = False) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 (LINEAR) or C.11.2.1.3.2 (LINEAR_EXACT), continuous output."""
    c, w = float(wl.center), float(wl.width)
    if exact:
        y = ((x - c) / w + 0.5) * (ymax - ymin) + ymin
        return np.clip(y, ymin, ymax)
    if w <= 1.0:
        # Width 1 is a threshold at c - 0.5 (the formula's ramp has zero length).
        return np.where(x <= c - 0.5, ymin, ymax).astype(np.float64)
    y = ((x - (c - 0.5)) / (w - 1.0) + 0.5) * (ymax - ymin) + ymin
    return np.clip(y, ymin, ymax)


def voi_sigmoid(x: np.ndarray, wl: WindowLevel, ymin: float = 0.0,
                ymax: float = 255.0) -> np.ndarray:
    """PS3.3 C.11.2.1.3.1."""
    exponent = np.clip(-4.0 * (x - wl.center) / wl.width, -700.0, 700.0)  # no overflow
    return (ymax - ymin) / (1.0 + np.exp(exponent)) + ymin


def _to_u8(y: np.ndarray) -> np.ndarray:
    # The continuous output is truncated to the integer below, as dcmtk does: this is what
    # makes our 8-bit output identical to dcm2pnm's rather than off by one half the time.
    # The epsilon absorbs binary rounding of values that are integers in exact arithmetic
    # (an identity window gives 40.99999999 for 41).
    return np.floor(y + 1e-6).clip(0, 255).astype(np.uint8)


# ------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Probe:
    row: int
    col: int
    stored: tuple[float, ...]
    value: float | None  # after the modality transform (HU for CT); None for colour
    unit: str


class Frame:
    """One decoded frame ready to render, many times, with different windows."""

    def __init__(self, ds: Dataset, stored: np.ndarray, index: int = 0) -> None:
        self.ds = ds
        self.index = index
        self.stored = stored
        self.photometric = str(ds.get("PhotometricInterpretation", "")).upper().strip()
        self.is_colour = stored.ndim == 3
        self.invert = self.photometric == "MONOCHROME1"
        if str(ds.get("PresentationLUTShape", "")).upper() == "INVERSE":
            self.invert = not self.invert
        self.bits_stored = int(ds.get("BitsStored", 8) or 8)
        self.windows = file_windows(ds, index)
        self.voi_luts = self._voi_luts()
        self.voi_function = str(
            frame_attr(ds, index, "FrameVOILUTSequence", "VOILUTFunction") or "LINEAR"
        ).upper()
        self._modality_lut = self._modality_lut_item()
        self.slope, self.intercept = self._rescale()
        self.unit = self._unit()
        self._offsets: np.ndarray | None = None
        self._domain: np.ndarray | None = None
        self._modality_range: tuple[float, float] | None = None
        if not self.is_colour and self.photometric != "PALETTE COLOR":
            self._prepare_gray()

    # -- set-up
    def _rescale(self) -> tuple[float, float]:
        slope = _float_list(frame_attr(self.ds, self.index, "PixelValueTransformationSequence",
                                       "RescaleSlope"))
        intercept = _float_list(frame_attr(self.ds, self.index,
                                           "PixelValueTransformationSequence", "RescaleIntercept"))
        s = slope[0] if slope and slope[0] != 0 else 1.0
        i = intercept[0] if intercept else 0.0
        return s, i

    def _unit(self) -> str:
        rtype = str(frame_attr(self.ds, self.index, "PixelValueTransformationSequence",
                               "RescaleType") or "")
        if rtype:
            return rtype
        return "HU" if str(self.ds.get("Modality", "")) == "CT" else ""

    def _modality_lut_item(self) -> Lut | None:
        item = _first_item(self.ds, "ModalityLUTSequence")
        if item is None:
            return None
        return Lut.from_item(item, signed=self._signed())

    def _voi_luts(self) -> list[Lut]:
        seq = frame_attr(self.ds, self.index, "FrameVOILUTSequence", "VOILUTSequence")
        if seq is None:
            seq = self.ds.get("VOILUTSequence")
        out: list[Lut] = []
        for item in seq or []:
            lut = Lut.from_item(item, signed=self._signed())
            if lut is not None:
                out.append(lut)
        return out

    def _signed(self) -> bool:
        return str(self.ds.get("PixelRepresentation", 0)) == "1"

    def modality(self, x: np.ndarray) -> np.ndarray:
        """Stored values -> modality values (PS3.3 C.11.1): the Modality LUT if present,
        else rescale slope/intercept."""
        if self._modality_lut is not None:
            return self._modality_lut.apply(x).astype(np.float64)
        return x.astype(np.float64) * self.slope + self.intercept

    def _prepare_gray(self) -> None:
        s = self.stored
        if s.size == 0:
            raise DecodeFailed("empty frame")
        if np.issubdtype(s.dtype, np.integer):
            smin, smax = int(s.min()), int(s.max())
            if smax - smin < _MAX_LUT:
                self._domain = np.arange(smin, smax + 1, dtype=np.int64)
                offset_type = np.uint8 if smax - smin < 256 else (
                    np.uint16 if smax - smin < 65536 else np.uint32)
                self._offsets = (s.astype(np.int64) - smin).astype(offset_type) if smin else (
                    s.astype(offset_type, copy=False))
                m = self.modality(self._domain)
                self._domain_modality = m
                self._modality_range = (float(m.min()), float(m.max()))
                return
        m = self.modality(s)
        finite = m[np.isfinite(m)]
        self._modality_range = (
            (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))

    # -- queries
    @property
    def shape(self) -> tuple[int, ...]:
        return self.stored.shape[:2]

    @property
    def nbytes(self) -> int:
        """Memory held: the stored values and the cached index image."""
        extra = self._offsets.nbytes if self._offsets is not None else 0
        return self.stored.nbytes + extra

    def minmax_window(self) -> WindowLevel:
        """dcmtk's +Wm: the window that maps the frame's modality range onto the output."""
        lo, hi = self._modality_range or (0.0, 255.0)
        return WindowLevel((lo + hi + 1) / 2, max(hi - lo + 1, 1.0), "min-max")

    def default_window(self) -> WindowLevel | None:
        """The file's first window, else None when a VOI LUT applies, else min-max."""
        if self.windows:
            return self.windows[0]
        if self.voi_luts:
            return None
        return self.minmax_window()

    def probe(self, row: int, col: int) -> Probe:
        if not (0 <= row < self.stored.shape[0] and 0 <= col < self.stored.shape[1]):
            raise IndexError("probe outside the image")
        raw = self.stored[row, col]
        stored = tuple(float(v) for v in np.atleast_1d(raw))
        if self.is_colour or self.photometric == "PALETTE COLOR":
            return Probe(row, col, stored, None, "")
        value = float(self.modality(np.asarray([raw]))[0])
        return Probe(row, col, stored, value, self.unit)

    # -- rendering
    def render(self, window: WindowLevel | None = None, *, voi_lut: int | None = None
               ) -> np.ndarray:
        """uint8 (rows, cols) or (rows, cols, 3). ``window`` overrides the file's VOI;
        ``voi_lut`` picks a VOI LUT of the file instead."""
        if self.is_colour:
            return _colour_to_u8(self.stored, self.bits_stored)
        if self.photometric == "PALETTE COLOR":
            return _palette_to_rgb(self.stored, self.ds)
        if window is None and voi_lut is None:
            window = self.default_window()
            if window is None:
                voi_lut = 0
        if self._offsets is not None and self._domain is not None:
            lut = self._voi(self._domain_modality, window, voi_lut)
            return np.take(lut, self._offsets)
        return self._voi(self.modality(self.stored), window, voi_lut)

    def _voi(self, m: np.ndarray, window: WindowLevel | None, voi_lut: int | None
             ) -> np.ndarray:
        if window is None and voi_lut is not None and self.voi_luts:
            lut = self.voi_luts[min(voi_lut, len(self.voi_luts) - 1)]
            y = lut.apply(m).astype(np.float64) * (255.0 / ((1 << lut.bits) - 1))
        else:
            wl = window or self.minmax_window()
            if self.voi_function == "SIGMOID":
                y = voi_sigmoid(m, wl)
            else:
                y = voi_linear(m, wl, exact=self.voi_function == "LINEAR_EXACT")
        out = _to_u8(y)
        if self.invert:
            out = 255 - out
        return out


def _colour_to_u8(arr: np.ndarray, bits: int) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    top = float((1 << min(bits, 32)) - 1)
    return _to_u8(arr.astype(np.float64) * (255.0 / top))


def _palette_to_rgb(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    try:
        rgb = apply_color_lut(arr, ds)
    except Exception as exc:
        raise DecodeFailed(f"palette colour LUT unusable ({type(exc).__name__})") from None
    if rgb.dtype == np.uint8:
        return rgb
    # 16-bit palette entries keep their high byte (as dcmtk does); some writers declare
    # 16 bits but use only the low 8, which we then take as they are.
    if rgb.size and int(rgb.max()) > 255:
        return (rgb >> 8).astype(np.uint8)
    return rgb.astype(np.uint8)


# ------------------------------------------------------------------------ one-shot API


def load_frame(ds: Dataset, index: int = 0) -> Frame:
    stored = decode_frame(ds, index)
    try:
        return Frame(ds, stored, index)
    except ImagingError:
        raise
    except Exception as exc:
        # Header values the renderer reads (windows, rescale, LUTs) are converted here for
        # the first time; a malformed one is a decode failure, not a crash.
        raise DecodeFailed(f"image header unusable ({type(exc).__name__})") from None


def render(ds: Dataset, index: int = 0, window: WindowLevel | None = None) -> np.ndarray:
    """Decode and render one frame with the file's (or the given) window."""
    return load_frame(ds, index).render(window)


def render_all(ds: Dataset, window: WindowLevel | None = None) -> list[np.ndarray]:
    return [render(ds, i, window) for i in range(frame_count(ds))]
