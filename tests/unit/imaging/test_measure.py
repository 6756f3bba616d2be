from __future__ import annotations

import math

import pytest
from pydicom import dcmread

from app.imaging.measure import angle, distance, pixel_spacing
from tests.unit.imaging.conftest import data_file


def test_distance_uses_row_and_column_spacing():
    ds = dcmread(data_file("CT_small.dcm"), stop_before_pixels=True)
    ds.PixelSpacing = [0.5, 2.0]  # rows 0.5 mm apart, columns 2 mm apart
    m = distance(ds, (0, 0), (10, 0))
    assert (m.value, m.unit, m.calibrated) == (5.0, "mm", True)
    assert distance(ds, (0, 0), (0, 10)).value == 20.0
    assert distance(ds, (0, 0), (3, 2)).value == pytest.approx(math.hypot(1.5, 4.0))


def test_angle_in_physical_space():
    ds = dcmread(data_file("CT_small.dcm"), stop_before_pixels=True)
    ds.PixelSpacing = [1.0, 1.0]
    assert angle(ds, (0, 10), (0, 0), (10, 0)).value == pytest.approx(90)
    assert angle(ds, (0, 10), (0, 0), (10, 10)).value == pytest.approx(45)
    ds.PixelSpacing = [1.0, 2.0]  # the same pixels are no longer at 45 degrees
    assert angle(ds, (0, 10), (0, 0), (10, 10)).value == pytest.approx(
        math.degrees(math.atan2(10, 20)))
    with pytest.raises(ValueError):
        angle(ds, (0, 0), (0, 0), (1, 1))


def test_imager_spacing_only_is_flagged():
    ds = dcmread(data_file("CT_small.dcm"), stop_before_pixels=True)
    del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.2, 0.2]
    m = distance(ds, (0, 0), (0, 100))
    assert m.value == pytest.approx(20) and m.unit == "mm" and not m.calibrated
    assert "detector" in m.note
    del ds.ImagerPixelSpacing
    m = distance(ds, (0, 0), (0, 100))
    assert (m.value, m.unit, m.calibrated) == (100, "px", False)


def test_enhanced_multiframe_spacing_from_functional_groups():
    ds = dcmread(data_file("CT_small.dcm"), stop_before_pixels=True)
    del ds.PixelSpacing
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    measures = Dataset()
    measures.PixelSpacing = [0.3, 0.3]
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    s = pixel_spacing(ds, 0)
    assert (s.row_mm, s.col_mm, s.calibrated) == (0.3, 0.3, True)
