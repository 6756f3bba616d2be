"""Open DICOM files, folders or in-memory bytes; group instances into sorted series.

Shared studies arrive decrypted in memory, so every entry point takes ``bytes`` as well as
paths and nothing here writes a temporary file. Parsing errors become the typed errors of
:mod:`app.imaging.errors`; one bad file in a folder is reported, not fatal to the others.
"""

from __future__ import annotations

import io
import logging
import math
import os
import struct
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.config import IGNORE
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag

from app.core.imaging_types import PatientInfo, SeriesInfo, StudyInfo
from app.core.phi import Phi
from app.imaging.errors import ImagingError, NotDicom, TruncatedDicom

# pydicom's value validation on reading only warns, and its warnings quote the offending
# value (which may be a patient name). We validate what we use ourselves.
pydicom.config.settings.reading_validation_mode = IGNORE


class _WithholdMessages(logging.Filter):
    """pydicom's log lines can quote element values; keep the level and the place only."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = "pydicom message withheld (may quote file content)", None
        return True


for _name in ("pydicom", "pydicom.pixels.decoders.base", "pydicom.pixels.encoders.base",
              "pydicom.pixels.utils"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _WithholdMessages) for f in _logger.filters):
        _logger.addFilter(_WithholdMessages())

Source = Path | str | bytes | bytearray | memoryview

# The first element of a bare dataset (no preamble) is usually in group 0008 (or 0002 for a
# file meta without preamble); anything else is almost certainly not DICOM.
_BARE_STARTS = (b"\x08\x00", b"\x02\x00", b"\x00\x08", b"\x00\x02")


def _looks_like_bare_dataset(head: bytes) -> bool:
    return len(head) >= 8 and head[:2] in _BARE_STARTS


def read_dataset(source: Source, *, stop_before_pixels: bool = False) -> Dataset:
    """Parse one DICOM object from a path or from bytes, fully (no deferred reads), and
    check that every top-level element's value can be read."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = source if isinstance(source, bytes) else bytes(source)
        return _parse(io.BytesIO(data), data[:132], stop_before_pixels)
    try:
        # Parsed from the open file rather than from a bytes copy of it: one copy less,
        # and stop_before_pixels then really skips reading the pixels.
        with open(source, "rb") as stream:
            head = stream.read(132)
            stream.seek(0)
            return _parse(stream, head, stop_before_pixels)
    except OSError as exc:
        raise NotDicom(f"cannot read file ({type(exc).__name__})") from None


def _parse(stream: BinaryIO, head: bytes, stop_before_pixels: bool) -> Dataset:
    if len(head) < 8:
        raise NotDicom("too short to be DICOM")
    has_preamble = len(head) >= 132 and head[128:132] == b"DICM"
    if not has_preamble and not _looks_like_bare_dataset(head[:8]):
        raise NotDicom("no DICOM preamble and no recognisable dataset start")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(
                stream, force=not has_preamble, stop_before_pixels=stop_before_pixels
            )
            _touch_all(ds)
    except ImagingError:
        raise
    except InvalidDicomError:
        raise NotDicom("not a DICOM file") from None
    except (EOFError, struct.error) as exc:
        raise TruncatedDicom(f"file ends early ({type(exc).__name__})") from None
    except (MemoryError, RecursionError, OverflowError) as exc:
        raise NotDicom(f"malformed structure ({type(exc).__name__})") from None
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # BaseException: native extensions may panic (pyo3)
        # pydicom signals a short read inside an element with various exceptions whose
        # message says so; classify by that, never echo the message (it may quote values).
        text = str(exc).lower()
        if "end of file" in text or "truncat" in text or "not enough" in text:
            raise TruncatedDicom(f"file ends early ({type(exc).__name__})") from None
        raise NotDicom(f"could not parse ({type(exc).__name__})") from None
    if len(ds) == 0:
        raise NotDicom("no data elements")
    return ds


# The attributes that grouping and sorting read. pydicom converts values lazily; converting
# these right after parsing makes a malformed one fail here, typed. The rest is converted
# when used, under the same typed-error guard (see render.load_frame): converting every
# element here would double the time to read a series (~30 us per element).
_USED = (
    "SpecificCharacterSet", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
    "SeriesNumber", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient",
    "NumberOfFrames",
)
_USED_TAGS = tuple(BaseTag(tag_for_keyword(k)) for k in _USED)  # tags: no keyword lookups


def _touch_all(ds: Dataset) -> None:
    for tag in _USED_TAGS:
        if tag in ds:
            _ = ds[tag].value


# ---------------------------------------------------------------------------- instances


@dataclass(slots=True)
class Instance:
    """One parsed DICOM object. ``label`` identifies it to the user (a file name, or
    "item N" for in-memory objects) and may itself contain PHI, hence Phi."""

    dataset: Dataset
    label: Phi[str]


@dataclass(slots=True)
class Series:
    info: SeriesInfo
    instances: list[Instance]
    sorted_by: str  # "position", "instance number" or "input order": the UI can say so

    @property
    def frame_count(self) -> int:
        total = 0
        for inst in self.instances:
            try:
                total += max(1, int(inst.dataset.get("NumberOfFrames", 1) or 1))
            except Exception:  # malformed value (pydicom may raise several types)
                total += 1
        return total


