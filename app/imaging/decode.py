"""Pixel data decoding: checked before, wrapped after.

Before decoding we check what a hostile or broken header could make the decoder do: the
declared image size is bounded (so a forged Rows x Columns x Frames cannot ask for
gigabytes), native pixel data must be as long as the header says (else the file was cut
short), and the transfer syntax must have a decoder installed. Decoding itself is done by
pydicom with the pylibjpeg plugins, one frame at a time, so a 300-frame object can show its
first frame without decoding the other 299. Any failure inside a decoder becomes
:class:`DecodeFailed` carrying only the exception's type name (decoder messages are not
ours to vouch for).

The time limit is enforced by the size guard: every decoder we load is linear in its output,
so bounding the output bounds the time. :func:`decode_frame_isolated` runs a decode in a
child process with a wall-clock timeout for callers that want a hard stop as well.
"""

from __future__ import annotations

import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from app.imaging.errors import (
    DecodeFailed,
    DecodeTimeout,
    ImageTooLarge,
    MissingPixelData,
    TruncatedDicom,
    UnsupportedTransferSyntax,
)

# One decoded frame may not exceed this (a 16k x 16k RGB 16-bit image is 1.5 GiB: refuse it;
# a 4k x 4k mammogram at 16 bits is 32 MiB: fine).
MAX_FRAME_BYTES = 512 * 1024 * 1024
# All frames of one object together (what decoding the whole object would allocate).
MAX_OBJECT_BYTES = 2 * 1024 * 1024 * 1024
MAX_FRAMES = 100_000

_REQUIRED = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation")
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def transfer_syntax(ds: Dataset) -> UID:
    """The dataset's transfer syntax; for a bare dataset without file meta, the one it was
    read with (pydicom records the encoding it detected)."""
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if uid:
        return UID(str(uid))
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit is None:
        implicit, little = True, True
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _int_attr(ds: Dataset, keyword: str, default: int | None = None) -> int:
    try:
        value = ds.get(keyword, default)
        if value is None or value == "":
            raise DecodeFailed(f"required attribute {keyword} is missing")
        return int(value)
    except DecodeFailed:
        raise
    except Exception as exc:  # a malformed value (wrong VR, bad bytes) in the header
        raise DecodeFailed(f"attribute {keyword} is malformed ({type(exc).__name__})") from None


def frame_count(ds: Dataset) -> int:
    value = ds.get("NumberOfFrames", 1)
    try:
        frames = int(value) if value not in (None, "") else 1
    except Exception:
        raise DecodeFailed("attribute NumberOfFrames is malformed") from None
    if frames < 1:
        # Some writers put 0 for single-frame images; the standard says >= 1.
        frames = 1
    if frames > MAX_FRAMES:
        raise ImageTooLarge(f"{frames} frames declared")
    return frames


def check_decodable(ds: Dataset) -> None:
    """Raise the typed error that decoding this dataset would hit, without decoding."""
    if not any(k in ds for k in PIXEL_KEYWORDS):
        raise MissingPixelData("no pixel data element")
    for keyword in _REQUIRED:
        if keyword not in ds:
            raise DecodeFailed(f"required attribute {keyword} is missing")
    rows, cols = _int_attr(ds, "Rows"), _int_attr(ds, "Columns")
    bits = _int_attr(ds, "BitsAllocated")
    spp = _int_attr(ds, "SamplesPerPixel")
    if rows < 1 or cols < 1 or spp not in (1, 3) or bits not in (1, 8, 16, 32, 64):
        raise DecodeFailed(f"implausible image geometry {rows}x{cols}x{spp} @{bits} bits")
    frames = frame_count(ds)
    frame_bytes = rows * cols * spp * max(bits, 8) // 8
    if frame_bytes > MAX_FRAME_BYTES or frame_bytes * frames > MAX_OBJECT_BYTES:
        raise ImageTooLarge(f"{frames} frame(s) of {rows}x{cols}x{spp} at {bits} bits")
    syntax = transfer_syntax(ds)
    name = syntax.name if syntax.name != str(syntax) else ""  # unknown UIDs have no name
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise UnsupportedTransferSyntax(str(syntax), name) from None
    if not decoder.is_available:
        raise UnsupportedTransferSyntax(str(syntax), name)
    if decoder.is_native and "PixelData" in ds:
        _check_native_length(ds, rows, cols, spp, bits, frames)


def _check_native_length(ds: Dataset, rows: int, cols: int, spp: int, bits: int,
                         frames: int) -> None:
    try:
        actual = len(ds["PixelData"].value or b"")
    except Exception as exc:
        raise TruncatedDicom(f"pixel data unreadable ({type(exc).__name__})") from None
    pixels = rows * cols * frames
    if bits == 1:
        expected = (pixels * spp + 7) // 8
    elif str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422":
        expected = pixels * 2 * bits // 8  # two samples a pixel after 4:2:2 subsampling
    else:
        expected = pixels * spp * bits // 8
    if actual < expected:
        raise TruncatedDicom(f"pixel data has {actual} of {expected} bytes")


def decode_frame(ds: Dataset, index: int = 0) -> np.ndarray:
    """Stored pixel values of one frame: (rows, cols) or (rows, cols, 3) for colour.

    YBR colour is converted to RGB by the decoder (PS3.3 C.7.6.3.1.2); palette colour is
    left as indices (the renderer applies the palette)."""
    check_decodable(ds)
    frames = frame_count(ds)
    if not 0 <= index < frames:
        raise IndexError(f"frame {index} out of range (0..{frames - 1})")
    decoder = get_decoder(transfer_syntax(ds))
    try:
        with warnings.catch_warnings():
            # pydicom warns about header oddities it corrects (e.g. wrong NumberOfFrames);
            # the warnings quote values, which we keep out of logs.
            warnings.simplefilter("ignore")
            arr, _meta = decoder.as_array(ds, index=index)
    except (MemoryError, RecursionError) as exc:
        raise DecodeFailed(f"decoder ran out of resources ({type(exc).__name__})") from None
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        # BaseException, not Exception: a Rust decoder (pylibjpeg-rle) signals a panic on
        # corrupt input with pyo3's PanicException, which derives from BaseException.
        raise DecodeFailed(f"decoder failed ({type(exc).__name__})") from None
    if arr.ndim == 3 and arr.shape[0] == 1 and int(ds.get("SamplesPerPixel", 1)) == 1:
        arr = arr[0]
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DecodeFailed(f"decoder returned an array of shape {arr.shape}")
    return arr


def _decode_bytes(data: bytes, index: int) -> np.ndarray:
    # Child-process entry point: parse and decode, return plain arrays or raise typed errors.
    from app.imaging.load import read_dataset

    return decode_frame(read_dataset(data), index)


def decode_frame_isolated(data: bytes, index: int = 0, *, timeout_s: float = 10.0) -> np.ndarray:
    """Decode one frame of a DICOM object (its bytes) in a child process, with a hard
    wall-clock limit. Costs a process start (~100 ms): for untrusted input from outside,
    not for slices of a series already known to decode."""
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=1, mp_context=ctx)
    try:
        future = pool.submit(_decode_bytes, data, index)
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()  # a stuck decoder does not listen to anything gentler
        raise DecodeTimeout(f"decode exceeded {timeout_s:.1f} s") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
