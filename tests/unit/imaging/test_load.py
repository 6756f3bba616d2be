"""Opening files, folders and bytes; typed errors; series grouping and sorting; PHI."""

from __future__ import annotations

import io
import logging
import random
import shutil

import numpy as np
import pytest
from pydicom import dcmread

from app.core.logsafe import PhiLogFilter
from app.core.phi import Phi
from app.imaging.decode import check_decodable, decode_frame, decode_frame_isolated
from app.imaging.errors import (
    DecodeFailed,
    DecodeTimeout,
    ImageTooLarge,
    MissingPixelData,
    NotDicom,
    TruncatedDicom,
    UnsupportedTransferSyntax,
)
from app.imaging.load import load, read_dataset
from app.imaging.render import load_frame, render
from tests.unit.imaging.conftest import data_file


def test_bytes_and_path_give_the_same_image():
    path = data_file("MR_small_RLE.dcm")
    a = render(read_dataset(path))
    b = render(read_dataset(path.read_bytes()))
    c = render(read_dataset(memoryview(bytearray(path.read_bytes()))))
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_not_dicom():
    for data in (b"", b"hello", b"\x89PNG\r\n\x1a\n" + bytes(300), bytes(1000)):
        with pytest.raises(NotDicom) as info:
            read_dataset(data)
        assert info.value.user_message


def test_missing_file_is_not_dicom(tmp_path):
    with pytest.raises(NotDicom):
        read_dataset(tmp_path / "absent.dcm")


def test_truncated_pixel_data():
    with pytest.raises(TruncatedDicom):
        load_frame(read_dataset(data_file("MR_truncated.dcm")))


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.97])
def test_file_cut_short_is_truncated_or_not_dicom(keep):
    data = data_file("CT_small.dcm").read_bytes()
    cut = data[: int(len(data) * keep)]
    with pytest.raises((TruncatedDicom, NotDicom)):
        load_frame(read_dataset(cut))


def test_file_cut_inside_pixel_data_is_truncated():
    data = data_file("CT_small.dcm").read_bytes()
    with pytest.raises(TruncatedDicom):
        load_frame(read_dataset(data[:-1000]))


