"""De-identification: DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile,
with the Retain Longitudinal Temporal Information options.

The attribute table (PS3.15 Table E.1-1, Basic Profile column) is data, not code we keep by
hand: it comes from the ``dicom-anonymizer`` package (BSD-3-Clause, maintained), which
transcribes the standard's table per edition; we use its 2026c edition. The actions are
applied by our own engine so that we control the choices the profile leaves open, keep UID
remapping consistent across a study, shift dates consistently, and report without PHI.

Choices where the table allows several actions (PS3.15 E.3):
- ``Z/D``, ``X/D``, ``X/Z/D`` -> D (a dummy value keeps Type 1 attributes valid);
  ``X/Z`` -> Z (keeps Type 2 attributes present, empty).
- ``X/Z/U*`` (reference sequences) -> kept, with every UID inside remapped.
- A sequence whose action is D or Z/D is kept and its items de-identified by the same rules
  (a dummy sequence would break the references it carries); Z empties it; X removes it.
- UIDs (U) are remapped to ``2.25.<n>`` with n = the first 128 bits of an HMAC-SHA256 of the
  original under a key: same key and input -> same output, across files and runs that share
  the key; without the key the mapping cannot be reversed or recomputed.
- All private attributes are removed (the profile's default; no Retain Safe Private option).
- Pixel data is not cleaned: burned-in text is flagged as a warning for a human to review.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import os
import secrets
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as _table
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag

from app.core.phi import Phi
from app.imaging.decode import transfer_syntax
from app.imaging.errors import DeidentificationFailed, ImagingError
from app.imaging.load import Source, expand_sources, read_dataset

TABLE_EDITION = "PS3.15 2026c Table E.1-1 (via dicom-anonymizer)"

# -------------------------------------------------------------------------- the table

_CATEGORIES = {
    "D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z", "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*",
}


def _load_table() -> tuple[dict[int, str], list[tuple[int, int, int, str]]]:
    exact: dict[int, str] = {}
    masked: list[tuple[int, int, int, str]] = []
    for name, action in _CATEGORIES.items():
        for entry in getattr(_table, name):
            if len(entry) == 2:
                exact[(entry[0] << 16) | entry[1]] = action
            else:  # repeating group: (group, element, group mask, element mask)
                g, e, gm, em = entry
                masked.append(((g << 16) | e, (gm << 16) | em, 0, action))
    return exact, masked


BASIC_PROFILE, _MASKED = _load_table()


def action_for(tag: int) -> str | None:
    """The Basic Profile action for a (non-private) tag, or None if the table is silent."""
    action = BASIC_PROFILE.get(tag)
    if action is not None:
        return action
    for value, mask, _unused, masked_action in _MASKED:
        if tag & mask == value:
            return masked_action
    return None


# -------------------------------------------------------------------- codes (PS3.16)

CODE_BASIC = ("113100", "Basic Application Confidentiality Profile")
CODE_FULL_DATES = ("113106", "Retain Longitudinal Temporal Information Full Dates Option")
CODE_MODIFIED_DATES = ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")

# Modalities and SOP classes whose pixels often carry burned-in text (patient name on an
# ultrasound screen capture, annotated secondary captures, angiography overlays).
_BURNED_IN_MODALITIES = frozenset({"US", "SC", "XA", "XC", "ES", "OT", "GM", "SM", "DOC", "RF"})
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"

_DUMMY_TEXT = "ANONYMIZED"
_DUMMY_BY_VR: dict[str, object] = {
    "PN": "ANONYMIZED", "LO": _DUMMY_TEXT, "SH": _DUMMY_TEXT, "LT": _DUMMY_TEXT,
    "ST": _DUMMY_TEXT, "UT": _DUMMY_TEXT, "UC": _DUMMY_TEXT, "CS": "ANONYMIZED",
    "AE": "ANONYMIZED", "UR": "urn:anonymized", "DA": "19000101", "TM": "000000",
    "DT": "19000101000000", "AS": "000D", "IS": "0", "DS": "0",
    "US": 0, "SS": 0, "UL": 0, "SL": 0, "UV": 0, "SV": 0, "FL": 0.0, "FD": 0.0,
    "OB": b"\x00\x00", "OW": b"\x00\x00", "OD": b"\x00" * 8, "OF": b"\x00" * 4,
    "OL": b"\x00" * 4, "OV": b"\x00" * 8, "UN": b"\x00\x00", "AT": 0,
}


@dataclass(frozen=True, slots=True)
class DeidOptions:
    """``retain_dates``: keep dates (Retain Longitudinal Temporal Information). With
    ``date_shift_days`` != 0 they are shifted by that many days (Modified Dates option,
    113107); with 0 they are kept as they are (Full Dates option, 113106)."""

    retain_dates: bool = False
    date_shift_days: int = 0
    uid_key: bytes | None = None  # None: a fresh random key per Deidentifier


@dataclass(slots=True)
class DeidResult:
    dataset: Dataset
    warnings: list[str]


class Deidentifier:
    """De-identifies datasets one after another with one UID mapping, so that a study
    exported file by file keeps its internal references."""

    def __init__(self, options: DeidOptions | None = None) -> None:
        self.options = options or DeidOptions()
        self._key = self.options.uid_key or secrets.token_bytes(32)
        self._uids: dict[str, str] = {}

    # -- values
    def map_uid(self, uid: str) -> str:
        uid = uid.strip().rstrip("\x00")
        if not uid:
            return uid
        mapped = self._uids.get(uid)
        if mapped is None:
            digest = hmac.new(self._key, uid.encode("ascii", "replace"), hashlib.sha256).digest()
            # PS3.5 B.2: a UUID-derived UID is 2.25 followed by the UUID as a decimal integer.
            mapped = "2.25." + str(int.from_bytes(digest[:16], "big"))
            self._uids[uid] = mapped
        return mapped

    def _shift_date(self, value: str) -> str:
        try:
            day = _dt.datetime.strptime(value[:8], "%Y%m%d").date()
        except ValueError:
            return ""  # a partial or malformed date cannot be shifted safely: empty it
        return (day + _dt.timedelta(days=self.options.date_shift_days)).strftime("%Y%m%d") + (
            value[8:])

    def _dates(self, elem: DataElement) -> None:
        """Retain Longitudinal Temporal Information: keep or shift date values."""
        if not self.options.date_shift_days or elem.VR == "TM":
            return
        values = elem.value if elem.VM > 1 else [elem.value]
        shifted = [self._shift_date(str(v)) if v else "" for v in values]
        elem.value = shifted if elem.VM > 1 else shifted[0]

    # -- the walk
    def _apply(self, ds: Dataset) -> None:
        for tag in list(ds.keys()):
            if tag not in ds:
                continue  # removed with its overlay group
            elem = ds[tag]
            if BaseTag(tag).is_private:
                del ds[tag]
                continue
            action = action_for(int(tag))
            if action is None:
                if elem.VR == "SQ":
                    self._recurse(elem)
                continue
            if self.options.retain_dates and elem.VR in ("DA", "DT", "TM"):
                self._dates(elem)
                continue
            self._act(ds, tag, elem, action)

    def _recurse(self, elem: DataElement) -> None:
        for item in elem.value or []:
            self._apply(item)

    def _act(self, ds: Dataset, tag: BaseTag, elem: DataElement, action: str) -> None:
        if action == "X":
            del ds[tag]
            if tag.group & 0xFF01 == 0x6000 and tag.element == 0x3000:
                # Without its Overlay Data (Type 1) the rest of the overlay group would be an
                # invalid Overlay Plane module: drop the whole overlay.
                # (iterating a Dataset yields elements, hence keys())
                for other in [t for t in ds.keys() if t.group == tag.group]:  # noqa: SIM118
                    del ds[other]
        elif action in ("Z", "X/Z"):
            elem.value = DicomSequence() if elem.VR == "SQ" else (
                b"" if elem.VR in ("OB", "OW", "UN") else None)
        elif action in ("U", "X/Z/U*") or elem.VR == "UI":
            if elem.VR == "SQ":
                self._recurse(elem)
            elif elem.value:
                values = elem.value if elem.VM > 1 else [elem.value]
                mapped = [self.map_uid(str(v)) for v in values]
                elem.value = mapped if elem.VM > 1 else mapped[0]
        else:  # D, Z/D, X/D, X/Z/D
            if elem.VR == "SQ":
                self._recurse(elem)
            else:
                elem.value = _DUMMY_BY_VR.get(elem.VR, _DUMMY_TEXT)

    def deidentify(self, ds: Dataset) -> DeidResult:
        """De-identify ``ds`` in place (file meta included) and return it with warnings."""
        try:
            notes = burned_in_warnings(ds)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._apply(ds)
                self._mark(ds)
                self._fix_meta(ds)
        except ImagingError:
            raise
        except Exception as exc:
            raise DeidentificationFailed(f"de-identification failed ({type(exc).__name__})"
                                         ) from None
        return DeidResult(ds, notes)

    def _mark(self, ds: Dataset) -> None:
        codes = [CODE_BASIC]
        method = "PS3.15 E Basic Profile (SafeConsult)"
        if self.options.retain_dates:
            codes.append(CODE_MODIFIED_DATES if self.options.date_shift_days else CODE_FULL_DATES)
            method += ("; dates shifted" if self.options.date_shift_days else "; dates retained")
            ds.LongitudinalTemporalInformationModified = (
                "MODIFIED" if self.options.date_shift_days else "UNMODIFIED")
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = method[:64]
        items = []
        for value, meaning in codes:
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = DicomSequence(items)

    def _fix_meta(self, ds: Dataset) -> None:
        meta = getattr(ds, "file_meta", None)
        if meta is None or not isinstance(meta, FileMetaDataset):
            meta = FileMetaDataset()
            meta.TransferSyntaxUID = transfer_syntax(ds)
            ds.file_meta = meta
        for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                        "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID",
                        "PrivateInformation"):
            if keyword in meta:
                delattr(meta, keyword)
        if "SOPClassUID" in ds:
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        elif "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = self.map_uid(str(meta.MediaStorageSOPInstanceUID))


def burned_in_warnings(ds: Dataset) -> list[str]:
    """PHI-free warnings when the pixels themselves may identify the patient."""
    out = []
    burned = str(ds.get("BurnedInAnnotation", "")).upper()
    modality = str(ds.get("Modality", "")).upper()
    sop_class = str(ds.get("SOPClassUID", ""))
    if burned == "YES":
        out.append("BurnedInAnnotation is YES: the image shows text that may identify the "
                   "patient; review or mask the pixels before sharing")
    elif burned != "NO" and (modality in _BURNED_IN_MODALITIES
                             or sop_class.startswith(_SECONDARY_CAPTURE_PREFIX)):
        out.append(f"{modality or 'this'} images often carry burned-in text; review the pixels "
                   "before sharing")
    if str(ds.get("RecognizableVisualFeatures", "")).upper() == "YES":
        out.append("RecognizableVisualFeatures is YES: the image may show the patient's face")
    return out


# ---------------------------------------------------------------------- files and CLI


@dataclass(slots=True)
class FileReport:
    source: Phi[str]
    output: Path | None
    warnings: list[str] = field(default_factory=list)
    error: ImagingError | None = None


@dataclass(slots=True)
class DeidReport:
    files: list[FileReport]
    method_codes: list[str]
    table: str = TABLE_EDITION

    @property
    def written(self) -> int:
        return sum(1 for f in self.files if f.output is not None)

    @property
    def failed(self) -> int:
        return sum(1 for f in self.files if f.error is not None)


def deidentify_bytes(data: bytes, deidentifier: Deidentifier) -> tuple[bytes, list[str]]:
    """In-memory variant for decrypted shared studies: bytes in, de-identified bytes out."""
    import io

    result = deidentifier.deidentify(read_dataset(data))
    buffer = io.BytesIO()
    _write(result.dataset, buffer)
    return buffer.getvalue(), result.warnings


def _write(ds: Dataset, target: object) -> None:
    try:
        ds.save_as(target, enforce_file_format=True)  # type: ignore[arg-type]
    except Exception as exc:
        raise DeidentificationFailed(f"could not write the result ({type(exc).__name__})"
                                     ) from None


def deidentify_paths(inputs: Iterable[Source], out_dir: Path | str, *,
                     retain_dates: bool = False, date_shift_days: int = 0,
                     uid_key: bytes | None = None) -> DeidReport:
    """De-identify every DICOM file under ``inputs`` into ``out_dir`` (flat, IM00001.dcm ...,
    names that say nothing about the patient). One UID mapping covers the whole call."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tool = Deidentifier(DeidOptions(retain_dates, date_shift_days, uid_key))
    files: list[FileReport] = []
    count = 0
    for label, source in expand_sources(inputs):
        try:
            result = tool.deidentify(read_dataset(source))
            count += 1
            target = out / f"IM{count:05d}.dcm"
            tmp = target.with_suffix(".part")
            _write(result.dataset, str(tmp))
            os.replace(tmp, target)  # no half-written file under the final name
            files.append(FileReport(label, target, result.warnings))
        except ImagingError as exc:
            files.append(FileReport(label, None, [], exc))
    codes = [CODE_BASIC[0]]
    if retain_dates:
        codes.append(CODE_MODIFIED_DATES[0] if date_shift_days else CODE_FULL_DATES[0])
    return DeidReport(files, codes)


__all__ = [
    "BASIC_PROFILE", "DeidOptions", "DeidReport", "Deidentifier", "FileReport",
    "action_for", "burned_in_warnings", "deidentify_bytes", "deidentify_paths",
]
