"""The VOI formulas of PS3.3 C.11.2.1.2 at their edges, and the LUT fast path against the
direct per-pixel computation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.core.imaging_types import PRESETS, WindowLevel
from app.imaging.load import read_dataset
from app.imaging.render import Frame, _to_u8, file_windows, voi_linear, voi_sigmoid
from tests.unit.imaging.conftest import data_file


def test_linear_window_edges_follow_the_standard():
    wl = WindowLevel(40, 80)
    # x <= c - 0.5 - (w-1)/2 -> ymin ; x > c - 0.5 + (w-1)/2 -> ymax
    lo, hi = 40 - 0.5 - 79 / 2, 40 - 0.5 + 79 / 2
    y = voi_linear(np.array([lo - 5, lo, lo + 1e-9, hi, hi + 1e-6, hi + 5]), wl)
    assert y[0] == 0 and y[1] == 0
    assert y[3] == pytest.approx(255) and y[4] == 255 and y[5] == 255
    # centre maps to mid-range: ((c - (c - 0.5)) / (w - 1) + 0.5) * 255
    assert voi_linear(np.array([40.0]), wl)[0] == pytest.approx((0.5 / 79 + 0.5) * 255)


def test_width_one_is_a_threshold():
    y = voi_linear(np.array([-1.0, 0.0, 0.49, 0.5, 0.51, 1.0]), WindowLevel(1.0, 1.0))
    assert list(y) == [0, 0, 0, 0, 255, 255]


def test_linear_exact_and_sigmoid():
    wl = WindowLevel(100, 200)
    y = voi_linear(np.array([0.0, 100.0, 200.0]), wl, exact=True)
    assert list(y) == [0, 127.5, 255]
    s = voi_sigmoid(np.array([100.0, -1e6, 1e6]), wl)
    assert s[0] == pytest.approx(127.5) and s[1] == pytest.approx(0) and s[2] == pytest.approx(255)


def test_window_width_below_one_is_refused():
    with pytest.raises(ValueError):
        WindowLevel(0, 0.5)


def test_presets_have_the_expected_values():
    assert (PRESETS["brain"].center, PRESETS["brain"].width) == (40, 80)
    assert (PRESETS["lung"].center, PRESETS["lung"].width) == (-600, 1500)
    assert (PRESETS["abdomen"].center, PRESETS["abdomen"].width) == (40, 400)
    assert (PRESETS["mediastinum"].center, PRESETS["mediastinum"].width) == (50, 350)
    assert PRESETS["bone"].width in (1500, 1800)


def test_multiple_file_windows_are_all_offered():
    ds = read_dataset(data_file("J2K_pixelrep_mismatch.dcm"))
    wins = file_windows(ds)
    assert [(w.center, w.width) for w in wins] == [(40, 100), (40, 100), (40, 200)]


def test_ct_probe_gives_hounsfield_units():
    ds = read_dataset(data_file("CT_small.dcm"))
    f = Frame(ds, ds.pixel_array)
    p = f.probe(64, 64)
    assert p.unit == "HU"
    assert p.value == ds.pixel_array[64, 64] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    with pytest.raises(IndexError):
        f.probe(128, 0)


def _direct(frame: Frame, wl: WindowLevel) -> np.ndarray:
    out = _to_u8(voi_linear(frame.modality(frame.stored), wl))
    return 255 - out if frame.invert else out


@settings(max_examples=60, deadline=None)
@given(
    lo=st.integers(-32768, 32000),
    span=st.integers(0, 4000),
    slope=st.sampled_from([1.0, 0.5, 2.0, 0.000123]),
    intercept=st.floats(-2000, 2000, allow_nan=False),
    center=st.floats(-3000, 3000, allow_nan=False),
    width=st.floats(1, 5000, allow_nan=False),
    mono1=st.booleans(),
)
def test_lut_path_equals_direct_formula(lo, span, slope, intercept, center, width, mono1):
    ds = read_dataset(data_file("CT_small.dcm"))
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PhotometricInterpretation = "MONOCHROME1" if mono1 else "MONOCHROME2"
    hi = min(lo + span, 32767)
    rng = np.random.default_rng(lo & 0xFFFF)
    stored = rng.integers(lo, hi + 1, size=(32, 48)).astype(np.int16)
    frame = Frame(ds, stored)
    wl = WindowLevel(center, width)
    assert np.array_equal(frame.render(wl), _direct(frame, wl))


def test_float_pixels_take_the_direct_path():
    ds = read_dataset(data_file("CT_small.dcm"))
    stored = np.linspace(-1000.0, 1000.0, 64 * 64).reshape(64, 64)
    frame = Frame(ds, stored)
    out = frame.render(PRESETS["abdomen"])
    assert out.dtype == np.uint8 and out.shape == (64, 64)
    assert np.array_equal(out, _direct(frame, PRESETS["abdomen"]))


def _fg(**groups) -> Dataset:
    fg = Dataset()
    for seq_name, attrs in groups.items():
        item = Dataset()
        for k, v in attrs.items():
            setattr(item, k, v)
        setattr(fg, seq_name, Sequence([item]))
    return fg


def test_enhanced_functional_groups_per_frame_then_shared():
    ds = read_dataset(data_file("CT_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = 1, 1  # top level: must lose to the functional groups
    ds.SharedFunctionalGroupsSequence = Sequence([_fg(
        FrameVOILUTSequence={"WindowCenter": 40, "WindowWidth": 400},
        PixelValueTransformationSequence={"RescaleSlope": 2, "RescaleIntercept": -10})])
    ds.PerFrameFunctionalGroupsSequence = Sequence([
        _fg(FrameVOILUTSequence={"WindowCenter": -600, "WindowWidth": 1500}),
        _fg(),
    ])
    f0, f1 = Frame(ds, ds.pixel_array, 0), Frame(ds, ds.pixel_array, 1)
    assert (f0.windows[0].center, f0.windows[0].width) == (-600, 1500)  # per-frame
    assert (f1.windows[0].center, f1.windows[0].width) == (40, 400)  # shared
    assert (f0.slope, f0.intercept) == (2, -10) == (f1.slope, f1.intercept)
