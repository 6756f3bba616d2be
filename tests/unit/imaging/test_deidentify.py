"""PS3.15 Annex E Basic Profile: every table action on a file that has every attribute,
well-known attributes against the standard, UID consistency, the temporal options,
private tags, burned-in warnings, PHI gone from the bytes, and dciodvfy finds no new error."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from app.core.phi import Phi
from app.imaging.deidentify import (
    BASIC_PROFILE,
    Deidentifier,
    DeidOptions,
    action_for,
    deidentify_bytes,
    deidentify_paths,
)
from app.imaging.errors import NotDicom
from app.imaging.load import read_dataset
from app.imaging.render import render
from tests.unit.imaging.conftest import data_file

_SYNTH: dict[str, object] = {
    "AE": "AETITLE1", "AS": "042Y", "AT": 0x00100010, "CS": "SYNTH", "DA": "20200315",
    "DS": "1.5", "DT": "20200315101010", "FL": 1.5, "FD": 2.5, "IS": "7", "LO": "Synth LO",
    "LT": "Synth LT", "OB": b"\x01\x02", "OD": b"\x01" * 8, "OF": b"\x01" * 4,
    "OL": b"\x01" * 4, "OV": b"\x01" * 8, "OW": b"\x01\x02", "PN": "Doe^John", "SH": "SYNSH",
    "SL": -5, "SS": -3, "ST": "Synth ST", "SV": -9, "TM": "101010", "UC": "Synth UC",
    "UL": 5, "UN": b"\x01\x02", "UR": "http://example.org/x", "US": 3, "UT": "Synth UT",
    "UV": 9,
}


def _item() -> Dataset:
    item = Dataset()
    item.PatientName = "Doe^John"
    item.ReferencedSOPClassUID = CTImageStorage
    item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.99.1"
    item.add_new(0x00091010, "LO", "private in a sequence")
    return item


def _everything() -> tuple[Dataset, dict[int, object]]:
    """A dataset holding every attribute of Table E.1-1 that pydicom's dictionary knows."""
    ds = Dataset()
    originals: dict[int, object] = {}
    for n, tag in enumerate(sorted(BASIC_PROFILE)):
        if tag >> 16 == 0x0002 or not keyword_for_tag(tag):
            continue
        vr = dictionary_VR(tag).split(" or ")[0]
        if vr == "SQ":
            value: object = Sequence([_item()])
        elif vr == "UI":
            value = f"1.2.826.0.1.3680043.99.{1000 + n}"
        else:
            value = _SYNTH[vr]
        ds.add_new(tag, vr, value)
        originals[tag] = value
    # repeating groups of the table: curves (50xx) and overlays (60xx)
    ds.add_new(0x50000010, "US", 4)
    ds.add_new(0x50003000, "OB", b"\x00\x01")
    ds.add_new(0x60020010, "US", 8)
    ds.add_new(0x60023000, "OW", b"\x01\x02" * 4)
    ds.add_new(0x60024000, "LT", "overlay comment naming Doe")
    ds.add_new(0x00090010, "LO", "ACME private creator")
    ds.add_new(0x00091001, "LO", "private PHI")
    return ds, originals


def _empty(value: object) -> bool:
    return value in (None, "", b"") or (isinstance(value, Sequence) and len(value) == 0)


