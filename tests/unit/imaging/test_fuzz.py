"""Property: whatever is done to the bytes of a real DICOM file (cut short, bytes flipped,
length fields overwritten), opening and rendering it either works or raises one of our
typed errors -- no other exception escapes, and nothing hangs."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.imaging.decode import frame_count
from app.imaging.errors import ImagingError
from app.imaging.load import read_dataset
from app.imaging.overlay import burn_in, overlays
from app.imaging.render import load_frame
from app.imaging.waveform import read_waveforms
from tests.unit.imaging.conftest import data_file

SEEDS = [
    "CT_small.dcm",                 # explicit LE, signed 16-bit
    "MR_small_implicit.dcm",        # implicit LE
    "MR_small_bigendian.dcm",       # explicit BE
    "MR_small_RLE.dcm",             # RLE
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS
    "JPEG2000.dcm",                 # JPEG 2000
    "SC_rgb_jpeg_dcmtk.dcm",        # JPEG baseline YBR
    "image_dfl.dcm",                # deflate
    "SC_rgb_rle_2frame.dcm",        # multi-frame colour
    "waveform_ecg.dcm",             # waveform
]
_BYTES = {name: data_file(name).read_bytes() for name in SEEDS}


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(_BYTES[draw(st.sampled_from(SEEDS))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "length", "zero_run"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            del data[pos:]
        elif kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "length" and len(data) >= pos + 4:
            # what a corrupted element length (or Rows/Columns/NumberOfFrames) looks like
            value = draw(st.sampled_from([0, 1, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFE]
                                         ) | st.integers(0, 0xFFFFFFFF))
            data[pos : pos + 4] = struct.pack("<I", value)
        elif kind == "zero_run":
            end = min(len(data), pos + draw(st.integers(1, 64)))
            data[pos:end] = bytes(end - pos)
        if not data:
            break
    return bytes(data)


def exercise(data: bytes) -> None:
    try:
        ds = read_dataset(data)
        if "WaveformSequence" in ds:
            read_waveforms(ds)
        frames = frame_count(ds)
        for index in {0, frames - 1}:
            image = burn_in(load_frame(ds, index).render(), overlays(ds, index))
            assert image.dtype == np.uint8
    except ImagingError:
        pass


def test_seeds_themselves_open():
    for name in SEEDS:
        exercise(_BYTES[name])


@pytest.mark.timeout(120)
@settings(max_examples=600, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_files_raise_only_typed_errors(data):
    exercise(data)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@settings(max_examples=10_000, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_files_raise_only_typed_errors_long(data):
    exercise(data)
