"""Overlay planes against dcmtk, which draws them by default."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from pydicom import dcmread

from app.imaging.load import read_dataset
from app.imaging.overlay import burn_in, overlays
from app.imaging.render import load_frame
from tests.unit.imaging.conftest import data_file
from tests.unit.imaging.dcmtk import dcm2pnm


def test_overlay_bitmap_matches_pydicom():
    ds = read_dataset(data_file("examples_overlay.dcm"))
    (ov,) = overlays(ds)
    assert ov.kind == "G" and ov.origin == (0, 0)
    assert np.array_equal(ov.bitmap, dcmread(data_file("examples_overlay.dcm")
                                             ).overlay_array(0x6000).astype(bool))
    assert 0 < ov.bitmap.sum() < ov.bitmap.size


@pytest.mark.skipif(shutil.which("dcm2pnm") is None, reason="dcmtk missing")
def test_burnt_in_overlay_matches_dcm2pnm(tmp_path):
    path = data_file("examples_overlay.dcm")
    ds = read_dataset(path)
    frame = load_frame(ds)
    ours = burn_in(frame.render(frame.windows[0]), overlays(ds))
    ref = dcm2pnm(path, tmp_path, "+Wi", "1", "+O", "0")
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1
    without = frame.render(frame.windows[0])
    assert not np.array_equal(ours, without)  # the overlay really changed pixels


def test_origin_offsets_and_clipping():
    ds = read_dataset(data_file("examples_overlay.dcm"))
    ds[0x60000050].value = [-9, 101]  # 1-based: starts 10 rows above, column 100 (0-based)
    (ov,) = overlays(ds)
    assert ov.origin == (-10, 100)
    image = np.zeros((300, 484), np.uint8)
    out = burn_in(image, [ov])
    expected = np.zeros_like(image)
    expected[0:290, 100:484] = np.where(ov.bitmap[10:300, 0:384], 255, 0)
    assert np.array_equal(out, expected)


def test_malformed_overlay_is_skipped():
    ds = read_dataset(data_file("examples_overlay.dcm"))
    ds[0x60003000].value = b"\x01"  # far too short
    assert overlays(ds) == []
    ds = read_dataset(data_file("examples_overlay.dcm"))
    ds[0x60000051].value = 5  # applies to frame 5 only
    assert overlays(ds, 0) == []