def test_unsupported_transfer_syntax_is_named():
    ds = dcmread(data_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video
    with pytest.raises(UnsupportedTransferSyntax) as info:
        decode_frame(ds)
    assert "1.2.840.10008.1.2.4.100" in info.value.user_message
    assert "MPEG2" in info.value.user_message
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5"
    with pytest.raises(UnsupportedTransferSyntax) as info:
        decode_frame(ds)
    assert "1.2.3.4.5" in info.value.user_message


def test_missing_pixel_data():
    for name in ("rtplan.dcm", "waveform_ecg.dcm", "test-SR.dcm"):
        with pytest.raises(MissingPixelData):
            load_frame(read_dataset(data_file(name)))


def test_pathological_sizes_are_refused_before_decoding():
    ds = dcmread(data_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 5000
    with pytest.raises(ImageTooLarge):
        check_decodable(ds)
    ds = dcmread(data_file("CT_small.dcm"))
    ds.BitsAllocated = 7
    with pytest.raises(DecodeFailed):
        decode_frame(ds)


def test_decoder_failure_is_typed():
    with pytest.raises(DecodeFailed):
        load_frame(read_dataset(data_file("JPEG2000-embedded-sequence-delimiter.dcm")))


def test_isolated_decode_matches_and_times_out():
    data = data_file("MR_small_RLE.dcm").read_bytes()
    assert np.array_equal(decode_frame_isolated(data, timeout_s=60), decode_frame(
        read_dataset(data)))
    with pytest.raises(NotDicom):  # typed errors cross the process boundary
        decode_frame_isolated(b"not dicom at all", timeout_s=60)
    with pytest.raises(DecodeTimeout):
        decode_frame_isolated(data, timeout_s=0.001)


# ---------------------------------------------------------------- series


def test_series_grouped_and_sorted_by_position(small_series, tmp_path):
    # a second series and a junk file in the same folder
    folder = tmp_path / "mixed"
    shutil.copytree(small_series[0].parent, folder)
    other = dcmread(data_file("MR_small.dcm"))
    other.save_as(folder / "zz_mr.dcm")
    (folder / "notes.txt").write_text("not an image")
    result = load([folder])
    assert len(result.failures) == 1 and isinstance(result.failures[0][1], NotDicom)
    assert isinstance(result.failures[0][0], Phi)  # file names may name the patient
    ct = next(s for s in result.series if s.info.modality == "CT")
    assert ct.sorted_by == "position"
    z = [float(i.dataset.ImagePositionPatient[2]) for i in ct.instances]
    assert z == sorted(z) and len(z) == len(small_series)
    assert ct.info.instance_count == len(small_series) == ct.frame_count


def test_sort_falls_back_to_instance_number(small_series):
    datasets = [dcmread(p) for p in small_series]
    random.Random(3).shuffle(datasets)
    blobs = []
    for ds in datasets:
        del ds.ImagePositionPatient
        buffer = io.BytesIO()
        ds.save_as(buffer)
        blobs.append(buffer.getvalue())
    series = load(blobs).series
    assert len(series) == 1 and series[0].sorted_by == "instance number"
    numbers = [int(i.dataset.InstanceNumber) for i in series[0].instances]
    assert numbers == sorted(numbers)


def test_oblique_slices_sort_along_their_normal(small_series):
    # Tilt the stack: orientation rows along x, columns along (0, cos, sin); positions step
    # along the normal. File order reversed; sorting must restore it.
    c, s = np.cos(0.4), np.sin(0.4)
    normal = np.array([0.0, -s, c])
    blobs = []
    for k, path in enumerate(reversed(small_series)):
        ds = dcmread(path)
        ds.ImageOrientationPatient = [1, 0, 0, 0, float(c), float(s)]
        ds.ImagePositionPatient = [float(v) for v in (normal * (10 - k) * 2.5)]
        ds.InstanceNumber = k + 1
        buffer = io.BytesIO()
        ds.save_as(buffer)
        blobs.append(buffer.getvalue())
    (series,) = load(blobs).series
    proj = [float(np.dot(np.array(i.dataset.ImagePositionPatient, float), normal))
            for i in series.instances]
    assert proj == sorted(proj)


def test_study_info_wraps_phi_and_logs_nothing(small_series, caplog):
    (series,) = load([small_series[0]]).series
    patient = series.info.study.patient
    assert isinstance(patient.name, Phi) and patient.name.reveal() == "SYNTHETIC^PATIENT"
    assert patient.patient_id.reveal() == "SYN-0001"
    assert "SYNTHETIC" not in repr(series.info) and "SYN-0001" not in str(series.info)
    logger = logging.getLogger("test.imaging")
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(PhiLogFilter())
    logger.addHandler(handler)
    logger.warning("opened %s for %s", series.info, patient.name)
    assert "SYNTHETIC" not in handler.stream.getvalue()


def test_error_messages_do_not_quote_file_content(tmp_path):
    ds = dcmread(data_file("CT_small.dcm"))
    ds.PatientName = "Doe^Jane"
    ds.add_new(0x00280008, "LO", "Doe^Jane")  # NumberOfFrames: garbage, under a wrong VR
    path = tmp_path / "bad.dcm"
    ds.save_as(path)
    with pytest.raises(DecodeFailed) as info:
        load_frame(read_dataset(path))
    assert "Doe" not in str(info.value) and "Doe" not in info.value.user_message


@pytest.mark.parametrize("keyword", ["WindowCenter", "RescaleSlope", "PixelSpacing",
                                     "ImagePositionPatient", "InstanceNumber"])
def test_malformed_header_values_are_typed_or_ignored(keyword):
    ds = dcmread(data_file("CT_small.dcm"))
    marker = "123.456" if keyword != "InstanceNumber" else "123456"
    setattr(ds, keyword, [marker] * (3 if keyword == "ImagePositionPatient" else
                                     2 if keyword == "PixelSpacing" else 1))
    buffer = io.BytesIO()
    ds.save_as(buffer)
    data = buffer.getvalue()
    assert data.count(marker.encode()) >= 1
    data = data.replace(marker.encode(), b"1^x.Doe"[: len(marker)])
    try:
        series = load([data]).series
        frame = load_frame(series[0].instances[0].dataset)
        assert frame.render().dtype == np.uint8
        from app.imaging.measure import distance

        distance(series[0].instances[0].dataset, (0, 0), (1, 1))
    except DecodeFailed as exc:
        assert "Doe" not in str(exc)


def test_pydicom_log_lines_do_not_carry_file_content(caplog):
    import logging as _logging

    caplog.set_level(_logging.DEBUG, logger="pydicom")
    _logging.getLogger("pydicom").warning("value 'Doe^Jane' is invalid")
    assert caplog.records and all("Doe" not in r.getMessage() for r in caplog.records)
