"""Sharing a DICOM study into a consult room, and opening one shared there (Qt-free).

Sending (:meth:`StudyShareService.share`): unless the study is de-identified already (its
files say ``PatientIdentityRemoved`` YES) it is de-identified first (PS3.15 Annex E, the
same code as ``safeconsult deidentify``) in memory, one file at a time, and uploaded from
memory (``TransferEngine.upload_bytes``): no plaintext copy is written anywhere -- or, only
with the user's explicit confirmation, sent identified
(audited) -- unless the room is the patient's own consult room (linked to the patient whose
MRN the files carry), where it may go as it is (docs/imaging.md, "Sharing a study"). Each
file is uploaded with the transfer engine (own key, own signed descriptor); then one
``sc.study.share`` room event carries the :class:`StudyManifest`, signed by this device's
Ed25519 key. A received, verified study may be shared on (:meth:`reshare`): always as a
de-identified copy made in memory, signed by the re-sharer's device. One ``file.send``
audit entry per shared study (object: the study id; detail: the file count) and one
``file.download`` per fetched study -- the engine's per-file entries are left out. A share
that a restart interrupts cannot be finished (its copies were in memory): at the next
sign-in ``ChatFiles`` cancels its remaining uploads, no manifest goes, one failed
``file.send`` (``interrupted``) is recorded and the user is told (``_InterruptedShares``).
A share that fails or is cancelled, or that a restart interrupted, leaves no blob on the
server: its files' blobs are deleted (``TransferEngine.cancel`` / ``discard``, best effort:
a server out of reach leaves them to its retention).

Receiving (:meth:`fetch`): the manifest must name the Megolm-authenticated sender device and
verify against that device's key *from this device's device list* (never the server's word);
every file descriptor must be that device's and verify too, the ciphertext digest is
checked by the engine and the plaintext SHA-256 against the manifest after decryption. The
files stay in the encrypted file store; the bytes are decrypted in memory for the viewer.
Anything that does not check out raises :class:`StudyTampered` and nothing is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import Signal

from app.core.errors import SafeConsultError
from app.core.phi import Phi
from app.core.study_manifest import (
    SHARE_EVENT,
    ManifestFile,
    ManifestInvalid,
    ManifestSeries,
    StudyManifest,
    parse_manifest,
)
from app.crypto.identity import verify_ed25519
from app.crypto.store import TrustLevel
from app.imaging.deidentify import Deidentifier, DeidOptions, deidentify_bytes
from app.imaging.errors import ImagingError
from app.imaging.load import expand_sources, read_dataset
from app.services.chat_content import new_event_id
from app.services.transfers import (
    TransferEngine,
    TransferError,
    download_id,
    parse_descriptor,
)
from app.storage.shared_studies import SharedStudyRepository

log = logging.getLogger(__name__)

SEND_ACTION = "file.send"
STUDY_PURPOSE = "study"  # its uploads' purpose (app.storage.transfers.STUDY)
DICOM_MIME = "application/dicom"
VERIFIED, UNVERIFIED, REFUSED = "verified", "unverified", "refused"


class StudyShareError(SafeConsultError):
    user_message = "The study could not be shared."


class IdentifiedShareNotConfirmed(StudyShareError):
    user_message = ("This study is not de-identified. Share the de-identified copy, or "
                    "confirm that the identified study may go to this room.")


class ReshareRefused(StudyShareError):
    code = "reshare_refused"
    user_message = ("Only a shared study that you opened and that checked out as verified "
                    "can be shared on, and only into another room you are a member of.")


class StudyTampered(SafeConsultError):
    code = "study_tampered"
    user_message = ("This shared study was changed after it was sent, or its sender cannot "
                    "be verified. It was not opened.")


class SenderUnknown(StudyTampered):
    code = "sender_unknown"
    user_message = ("The device that shared this study is not in your device list, so its "
                    "signature cannot be checked. It was not opened.")


@dataclass(frozen=True, slots=True)
class SharedStudy:
    """A study shared in a room (by someone else or by us), not yet checked."""

    room_id: str
    event_id: str
    sender: str
    sender_device: str
    manifest: StudyManifest = field(repr=False)

    @property
    def study_id(self) -> str:
        return self.manifest.study_id


@dataclass(slots=True)
class OpenedStudy:
    shared: SharedStudy
    status: str  # VERIFIED (signed by a device this user verified/trusts) or UNVERIFIED
    sender_name: str
    series: dict[str, list[bytes]] = field(repr=False)  # series id -> DICOM bytes
    file_ids: list[str] = field(default_factory=list)  # in the encrypted file store

    @property
    def label(self) -> str:
        if self.status == VERIFIED:
            return f"Verified · shared by {self.sender_name}'s device"
        return f"Unverified · signed by {self.sender_name}'s device, not verified by you"


@dataclass(slots=True)
class ShareResult:
    shared: SharedStudy
    warnings: list[str]  # de-identification warnings (burned-in text), PHI-free


@dataclass(frozen=True, slots=True)
class KnownDevice:
    """This device, as the sender of a study it shared (its own key is known first-hand)."""

    user_id: str
    device_id: str
    ed25519: str
    trust: TrustLevel


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class _Head:
    """What the manifest needs from one file's header."""

    study: str
    removed: bool  # PatientIdentityRemoved YES
    series_uid: str
    series_desc: str
    modality: str


