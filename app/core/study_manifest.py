"""The study manifest: what one ``sc.study.share`` room event carries, pure (no crypto).

A shared study is a set of files, each uploaded with the transfer engine (its own signed
attachment descriptor, app/services/transfers/descriptor.py), grouped into series. The
manifest lists them and is itself signed by the sending device (Ed25519 over
``SC-STUDY-v1\\n`` + canonical JSON of every field but ``signature``; the service signs and
verifies, app/services/study_share.py). Wire form (all fields required, no others)::

    {"type": "sc.study.v1", "study_id", "room_id", "sender_user", "sender_device",
     "ts_ms": int, "deidentified": bool, "description": str,
     "series": [{"series_id", "description", "modality", "files": [int, ...]}],
     "files": [{"descriptor": {sc.file.v1 wire}, "plain_sha256": hex}],
     "counts": {"series": int, "files": int}, "signature": b64}

``description`` fields are patient data (:class:`Phi`). Ids are random, never a DICOM UID.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from app.core.phi import Phi

MANIFEST_TYPE = "sc.study.v1"
SHARE_EVENT = "sc.study.share"
SIGNATURE_CONTEXT = b"SC-STUDY-v1\n"
MAX_FILES = 2000
MAX_SERIES = 64
MAX_TEXT = 256

_FIELDS = frozenset({"type", "study_id", "room_id", "sender_user", "sender_device", "ts_ms",
                     "deidentified", "description", "series", "files", "counts",
                     "signature"})
_ID = re.compile(r"^[A-Za-z0-9._~:@-]{1,128}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_B64 = re.compile(r"^[A-Za-z0-9+/=_-]{16,200}$")


class ManifestInvalid(ValueError):
    """Not a well-formed manifest; the message is PHI-free."""


@dataclass(frozen=True, slots=True)
class ManifestSeries:
    series_id: str
    description: Phi[str]
    modality: str
    files: tuple[int, ...]  # indexes into the manifest's files


@dataclass(frozen=True, slots=True)
class ManifestFile:
    descriptor: dict[str, Any]  # the signed sc.file.v1 wire (parsed by the transfer engine)
    plain_sha256: str  # of the DICOM bytes, checked after decryption


@dataclass(frozen=True, slots=True)
class StudyManifest:
    study_id: str
    room_id: str
    sender_user: str
    sender_device: str
    ts_ms: int
    deidentified: bool
    description: Phi[str]
    series: tuple[ManifestSeries, ...]
    files: tuple[ManifestFile, ...]
    signature: str = ""

    def unsigned_wire(self) -> dict[str, Any]:
        return {
            "type": MANIFEST_TYPE, "study_id": self.study_id, "room_id": self.room_id,
            "sender_user": self.sender_user, "sender_device": self.sender_device,
            "ts_ms": self.ts_ms, "deidentified": self.deidentified,
            "description": self.description.reveal(),
            "series": [{"series_id": s.series_id, "description": s.description.reveal(),
                        "modality": s.modality, "files": list(s.files)} for s in self.series],
            "files": [{"descriptor": f.descriptor, "plain_sha256": f.plain_sha256}
                      for f in self.files],
            "counts": {"series": len(self.series), "files": len(self.files)},
        }

    def to_wire(self) -> dict[str, Any]:
        return {**self.unsigned_wire(), "signature": self.signature}

    def signed_bytes(self) -> bytes:
        return SIGNATURE_CONTEXT + canonical(self.unsigned_wire())

    def series_by_id(self, series_id: str) -> ManifestSeries | None:
        return next((s for s in self.series if s.series_id == series_id), None)


def canonical(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 (the same bytes as app.crypto.messages.canonical_json)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def _str(data: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None,
         limit: int = MAX_TEXT) -> str:
    value = data.get(name)
    if not isinstance(value, str) or len(value) > limit:
        raise ManifestInvalid(f"{name} is not a string")
    if pattern is not None and not pattern.match(value):
        raise ManifestInvalid(f"{name} is malformed")
    return value


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ManifestInvalid(f"{name} is not an integer in range")
    return value


def parse_manifest(data: Any) -> StudyManifest:
    """A :class:`StudyManifest` from its wire form, or :class:`ManifestInvalid`. The
    signature is *not* checked here (that needs the sender device's key)."""
    if not isinstance(data, dict) or set(data) != _FIELDS:
        raise ManifestInvalid("manifest fields")
    if data["type"] != MANIFEST_TYPE:
        raise ManifestInvalid("manifest type")
    if not isinstance(data["deidentified"], bool):
        raise ManifestInvalid("deidentified is not a boolean")
    files_raw, series_raw, counts = data["files"], data["series"], data["counts"]
    if not isinstance(files_raw, list) or not 1 <= len(files_raw) <= MAX_FILES:
        raise ManifestInvalid("files is not a list of files")
    if not isinstance(series_raw, list) or not 1 <= len(series_raw) <= MAX_SERIES:
        raise ManifestInvalid("series is not a list of series")
    if counts != {"series": len(series_raw), "files": len(files_raw)}:
        raise ManifestInvalid("counts do not match")
    files = []
    for item in files_raw:
        if not isinstance(item, dict) or set(item) != {"descriptor", "plain_sha256"}:
            raise ManifestInvalid("file entry fields")
        if not isinstance(item["descriptor"], dict):
            raise ManifestInvalid("file descriptor is not an object")
        files.append(ManifestFile(item["descriptor"], _str(item, "plain_sha256", _HEX64)))
    series, used = [], set()
    for item in series_raw:
        if not isinstance(item, dict) or set(item) != {"series_id", "description",
                                                       "modality", "files"}:
            raise ManifestInvalid("series entry fields")
        indexes = item["files"]
        if not isinstance(indexes, list) or not indexes:
            raise ManifestInvalid("series files")
        picked = tuple(_int(i, "series file", 0, len(files) - 1) for i in indexes)
        if used & set(picked) or len(set(picked)) != len(picked):
            raise ManifestInvalid("a file is in two series")
        used |= set(picked)
        series.append(ManifestSeries(_str(item, "series_id", _ID),
                                     Phi(_str(item, "description")),
                                     _str(item, "modality", limit=16), picked))
    if len({s.series_id for s in series}) != len(series):
        raise ManifestInvalid("series ids repeat")
    return StudyManifest(
        study_id=_str(data, "study_id", _ID), room_id=_str(data, "room_id", _ID),
        sender_user=_str(data, "sender_user", _ID), sender_device=_str(data, "sender_device", _ID),
        ts_ms=_int(data["ts_ms"], "ts_ms", 0, 2**53), deidentified=data["deidentified"],
        description=Phi(_str(data, "description")), series=tuple(series), files=tuple(files),
        signature=_str(data, "signature", _B64))