@dataclass(slots=True)
class LoadResult:
    series: list[Series] = field(default_factory=list)
    failures: list[tuple[Phi[str], ImagingError]] = field(default_factory=list)


def expand_sources(sources: Iterable[Source]) -> Iterable[tuple[Phi[str], Source]]:
    for n, source in enumerate(sources):
        if isinstance(source, bytes | bytearray | memoryview):
            yield Phi(f"item {n + 1}"), source
            continue
        path = Path(source)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if name == "DICOMDIR":
                        continue  # the index of a media set, not an image
                    yield Phi(str(Path(root) / name)), Path(root) / name
        else:
            yield Phi(str(path)), path


def load(sources: Iterable[Source], *, stop_before_pixels: bool = False) -> LoadResult:
    """Read every source (files, folders walked recursively, or bytes) and group them."""
    result = LoadResult()
    instances: list[Instance] = []
    for label, source in expand_sources(sources):
        try:
            ds = read_dataset(source, stop_before_pixels=stop_before_pixels)
        except ImagingError as exc:
            result.failures.append((label, exc))
            continue
        instances.append(Instance(ds, label))
    result.series = group_series(instances)
    return result


# ----------------------------------------------------------------------- grouping/sorting


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword, "")
        return "" if value is None else str(value)
    except Exception:  # a malformed value: shown as absent rather than failing the series
        return ""


def _floats(ds: Dataset, keyword: str, count: int) -> list[float] | None:
    value = ds.get(keyword)
    if value is None:
        return None
    try:
        is_list = isinstance(value, Sequence) and not isinstance(value, str | bytes)
        seq = value if is_list else [value]
        items = [float(v) for v in seq]
    except Exception:  # malformed value (pydicom may raise several types)
        return None
    if len(items) != count or not all(math.isfinite(v) for v in items):
        return None
    return items


def slice_normal(ds: Dataset) -> tuple[float, float, float] | None:
    """Row direction x column direction from ImageOrientationPatient (PS3.3 C.7.6.2.1.1)."""
    iop = _floats(ds, "ImageOrientationPatient", 6)
    if iop is None:
        return None
    r, c = iop[:3], iop[3:]
    n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    norm = math.sqrt(sum(v * v for v in n))
    if norm < 1e-6:
        return None
    return (n[0] / norm, n[1] / norm, n[2] / norm)


def _instance_number(ds: Dataset) -> int | None:
    try:
        value = ds.get("InstanceNumber")
        return int(value) if value not in (None, "") else None
    except Exception:  # malformed value (pydicom may raise several types)
        return None


def sort_instances(instances: list[Instance]) -> tuple[list[Instance], str]:
    """Order slices along the slice normal by ImagePositionPatient; fall back to
    InstanceNumber when any slice lacks a usable position, then to the input order."""
    if not instances:
        return [], "input order"
    normal = slice_normal(instances[0].dataset)
    if normal is not None:
        keys: list[float] = []
        for inst in instances:
            ipp = _floats(inst.dataset, "ImagePositionPatient", 3)
            if ipp is None:
                break
            keys.append(sum(p * n for p, n in zip(ipp, normal, strict=True)))
        else:
            order = sorted(range(len(instances)), key=lambda i: keys[i])
            return [instances[i] for i in order], "position"
    numbers = [_instance_number(i.dataset) for i in instances]
    if all(n is not None for n in numbers):
        order = sorted(range(len(instances)), key=lambda i: numbers[i])  # type: ignore[arg-type,return-value]
        return [instances[i] for i in order], "instance number"
    return list(instances), "input order"


def study_info(ds: Dataset) -> StudyInfo:
    return StudyInfo(
        study_uid=_text(ds, "StudyInstanceUID"),
        patient=PatientInfo(
            name=Phi(_text(ds, "PatientName")),
            patient_id=Phi(_text(ds, "PatientID")),
            birth_date=Phi(_text(ds, "PatientBirthDate")),
            sex=Phi(_text(ds, "PatientSex")),
        ),
        study_date=Phi(_text(ds, "StudyDate")),
        description=Phi(_text(ds, "StudyDescription")),
        accession_number=Phi(_text(ds, "AccessionNumber")),
    )


def group_series(instances: list[Instance]) -> list[Series]:
    """Group by SeriesInstanceUID (objects without one each form their own series)."""
    groups: dict[str, list[Instance]] = {}
    for n, inst in enumerate(instances):
        key = _text(inst.dataset, "SeriesInstanceUID") or f"#no-series-uid-{n}"
        groups.setdefault(key, []).append(inst)
    out: list[Series] = []
    for key, members in groups.items():
        ordered, how = sort_instances(members)
        first = ordered[0].dataset
        number = _instance_number_like(first.get("SeriesNumber"))
        info = SeriesInfo(
            series_uid="" if key.startswith("#") else key,
            study=study_info(first),
            modality=_text(first, "Modality"),
            description=Phi(_text(first, "SeriesDescription")),
            series_number=number,
            instance_count=len(ordered),
        )
        out.append(Series(info, ordered, how))
    out.sort(key=lambda s: (s.info.study.study_uid, s.info.series_number or 0))
    return out


def _instance_number_like(value: object) -> int | None:
    try:
        return int(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except Exception:  # malformed value (pydicom may raise several types)
        return None