def _head(source: Path | bytes) -> _Head:
    ds = read_dataset(source, stop_before_pixels=True)
    return _Head(str(ds.get("StudyDescription", "") or ""),
                 str(ds.get("PatientIdentityRemoved", "")).upper() == "YES",
                 str(ds.get("SeriesInstanceUID", "") or ""),
                 str(ds.get("SeriesDescription", "") or ""),
                 str(ds.get("Modality", "") or "")[:16])


def _group_heads(heads: Sequence[_Head]) -> tuple[str, list[tuple[str, str, list[int]]], bool]:
    """(study description, [(series description, modality, file indexes)], all
    de-identified) from the files' headers."""
    by_series: dict[str, tuple[str, str, list[int]]] = {}
    study, removed = "", True
    for n, head in enumerate(heads):
        study = study or head.study
        removed = removed and head.removed
        entry = by_series.setdefault(head.series_uid or f"none-{n}",
                                     (head.series_desc, head.modality, []))
        entry[2].append(n)
    return study[:256], [(d[:256], m, i) for d, m, i in by_series.values()], removed


def _group(paths: Sequence[Path | bytes]) -> tuple[str, list[tuple[str, str, list[int]]], bool]:
    return _group_heads([_head(p) for p in paths])


def _deidentify_file(source: Path | bytes, tool: Deidentifier) -> tuple[bytes, list[str]]:
    """One file's de-identified copy, in memory (PS3.15 Basic Profile; ``tool`` keeps one
    UID mapping across the study). Nothing is written."""
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        return deidentify_bytes(data, tool)
    except (ImagingError, OSError, ValueError) as exc:
        raise StudyShareError(f"de-identification failed ({type(exc).__name__})") from None


def _one_patient(paths: Sequence[str | Path | bytes]) -> str | None:
    """The files' Patient ID when they all carry the same non-empty one, else None."""
    try:
        ids = {str(read_dataset(p if isinstance(p, bytes) else Path(p),
                                stop_before_pixels=True).get("PatientID", "")
                   or "").strip() for p in paths}
    except ImagingError:
        return None
    return ids.pop() if len(ids) == 1 and "" not in ids else None


def is_deidentified(paths: Sequence[Path | bytes]) -> bool:
    """Whether every file says PatientIdentityRemoved YES (checked, not assumed)."""
    try:
        return bool(paths) and _group(list(paths))[2]
    except ImagingError:
        return False


async def _read_store(engine: TransferEngine, file_id: str) -> bytes:
    """Decrypt a stored file into memory: its key is read on this (the cache's) thread by
    the first step of the generator, the rest is decrypted in a worker thread."""
    chunks = engine.files.open(file_id)
    first = next(chunks, b"")
    return first + await asyncio.to_thread(lambda: b"".join(chunks))


