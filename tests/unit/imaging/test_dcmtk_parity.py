"""Our 8-bit rendering against dcmtk's (dcm2pnm / dcmj2pnm / dcml2pnm), the independent
reference. Lossless inputs must match within +-1 grey level (they match exactly in practice);
lossy JPEG is decoded by different IDCTs (libjpeg vs dcmtk's IJG), see docs/imaging.md."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.core.imaging_types import PRESETS, WindowLevel
from app.imaging.load import read_dataset
from app.imaging.render import Frame, load_frame
from tests.unit.imaging.conftest import data_file
from tests.unit.imaging.dcmtk import dcm2pnm, tool_for

pytestmark = pytest.mark.skipif(shutil.which("dcm2pnm") is None, reason="dcmtk missing")


def _ours(path: Path, frame: int, window) -> np.ndarray:
    f = load_frame(read_dataset(path), frame - 1)
    if window == "minmax":
        return f.render(f.minmax_window())
    if isinstance(window, int):
        return f.render(f.windows[window - 1])
    if window == "voilut":
        return f.render(voi_lut=0)
    return f.render(window)


def _dcmtk_options(window) -> list[str]:
    if window == "minmax":
        return ["+Wm"]
    if isinstance(window, int):
        return ["+Wi", str(window)]
    if window == "voilut":
        return ["+Wl", "1"]
    if isinstance(window, WindowLevel):
        return ["+Ww", f"{window.center:g}", f"{window.width:g}"]
    return []  # colour: no VOI


def _compare(path: Path, tmp: Path, window, frame: int = 1) -> np.ndarray:
    ds = dcmread(path, stop_before_pixels=True)
    tool = tool_for(str(ds.file_meta.TransferSyntaxUID))
    ref = dcm2pnm(path, tmp, *_dcmtk_options(window), "--no-overlays", frame=frame, tool=tool)
    ours = _ours(path, frame, window)
    assert ours.shape == ref.shape
    return ours.astype(np.int16) - ref.astype(np.int16)


LOSSLESS_CASES = [
    ("CT_small.dcm", PRESETS["brain"], 1),
    ("CT_small.dcm", PRESETS["lung"], 1),
    ("CT_small.dcm", PRESETS["bone"], 1),
    ("CT_small.dcm", PRESETS["abdomen"], 1),
    ("CT_small.dcm", PRESETS["mediastinum"], 1),
    ("CT_small.dcm", "minmax", 1),
    ("CT_small.dcm", WindowLevel(0.5, 1), 1),  # the width-1 threshold case
    ("MR_small.dcm", 1, 1),
    ("MR_small_implicit.dcm", 1, 1),
    ("MR_small_bigendian.dcm", 1, 1),
    ("MR_small_RLE.dcm", 1, 1),
    ("MR_small_jpeg_ls_lossless.dcm", 1, 1),
    ("JPEGLSNearLossless_16.dcm", "minmax", 1),
    ("examples_overlay.dcm", 1, 1),
    ("examples_overlay.dcm", 2, 1),
    ("image_dfl.dcm", "minmax", 1),
    ("rtdose.dcm", "minmax", 1),
    ("rtdose.dcm", "minmax", 8),  # multi-frame: a middle frame
    ("rtdose_rle.dcm", "minmax", 15),
    ("liver_1frame.dcm", "minmax", 1),
    ("SC_rgb_jpeg_gdcm.dcm", None, 1),  # JPEG lossless, RGB
    ("SC_rgb_rle_16bit.dcm", None, 1),
    ("SC_rgb_rle_2frame.dcm", None, 2),
    ("SC_rgb_small_odd_big_endian.dcm", None, 1),
    ("examples_palette.dcm", None, 1),
]


@pytest.mark.parametrize(("name", "window", "frame"), LOSSLESS_CASES,
                         ids=[f"{c[0]}-{c[1]}-f{c[2]}" for c in LOSSLESS_CASES])
def test_lossless_matches_dcmtk(name, window, frame, tmp_path):
    diff = _compare(data_file(name), tmp_path, window, frame)
    assert np.abs(diff).max() <= 1


@pytest.mark.parametrize(("name", "window", "frame"), [
    ("JPGExtended.dcm", "minmax", 1),  # 12-bit JPEG extended
    ("examples_ybr_color.dcm", None, 1),  # JPEG baseline YBR_FULL_422, 30 frames
    ("examples_ybr_color.dcm", None, 30),
    ("SC_rgb_jpeg_dcmtk.dcm", None, 1),
])
def test_lossy_jpeg_close_to_dcmtk(name, window, frame, tmp_path):
    diff = np.abs(_compare(data_file(name), tmp_path, window, frame))
    # Different but conforming IDCT/upsampling implementations: nearly all pixels within
    # one level, none far off.
    assert (diff <= 1).mean() >= 0.99
    assert diff.max() <= 4


# ---- files derived with dcmtk's own tools or built here, for cases pydicom does not ship


def _dcmtk_tool(*argv: str) -> None:
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} missing")
    subprocess.run(list(argv), check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("mode", ["+e1", "+el"])  # JPEG lossless: process 14 SV1, any SV
def test_jpeg_lossless_grayscale_matches_dcmtk(mode, tmp_path):
    out = tmp_path / "ct_jpegll.dcm"
    _dcmtk_tool("dcmcjpeg", mode, str(data_file("CT_small.dcm")), str(out))
    for window in (PRESETS["brain"], PRESETS["lung"]):
        assert np.abs(_compare(out, tmp_path, window)).max() <= 1


def test_rle_encoded_by_dcmtk_matches(tmp_path):
    out = tmp_path / "ct_rle.dcm"
    _dcmtk_tool("dcmcrle", str(data_file("CT_small.dcm")), str(out))
    assert np.abs(_compare(out, tmp_path, PRESETS["abdomen"])).max() <= 1


def test_monochrome1_is_inverted_like_dcmtk(tmp_path):
    out = tmp_path / "mono1.dcm"
    shutil.copy(data_file("MR_small.dcm"), out)
    _dcmtk_tool("dcmodify", "-nb", "-m", "(0028,0004)=MONOCHROME1", str(out))
    diff = _compare(out, tmp_path, 1)
    assert np.abs(diff).max() <= 1
    # and it really is the inverse of the MONOCHROME2 rendering
    mono2 = _ours(data_file("MR_small.dcm"), 1, 1)
    assert np.array_equal(_ours(out, 1, 1), 255 - mono2)


def _synthetic_12bit(tmp_path: Path, name: str, extra) -> Path:
    ds = dcmread(data_file("MR_small.dcm"))
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096)
    ds.PixelRepresentation = 0
    ds.BitsStored, ds.HighBit = 12, 11
    ds.PixelData = ramp.tobytes()
    for keyword in ("WindowCenter", "WindowWidth"):
        delattr(ds, keyword)
    extra(ds)
    path = tmp_path / name
    ds.save_as(path)
    return path


def _lut_item(first: int, bits: int, data: np.ndarray) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [int(data.size), first, bits]
    item.add_new(0x00283006, "OW", data.astype("<u2").tobytes())  # LUTData
    return item


def test_voi_lut_sequence_matches_dcmtk(tmp_path):
    curve = np.rint(np.sqrt(np.arange(4096) / 4095.0) * 4095).astype(np.uint16)

    def add(ds):
        ds.VOILUTSequence = Sequence([_lut_item(0, 12, curve)])

    path = _synthetic_12bit(tmp_path, "voilut.dcm", add)
    f = load_frame(read_dataset(path))
    assert f.default_window() is None  # the LUT, not a window, is the default
    assert np.abs(_compare(path, tmp_path, "voilut")).max() <= 1


def test_modality_lut_sequence_matches_dcmtk(tmp_path):
    table = (np.arange(4096) // 2 + 100).astype(np.uint16)

    def add(ds):
        ds.ModalityLUTSequence = Sequence([_lut_item(0, 16, table)])
        ds.ModalityLUTSequence[0].ModalityLUTType = "US"

    path = _synthetic_12bit(tmp_path, "mlut.dcm", add)
    assert np.abs(_compare(path, tmp_path, WindowLevel(1000, 1500))).max() <= 1
    frame = load_frame(read_dataset(path))
    assert frame.probe(0, 10).value == 105  # stored 10 -> 10 // 2 + 100


def test_synthetic_ct_series_matches_dcmtk(small_series, tmp_path):
    for window in (1, 2, PRESETS["bone"]):
        assert np.abs(_compare(small_series[2], tmp_path, window)).max() <= 1


def test_frame_reuse_gives_same_pixels_as_fresh_render():
    # Re-windowing goes through the cached index image; it must equal a fresh frame's.
    ds = read_dataset(data_file("CT_small.dcm"))
    f = load_frame(ds)
    for wl in PRESETS.values():
        fresh = Frame(ds, f.stored).render(wl)
        assert np.array_equal(f.render(wl), fresh)


def test_sigmoid_voi_function_matches_dcmtk(tmp_path):
    ds = dcmread(data_file("MR_small.dcm"))
    ds.VOILUTFunction = "SIGMOID"
    path = tmp_path / "sigmoid.dcm"
    ds.save_as(path)
    assert np.abs(_compare(path, tmp_path, 1)).max() <= 1
    # and it is not the linear rendering
    assert not np.array_equal(_ours(path, 1, 1), _ours(data_file("MR_small.dcm"), 1, 1))


@pytest.mark.parametrize("name", [
    "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm",
    "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
])
def test_lossless_encodings_render_identically(name):
    # dcmtk cannot decode JPEG 2000; a lossless encoding of MR_small must give exactly the
    # pixels of the native file, which matches dcmtk (above).
    reference = _ours(data_file("MR_small.dcm"), 1, 1)
    assert np.array_equal(_ours(data_file(name), 1, 1), reference)