def test_every_table_action_is_applied():
    ds, originals = _everything()
    assert len(originals) > 550  # the table really is populated
    tool = Deidentifier(DeidOptions(uid_key=b"k" * 32))
    out = tool.deidentify(ds).dataset
    seen = Counter()
    for tag, original in originals.items():
        action = BASIC_PROFILE[tag]
        seen[action] += 1
        name = keyword_for_tag(tag)
        if action == "X":
            assert tag not in out, name
            continue
        assert tag in out, f"{name} ({action}) must stay"
        value = out[tag].value
        vr = out[tag].VR
        if action in ("Z", "X/Z"):
            assert _empty(value), name
        elif vr == "SQ":
            # kept; its items de-identified by the same rules
            for item in value:
                assert _empty(item.get("PatientName")), name
                assert item.ReferencedSOPInstanceUID.startswith("2.25."), name
                assert not any(e.tag.is_private for e in item), name
        elif action == "U" or vr == "UI":
            assert str(value).startswith("2.25.") and value != original, name
            assert value == tool.map_uid(str(original)), name
        else:  # D, Z/D, X/D, X/Z/D: a dummy value, never the original
            assert not _empty(value) and value != original, name
    # all action kinds of the Basic Profile column were exercised
    assert set(seen) == {"D", "Z", "X", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
    # repeating groups: curves and overlay data removed, with the rest of the overlay
    tags = [elem.tag for elem in out]
    assert not any(t.group in (0x5000, 0x6002) for t in tags)
    assert not any(t.is_private for t in tags)
    assert out.PatientIdentityRemoved == "YES"
    assert [i.CodeValue for i in out.DeidentificationMethodCodeSequence] == ["113100"]
    assert all(i.CodingSchemeDesignator == "DCM" for i in out.DeidentificationMethodCodeSequence)


# The standard's Basic Profile column for attributes everyone knows (PS3.15 Table E.1-1);
# a second, hand-kept source so that a bad edition of the library's table is caught.
KNOWN = {
    "PatientName": {"Z"}, "PatientBirthDate": {"Z"}, "PatientSex": {"Z"},
    "PatientID": {"Z", "Z/D"}, "OtherPatientIDs": {"X"}, "OtherPatientNames": {"X"},
    "PatientAddress": {"X"}, "PatientAge": {"X"}, "PatientWeight": {"X"},
    "PatientTelephoneNumbers": {"X"}, "EthnicGroup": {"X"}, "MedicalRecordLocator": {"X"},
    "StudyInstanceUID": {"U"}, "SeriesInstanceUID": {"U"}, "SOPInstanceUID": {"U"},
    "FrameOfReferenceUID": {"U"}, "AccessionNumber": {"Z"}, "StudyDate": {"Z"},
    "StudyTime": {"Z"}, "StudyID": {"Z"}, "ReferringPhysicianName": {"Z"},
    "InstitutionName": {"X/Z/D"}, "InstitutionAddress": {"X"}, "StationName": {"X/Z/D"},
    "StudyDescription": {"X"}, "SeriesDescription": {"X"}, "ImageComments": {"X"},
    "AdditionalPatientHistory": {"X"}, "PerformingPhysicianName": {"X"},
    "OperatorsName": {"X/Z/D"}, "RequestAttributesSequence": {"X"},
    "DeviceSerialNumber": {"X/Z/D"}, "ContentDate": {"Z/D"}, "ContentTime": {"Z/D"},
}


@pytest.mark.parametrize("keyword", sorted(KNOWN))
def test_table_agrees_with_the_standard_on_well_known_attributes(keyword):
    assert action_for(tag_for_keyword(keyword)) in KNOWN[keyword]


def test_attributes_outside_the_table_are_kept():
    for keyword in ("Modality", "Rows", "PixelSpacing", "WindowCenter", "RescaleSlope",
                    "ImagePositionPatient", "SOPClassUID"):
        assert action_for(tag_for_keyword(keyword)) is None


def _ct(**changes) -> Dataset:
    ds = dcmread(data_file("CT_small.dcm"))
    for k, v in changes.items():
        setattr(ds, k, v)
    return ds


def test_uid_mapping_is_consistent_across_files_and_keyed():
    a, b = _ct(), _ct(SOPInstanceUID="1.2.3.4.5.6")
    study = str(a.StudyInstanceUID)
    tool = Deidentifier(DeidOptions(uid_key=b"secret-key-1"))
    ra, rb = tool.deidentify(a).dataset, tool.deidentify(b).dataset
    assert ra.StudyInstanceUID == rb.StudyInstanceUID != study
    assert ra.SOPInstanceUID != rb.SOPInstanceUID
    assert ra.file_meta.MediaStorageSOPInstanceUID == ra.SOPInstanceUID
    assert len(str(ra.StudyInstanceUID)) <= 64
    same_key = Deidentifier(DeidOptions(uid_key=b"secret-key-1")).map_uid(study)
    other_key = Deidentifier(DeidOptions(uid_key=b"secret-key-2")).map_uid(study)
    assert same_key == ra.StudyInstanceUID != other_key
    assert Deidentifier().map_uid(study) != Deidentifier().map_uid(study)  # random keys


def test_retain_full_dates():
    ds = _ct()
    original = (ds.StudyDate, ds.SeriesDate, ds.AcquisitionTime)
    out = Deidentifier(DeidOptions(retain_dates=True)).deidentify(ds).dataset
    assert (out.StudyDate, out.SeriesDate, out.AcquisitionTime) == original
    codes = [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113106"]
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert _empty(out.PatientName) and _empty(out.PatientBirthDate)  # identity still removed


def test_retain_dates_shifted_consistently():
    import datetime as dt

    tool = Deidentifier(DeidOptions(retain_dates=True, date_shift_days=-1000))
    a = tool.deidentify(_ct(StudyDate="20200229", SeriesDate="20200301")).dataset
    b = tool.deidentify(_ct(StudyDate="20200229", SeriesDate="20200302")).dataset
    shift = dt.timedelta(days=-1000)
    assert a.StudyDate == (dt.date(2020, 2, 29) + shift).strftime("%Y%m%d") == b.StudyDate
    interval = (dt.datetime.strptime(b.SeriesDate, "%Y%m%d")
                - dt.datetime.strptime(a.SeriesDate, "%Y%m%d")).days
    assert interval == 1  # intervals between events survive
    assert [i.CodeValue for i in a.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    assert a.LongitudinalTemporalInformationModified == "MODIFIED"


def test_without_the_option_dates_are_removed():
    out = Deidentifier().deidentify(_ct()).dataset
    assert _empty(out.StudyDate)
    assert out.get("SeriesDate") in (None, "19000101")  # X/D -> dummy


def test_burned_in_warnings():
    us = read_dataset(data_file("examples_ybr_color.dcm"))
    assert Deidentifier().deidentify(us).warnings
    assert Deidentifier().deidentify(_ct(BurnedInAnnotation="YES")).warnings
    assert Deidentifier().deidentify(_ct()).warnings == []
    ok_us = read_dataset(data_file("examples_ybr_color.dcm"))
    ok_us.BurnedInAnnotation = "NO"
    assert Deidentifier().deidentify(ok_us).warnings == []


def test_phi_is_gone_from_the_written_bytes_and_pixels_are_untouched():
    ds = _ct(PatientName="Doe^Jane", PatientID="MRN-778899", PatientBirthDate="19610203",
             InstitutionName="Saint Nowhere Hospital", OtherPatientIDs="ALT-5566")
    buffer = io.BytesIO()
    ds.save_as(buffer)
    out_bytes, _warnings = deidentify_bytes(buffer.getvalue(), Deidentifier())
    for secret in (b"Doe^Jane", b"MRN-778899", b"19610203", b"Saint Nowhere", b"ALT-5566",
                   str(ds.StudyInstanceUID).encode()):
        assert secret not in out_bytes
    assert np.array_equal(render(read_dataset(out_bytes)), render(ds))


def test_deidentify_paths_report(small_series, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(small_series[0].parent, folder)
    (folder / "junk.bin").write_bytes(b"junk")
    report = deidentify_paths([folder], tmp_path / "out", retain_dates=True,
                              date_shift_days=30)
    assert report.written == len(small_series) and report.failed == 1
    bad = next(f for f in report.files if f.error is not None)
    assert isinstance(bad.error, NotDicom) and isinstance(bad.source, Phi)
    assert report.method_codes == ["113100", "113107"]
    outs = [dcmread(f.output) for f in report.files if f.output is not None]
    assert [f.output.name for f in report.files if f.output][:2] == ["IM00001.dcm",
                                                                     "IM00002.dcm"]
    assert len({o.StudyInstanceUID for o in outs}) == 1
    assert len({o.SeriesInstanceUID for o in outs}) == 1
    assert len({o.SOPInstanceUID for o in outs}) == len(outs)
    assert all(o.StudyDate == "20260131" for o in outs)  # 2026-01-01 + 30 days
    assert all("SYNTHETIC" not in str(o.PatientName) for o in outs)
    assert not list((tmp_path / "out").glob("*.part"))


# ------------------------------------------------------------------------- dciodvfy

DCIODVFY = shutil.which("dciodvfy")


def _errors(path: Path) -> Counter:
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    lines = [line for line in (run.stdout + run.stderr).splitlines()
             if line.startswith("Error")]
    # UIDs change by design; compare messages with them masked
    return Counter(re.sub(r"\d+(\.\d+){2,}", "<uid>", line) for line in lines)


@pytest.mark.skipif(DCIODVFY is None, reason="dicom3tools (dciodvfy) missing")
@pytest.mark.parametrize("name", [
    "CT_small.dcm", "MR_small.dcm", "examples_ybr_color.dcm", "examples_overlay.dcm",
    "test-SR.dcm", "rtplan.dcm", "waveform_ecg.dcm", "JPEG2000.dcm", "examples_palette.dcm",
])
@pytest.mark.parametrize("retain_dates", [False, True])
def test_dciodvfy_finds_no_new_errors(name, retain_dates, tmp_path):
    src = data_file(name)
    report = deidentify_paths([src], tmp_path, retain_dates=retain_dates, date_shift_days=-7)
    (result,) = report.files
    assert result.output is not None
    new = _errors(result.output) - _errors(src)
    assert not new, list(new)


@pytest.mark.skipif(DCIODVFY is None, reason="dicom3tools (dciodvfy) missing")
def test_dciodvfy_on_generated_series(small_series, tmp_path):
    report = deidentify_paths(small_series[:2], tmp_path)
    for src, res in zip(small_series[:2], report.files, strict=True):
        assert not (_errors(res.output) - _errors(src))


def test_file_meta_is_rebuilt_for_a_bare_dataset():
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.99.7"
    ds.PatientName = "Doe^John"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = Deidentifier().deidentify(ds).dataset
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.SOPInstanceUID != "1.2.826.0.1.3680043.99.7"