class StudyShareService:
    shared = Signal(object)  # SharedStudy: a study appeared in a room
    removed = Signal(object)  # list of study ids that retention removed
    progress = Signal(object)  # (study_id or "", done files, total files)

    def __init__(self, chat: Any, engine: TransferEngine, *, audit: Any | None,
                 work_dir: Path, own_ed25519: str = "",
                 clock_ms: Callable[[], int] | None = None,
                 repo: SharedStudyRepository | None = None, patients: Any | None = None,
                 files: Any | None = None) -> None:
        self.chat = chat
        self.patients = patients  # RoomPatientService: rooms linked to a patient
        self.engine = engine
        self.audit = audit
        self.work_dir = Path(work_dir)  # no longer written to: copies stay in memory
        self._own_ed25519 = own_ed25519  # this device's key: opening our own shares
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._studies: dict[str, SharedStudy] = {}
        self._received: dict[str, int] = {}  # study id -> when it arrived (relay time)
        self._status: dict[str, str] = {}  # study id -> VERIFIED/UNVERIFIED/REFUSED, once opened
        self._sharing: set[str] = set()  # manifest event ids of shares going on now
        if files is not None:  # ChatFiles: a share a restart interrupted is ended at sign-in
            files.register(STUDY_PURPOSE, _InterruptedShares(self))
        cache = getattr(chat, "cache", None)
        self._repo = repo if repo is not None else (
            SharedStudyRepository(cache) if cache is not None else None)
        self._load()
        chat.room_event.connect(self._on_room_event)
        purged = getattr(chat, "purged", None)
        if purged is not None:
            purged.connect(self._on_purged)
        self.purge_expired()

    def close(self) -> None:
        self.chat.room_event.disconnect(self._on_room_event)
        purged = getattr(self.chat, "purged", None)
        if purged is not None:
            with contextlib.suppress(Exception):
                purged.disconnect(self._on_purged)

    def studies(self, room_id: str | None = None) -> list[SharedStudy]:
        return [s for s in self._studies.values() if room_id in (None, s.room_id)]

    def status(self, study_id: str) -> str | None:
        """How the study checked out when last opened here (None: not opened yet)."""
        return self._status.get(study_id)

    # -- kept in the encrypted cache ---------------------------------------------------------

    def _load(self) -> None:
        """The studies kept from earlier sessions (the cache survives a restart; a wipe or a
        kiosk session's end takes it along)."""
        if self._repo is None:
            return
        for row in self._repo.all():
            try:
                manifest = parse_manifest(row.manifest)
            except ManifestInvalid:
                self._repo.delete(row.study_id)
                continue
            self._studies[row.study_id] = SharedStudy(row.room_id, row.event_id, row.sender,
                                                      row.sender_device, manifest)
            self._received[row.study_id] = row.received_ms
            if row.status:
                self._status[row.study_id] = row.status

    def _keep(self, shared: SharedStudy, received_ms: int) -> bool:
        """Remember a study (first one under an id wins); True if it is new."""
        if shared.study_id in self._studies:
            return False
        self._studies[shared.study_id] = shared
        self._received[shared.study_id] = received_ms
        if self._repo is not None:
            with contextlib.suppress(SafeConsultError):  # closed cache: kept in memory only
                self._repo.add(shared.study_id, shared.room_id, shared.event_id, shared.sender,
                               shared.sender_device, shared.manifest.to_wire(),
                               received_ms=received_ms)
        return True

    def _opened(self, study_id: str, status: str, file_ids: list[str]) -> None:
        self._status[study_id] = status
        if self._repo is not None:
            with contextlib.suppress(SafeConsultError):
                self._repo.set_opened(study_id, status, file_ids)

    def _on_purged(self, _rooms: object) -> None:
        self.purge_expired()

    def purge_expired(self, now_ms: int | None = None) -> list[str]:
        """Forget the studies that retention (``Policy.retention_days``) or their room's
        disappearing setting no longer allow, with their files in the encrypted store, as
        chat does with messages; returns their ids."""
        now_ms = self._clock_ms() if now_ms is None else now_ms
        retention_ms = getattr(self.chat, "retention_ms", 0) or 0
        disappearing = getattr(self.chat, "disappearing", None)
        gone = []
        for study_id, shared in list(self._studies.items()):
            received = self._received.get(study_id, now_ms)
            limits = [retention_ms] if retention_ms > 0 else []
            after_s = disappearing(shared.room_id) if disappearing is not None else 0
            if after_s:
                limits.append(after_s * 1000)
            if limits and now_ms - received > min(limits):
                gone.append(study_id)
        for study_id in gone:
            self._forget(study_id)
        if gone:
            log.info("shared studies purged", extra={"event": "study_share_purged",
                                                     "count": len(gone)})
            self.removed.emit(gone)
        return gone

    def _forget(self, study_id: str) -> None:
        shared = self._studies.pop(study_id, None)
        self._received.pop(study_id, None)
        self._status.pop(study_id, None)
        for entry in shared.manifest.files if shared is not None else ():
            # The download's row holds the descriptor (and its key): it goes too.
            with contextlib.suppress(SafeConsultError, ValueError):
                self.engine.forget(download_id(parse_descriptor(entry.descriptor)))
        if self._repo is None:
            return
        with contextlib.suppress(SafeConsultError):
            row = next((r for r in self._repo.all() if r.study_id == study_id), None)
            for file_id in row.file_ids if row is not None else ():
                with contextlib.suppress(ValueError, OSError):
                    self.engine.files.delete(file_id)
            self._repo.delete(study_id)

    # -- sending -----------------------------------------------------------------------------

    def patient_room(self, room_id: str, paths: Sequence[str | Path]) -> bool:
        """Whether ``room_id`` is the consult room of the patient these files belong to: the
        room is linked to a patient (app/services/room_patient.py) whose MRN is the files'
        one Patient ID. Anything else -- no link, another patient, files of several
        patients or none, unreadable files -- is *outside* the patient's consult room."""
        mrn = self._linked_mrn(room_id)
        return mrn is not None and _one_patient(paths) == mrn

    def _linked_mrn(self, room_id: str) -> str | None:
        """The MRN of the patient ``room_id`` is linked to (read on the cache's thread)."""
        link = self.patients.link(room_id) if self.patients is not None else None
        if link is None or link.mrn is None:
            return None
        return link.mrn.reveal().strip() or None

    async def share(self, room_id: str, paths: Sequence[str | Path | bytes], *,
                    deidentify: bool = True, confirm_identified: bool = False,
                    _reshare_of: str = "") -> ShareResult:
        """Share the DICOM files ``paths`` (one study; paths or DICOM bytes in memory) into
        ``room_id``. The check before a study leaves its patient's consult room: unless the
        files are de-identified already or ``room_id`` is that patient's room
        (:meth:`patient_room`), an identified share needs ``confirm_identified``; by default
        a de-identified copy goes -- made in memory and uploaded from memory, never written.
        One ``file.send`` audit entry for the study (``files``: how many), not one per file."""
        sources = [p if isinstance(p, bytes) else Path(p) for p in paths]
        if not sources:
            raise StudyShareError("nothing to share")
        already = await asyncio.to_thread(is_deidentified, sources)
        mrn = None if already or _reshare_of else self._linked_mrn(room_id)
        inside = mrn is not None and await asyncio.to_thread(_one_patient, sources) == mrn
        if not already and not deidentify and not confirm_identified and not inside:
            raise IdentifiedShareNotConfirmed("identified study, not confirmed")
        warnings: list[str] = []
        heads: list[_Head] = []
        files: list[ManifestFile] = []
        # The manifest's event id, chosen now and kept with each file's transfer (purpose
        # "study") until the share is settled: a restart mid-way leaves rows the next
        # sign-in finds, cancels and reports (ChatFiles, _InterruptedShares).
        event_id = new_event_id()
        transfers: list[str] = []
        self._sharing.add(event_id)
        try:
            return await self._share(room_id, sources, already, deidentify, inside,
                                     confirm_identified, _reshare_of, event_id, transfers,
                                     warnings, heads, files)
        finally:
            self._sharing.discard(event_id)

    async def _share(self, room_id: str, sources: list[Path | bytes], already: bool,
                     deidentify: bool, inside: bool, confirm_identified: bool,
                     _reshare_of: str, event_id: str, transfers: list[str],
                     warnings: list[str], heads: list[_Head], files: list[ManifestFile],
                     ) -> ShareResult:
        try:
            if not already and deidentify:
                # De-identified copies are made in memory, one file at a time, and go from
                # memory to the transfer engine: nothing plaintext is written (issue #6).
                inputs = [src for _label, src in expand_sources(sources)]
                if not inputs:
                    raise StudyShareError("nothing to share")
                tool = Deidentifier(DeidOptions())
                for n, src in enumerate(inputs):
                    clean, found = await asyncio.to_thread(_deidentify_file, src, tool)
                    warnings.extend(found)
                    await self._send_one(room_id, clean, n, len(inputs), heads, files,
                                         event_id, transfers)
                warnings[:] = sorted(set(warnings))
            else:
                for n, path in enumerate(sources):  # the user's own files, as they are
                    await self._send_one(room_id, path, n, len(sources), heads, files,
                                         event_id, transfers)
        except SafeConsultError as exc:  # a transfer, or a file that cannot be de-identified
            self._settle(transfers, None, outcome="failed",
                         detail={"kind": "study", "files": len(files),
                                 "reason": str(getattr(exc, "code", "") or "error")})
            # No manifest will name the files already up: their blobs go from the server
            # too (best effort; a cancelled upload's went at its cancel).
            for transfer_id in transfers:
                with contextlib.suppress(SafeConsultError):
                    self.engine.discard(transfer_id)
            raise
        study_desc, groups, _ = _group_heads(heads)
        signer = self.engine.device
        unsigned = StudyManifest(
            study_id=secrets.token_hex(12), room_id=room_id, sender_user=signer.user_id,
            sender_device=signer.device_id, ts_ms=self._clock_ms(),
            deidentified=already or deidentify, description=Phi(study_desc),
            series=tuple(ManifestSeries(secrets.token_hex(8), Phi(d), m, tuple(i))
                         for d, m, i in groups),
            files=tuple(files))
        manifest = parse_manifest({**unsigned.unsigned_wire(),
                                   "signature": signer.sign(unsigned.signed_bytes())})
        try:
            event_id = await self.chat.send_room_event(room_id, SHARE_EVENT,
                                                       manifest.to_wire(), event_id=event_id)
        except SafeConsultError as exc:
            self._settle(transfers, None, outcome="failed",
                         detail={"kind": "study", "files": len(files),
                                 "reason": str(getattr(exc, "code", "") or "error")})
            raise
        detail: dict[str, Any] = {
            "kind": "study", "files": len(files), "deidentified": manifest.deidentified,
            "identified_confirmed": bool(confirm_identified and not manifest.deidentified),
            "patient_room": bool(inside)}
        if _reshare_of:
            detail["reshared_from"] = _reshare_of  # a random study id, never a DICOM UID
        self._settle(transfers, manifest.study_id, detail=detail)
        shared = SharedStudy(room_id, event_id, signer.user_id, signer.device_id, manifest)
        self._keep(shared, manifest.ts_ms)
        self._opened(manifest.study_id, VERIFIED, [])
        self.shared.emit(shared)
        return ShareResult(shared, warnings)

    def _settle(self, transfers: list[str], study_id: str | None, *, outcome: str = "ok",
                detail: dict[str, Any]) -> None:
        """The share's one ``file.send`` entry and its transfers settled (no longer waiting
        for their manifest), in one commit: a crash leaves both or neither."""
        with self.engine.transaction():
            self._audit(SEND_ACTION, study_id, outcome=outcome, detail=detail)
            for transfer_id in transfers:
                self.engine.announced(transfer_id)

    async def _send_one(self, room_id: str, source: Path | bytes, n: int, total: int,
                        heads: list[_Head], files: list[ManifestFile], event_id: str,
                        transfers: list[str]) -> None:
        """Upload one file of a study (a path the user picked, or bytes in memory); the
        study's one audit entry is the caller's, not one per file."""
        heads.append(await asyncio.to_thread(_head, source))
        name, transfer_id = f"IM{n + 1:05d}.dcm", secrets.token_hex(16)
        transfers.append(transfer_id)
        marks: dict[str, Any] = {"transfer_id": transfer_id, "audit": False,
                                 "announce_event_id": event_id, "purpose": STUDY_PURPOSE}
        try:
            if isinstance(source, bytes):
                plain = hashlib.sha256(source).hexdigest()
                desc = await self.engine.upload_bytes(room_id, source, name=name,
                                                      mime=DICOM_MIME, **marks)
            else:
                plain = await asyncio.to_thread(_sha256_file, source)
                desc = await self.engine.upload(room_id, source, name=name, mime=DICOM_MIME,
                                                **marks)
        except TransferError:
            # The share is void without its manifest: a paused upload is dropped, not kept
            # (nor its bytes held in memory) for a resume nobody will ask for. (Cancelled --
            # the session or the process is stopping -- its row stays: the next sign-in
            # cancels the share's remaining uploads and reports it, see _InterruptedShares.)
            with contextlib.suppress(SafeConsultError):
                self.engine.cancel(transfer_id)
            raise
        files.append(ManifestFile(desc.to_wire(), plain))
        self.progress.emit(("", n + 1, total))

    async def reshare(self, opened: OpenedStudy, room_id: str) -> ShareResult:
        """Share a received study on, into another room this user is a member of.

        Only a study opened here that checked out as verified; the same check as any share
        outside its patient's consult room: the files themselves must say
        PatientIdentityRemoved YES, else they are de-identified (PS3.15 Basic Profile, one
        UID mapping across the study) in memory -- identified bytes never touch the disk.
        The new manifest is signed by this device, and the share audited (``file.send``,
        ``reshared_from`` the original study id)."""
        source = opened.shared
        if opened.status != VERIFIED or self._status.get(source.study_id) != VERIFIED:
            self._audit(SEND_ACTION, source.study_id, outcome="refused",
                        detail={"kind": "study", "reason": "not_verified"})
            raise ReshareRefused("study not verified")
        joined = {r.room_id for r in self.chat.rooms() if r.state == "joined"}
        if room_id == source.room_id or room_id not in joined:
            self._audit(SEND_ACTION, source.study_id, outcome="refused",
                        detail={"kind": "study", "reason": "not_a_member"})
            raise ReshareRefused("not another room of this user")
        blobs = [data for s in source.manifest.series for data in opened.series[s.series_id]]

        def prepare() -> tuple[list[bytes], list[str]]:
            tool = Deidentifier(DeidOptions())
            out, notes = [], set()
            for data in blobs:
                ds = read_dataset(data, stop_before_pixels=True)
                if str(ds.get("PatientIdentityRemoved", "")).upper() == "YES":
                    out.append(data)
                    continue
                clean, found = deidentify_bytes(data, tool)
                out.append(clean)
                notes.update(found)
            return out, sorted(notes)

        try:
            cleaned, warnings = await asyncio.to_thread(prepare)
        except (ImagingError, ValueError) as exc:
            raise StudyShareError(f"de-identification failed ({type(exc).__name__})") from None
        result = await self.share(room_id, cleaned, deidentify=True,
                                  _reshare_of=source.study_id)
        return ShareResult(result.shared, sorted({*warnings, *result.warnings}))

    def _interrupted(self, action: Any) -> None:
        """A share a restart interrupted (ended at sign-in by ``ChatFiles``): its one
        ``file.send`` entry, failed, reason ``interrupted``."""
        self._audit(SEND_ACTION, None, outcome="failed",
                    detail={"kind": "study", "files": action.files_done,
                            "reason": "interrupted"})

    def _audit(self, action: str, object_id: str | None, *, outcome: str = "ok",
               detail: dict[str, Any] | None = None) -> None:
        if self.audit is not None:
            self.audit.record(action, object_type="study", object_id=object_id,
                              outcome=outcome, detail=detail)

    # -- receiving ---------------------------------------------------------------------------

    def _on_room_event(self, event: Any) -> None:
        if event.event_type != SHARE_EVENT:
            return
        try:
            manifest = parse_manifest(event.content.reveal())
        except ManifestInvalid as exc:
            log.info("shared study ignored", extra={"event": "study_share_malformed",
                                                    "reason_code": str(exc)})
            return
        shared = SharedStudy(event.room_id, event.event_id, event.sender, event.sender_device,
                             manifest)
        if self._keep(shared, event.origin_ms or self._clock_ms()):
            self.shared.emit(shared)

    async def _sender_record(self, shared: SharedStudy) -> Any:
        signer = self.engine.device
        if (shared.sender, shared.sender_device) == (signer.user_id, signer.device_id):
            if not self._own_ed25519:
                raise SenderUnknown("own device key not given")
            return KnownDevice(signer.user_id, signer.device_id, self._own_ed25519,
                               TrustLevel.VERIFIED)
        for attempt in range(2):
            for record in self.chat.devices(shared.sender):
                if record.device_id == shared.sender_device:
                    return record
            if attempt == 0:
                await self.chat.refresh_device_lists([shared.sender])
        raise SenderUnknown("sender device not in the device list")

    async def fetch(self, shared: SharedStudy) -> OpenedStudy:
        """Download, verify and decrypt (in memory) a shared study; :class:`StudyTampered`
        if anything does not check out."""
        manifest = shared.manifest
        try:
            if (manifest.sender_user, manifest.sender_device) != (shared.sender,
                                                                  shared.sender_device):
                raise StudyTampered("manifest names another device than the room key")
            if manifest.room_id != shared.room_id:
                raise StudyTampered("manifest of another room")
            record = await self._sender_record(shared)
            if record.trust == TrustLevel.BLOCKED:
                raise StudyTampered("sender device blocked")
            if not verify_ed25519(record.ed25519, manifest.signed_bytes(), manifest.signature):
                raise StudyTampered("manifest signature does not verify")
            blobs: list[bytes] = []
            file_ids: list[str] = []
            for n, entry in enumerate(manifest.files):
                try:
                    file_id = await self.engine.download(entry.descriptor, record,
                                                         room_id=shared.room_id, audit=False)
                except TransferError as exc:
                    raise StudyTampered(f"file refused ({exc.code})") from None
                data = await _read_store(self.engine, file_id)
                if hashlib.sha256(data).hexdigest() != entry.plain_sha256:
                    raise StudyTampered("file digest does not match the manifest")
                blobs.append(data)
                file_ids.append(file_id)
                self.progress.emit((manifest.study_id, n + 1, len(manifest.files)))
        except StudyTampered as exc:
            self._opened(manifest.study_id, REFUSED, [])
            self._audit("file.download", manifest.study_id, outcome="refused",
                        detail={"kind": "study", "reason": exc.code})
            raise
        self._audit("file.download", manifest.study_id,
                    detail={"kind": "study", "files": len(blobs)})
        status = (VERIFIED if record.trust in (TrustLevel.VERIFIED, TrustLevel.ACCEPTED,
                                               TrustLevel.TOFU) else UNVERIFIED)
        self._opened(manifest.study_id, status, file_ids)
        name = self.chat.username(shared.sender) or shared.sender
        series = {s.series_id: [blobs[i] for i in s.files] for s in manifest.series}
        return OpenedStudy(shared, status, name, series, file_ids)


class _InterruptedShares:
    """The study share's announcer at sign-in (``ChatFiles.register``, purpose ``study``):
    a share is not resumable in general (its de-identified copies were in memory), so one
    that a restart interrupted is ended -- its remaining uploads cancelled, the blobs of all
    its files deleted on the server, no manifest sent -- with one failed ``file.send``
    entry, and the user is told to share it again."""

    resumable = False

    def __init__(self, service: StudyShareService) -> None:
        self._service = service

    async def announce(self, record: Any, descriptor: Any) -> None:  # not resumable
        raise NotImplementedError

    def failed(self, record: Any, code: str) -> None:  # not resumable
        raise NotImplementedError

    def ongoing(self, event_id: str) -> bool:
        return event_id in self._service._sharing

    def interrupted(self, action: Any) -> None:
        self._service._interrupted(action)
