"""The transfer engine: resumable, end-to-end encrypted upload and download of attachments.

Upload (``upload(room_id, path)``, ``upload_bytes(room_id, data)``,
``upload_stored(room_id, file_id)`` -> AttachmentDescriptor). The source is a file the user
picked, bytes in memory (a de-identified copy, a snapshot: nothing is written for the
upload) or a file of the encrypted file store read through its decryptor (a recording:
encrypted once on the wire, not ciphertext of ciphertext); see ``sources`` for what resume
means for each.

1. *prepare*: a fresh per-file key and header; the file is encrypted chunk by chunk once
   (never whole in memory, nothing written) to learn the SHA-256 of the ciphertext, which
   the server wants up front, and each chunk's GCM tag;
2. create the blob, then upload the chunks the server does not hold yet, a few at a time:
   each chunk is encrypted again from the source and its tag compared with the first pass,
   so a file changed meanwhile is refused (:class:`SourceChanged`) instead of reusing a
   nonce for other data;
3. finalize (the server checks sizes and digest), then sign the descriptor with the device
   key. The caller sends the descriptor inside the E2EE room message.

Download (``download(descriptor, sender_device) -> file_id``):

1. check the descriptor's signature against the key the caller knows for the sending
   device -- before any request;
2. fetch the missing chunks a few at a time; each one's size and tag is checked on arrival
   and it is written, still encrypted, to a staging file under the cache directory;
3. when all are here: the digest of the whole ciphertext is checked, and only then is the
   file decrypted -- straight into the :class:`EncryptedFileStore` (encrypted at rest under
   a new local key). Plaintext never touches the disk. Any failure removes the staging file
   and stores nothing.

Resume: each transfer's state (phase, chunks done, key, tags, descriptor) is a row in the
encrypted cache (app/storage/transfers.py). A dropped connection is retried with backoff;
when retries run out the transfer pauses (:class:`TransferInterrupted`) and
``resume(transfer_id)`` or ``resume_pending()`` (at the next start) goes on where it
stopped: an upload asks the server which chunks it holds, a download re-checks the chunks
in its staging file.

Audit: one ``file.send`` / ``file.download`` entry per finished (or failed) transfer,
object the blob -- unless the caller passes ``audit=False`` because it records one entry
for the whole action itself (a shared study, a recording).

Progress is published as :class:`TransferProgress` snapshots on the ``progress`` signal
(psygnal: Qt-free), results on ``finished``; ``cancel(transfer_id)`` stops a transfer.

Cancelled uploads leave nothing on the server: when an upload ends cancelled (the user's
cancel, or a share that cannot go on) its blob is deleted (``DELETE /v1/blobs/{id}``), in
the background and best effort -- a server out of reach leaves it to the server's retention,
and the cancel neither waits for nor fails with the delete. ``discard(transfer_id)`` does
the same for a finished upload that will never be announced (a cancelled or interrupted
share's files); ``drain()`` waits for the deletes under way.

Memory stays bounded: at most ``parallel`` chunks in flight, each a few times
``chunk_size``. Must be used from the event loop's thread (the cache connection is not
shared between threads); encryption and file I/O run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mimetypes
import os
import random
import secrets
import stat
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from psygnal import Signal

from app.core.errors import CertificateNotPinned, ConnectionFailed, SafeConsultError, ServerError
from app.core.phi import Phi
from app.crypto.files import (
    TAG_SIZE,
    ChunkCipher,
    FileTampered,
    new_file_key,
)
from app.net import blob_api
from app.net.auth_api import ProtocolError
from app.net.transport import Transport
from app.services.audit import AuditService
from app.services.transfers import progress as phases
from app.services.transfers.descriptor import (
    DEFAULT_MIME,
    MAX_NAME,
    MIME_PATTERN,
    AttachmentDescriptor,
    SenderDevice,
    parse_descriptor,
)
from app.services.transfers.download import RECEIVE_ACTION, run_download
from app.services.transfers.errors import (
    DescriptorInvalid,
    FileTooLarge,
    ManifestSignatureInvalid,
    SourceUnreadable,
    TransferCancelled,
    TransferError,
    TransferInterrupted,
    TransferRefused,
    TransferTampered,
    UnknownTransfer,
)
from app.services.transfers.progress import TransferProgress, TransferResult
from app.services.transfers.runtime import Run
from app.services.transfers.sources import MEMORY, STORE, StoredSource, stamp
from app.services.transfers.upload import SEND_ACTION, run_upload
from app.storage.cache import Cache
from app.storage.files import EncryptedFileStore
from app.storage.transfers import (
    DONE,
    DOWNLOAD,
    DOWNLOADING,
    FAILED,
    PREPARING,
    UPLOAD,
    TransferRecord,
    TransferRepository,
)

if TYPE_CHECKING:
    from app.services.session import SessionService

T = TypeVar("T")

log = logging.getLogger(__name__)

_RETRYABLE_CODES = frozenset({"blob_finalizing"})
_DELETE_TRIES = 3  # a cancelled upload's blob delete
_STOP_DELETE_WAIT_S = 2.0
_SESSION_CODES = frozenset({"token_expired", "unauthenticated", "session_expired"})


@dataclass(frozen=True, slots=True)
class TransferOptions:
    chunk_size: int = 1024 * 1024  # plaintext bytes per chunk (the server adds 16 of tag)
    parallel: int = 3  # chunks in flight
    max_retries: int = 6  # consecutive failures of one request before pausing
    retry_base_s: float = 0.25
    retry_max_s: float = 4.0
    progress_interval_s: float = 0.1  # at most one progress snapshot per transfer per interval
    commit_interval_s: float = 0.5  # how often the chunks-done bitmap is written
    suite: str = "aes-256-gcm"
    # A cancelled upload's blob delete gives up after this long (left to retention).
    delete_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= blob_api.MAX_CHUNK_BYTES - TAG_SIZE:
            raise ValueError("chunk_size out of range")
        if self.parallel < 1:
            raise ValueError("parallel must be at least 1")


@dataclass(frozen=True, slots=True)
class DeviceSigner:
    """This device as the sender of descriptors: ids and its Ed25519 signing function."""

    user_id: str
    device_id: str
    sign: Callable[[bytes], str]


def download_id(descriptor: AttachmentDescriptor) -> str:
    """The transfer id of a descriptor's download: the same descriptor is one transfer
    (resume, no second copy); any other descriptor for the same blob is another."""
    return hashlib.sha256(b"SC-DL\n" + descriptor.signed_bytes()).hexdigest()[:32]


def _clean_name(name: str) -> str:
    name = name.encode("utf-8", "replace").decode("utf-8")
    name = "".join("_" if (ord(c) < 32 or ord(c) == 127 or c in "/\\") else c for c in name)
    if name in ("", ".", ".."):
        name = "file"
    return name[:MAX_NAME]


class TransferEngine:
    progress = Signal(object)  # TransferProgress
    finished = Signal(object)  # TransferResult: done, failed or cancelled

    def __init__(
        self, cache: Cache, transport: Transport | Callable[[], Transport], device: DeviceSigner,
        *, audit: AuditService, files: EncryptedFileStore | None = None,
        options: TransferOptions | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = TransferRepository(cache)
        self._files = files if files is not None else EncryptedFileStore(cache)
        self._transport = transport
        self.device = device
        self._audit = audit
        self.options = options or TransferOptions()
        self._clock = clock
        self._runs: dict[str, Run] = {}
        self._active: dict[str, asyncio.Future[TransferResult]] = {}
        # In-memory upload sources, while their transfer is unfinished (sources.MEMORY).
        self._memory: dict[str, bytes] = {}
        # Transfers whose caller records the audit entry itself (a study, a recording).
        # Memory only: a transfer resumed after a restart has no caller left to record it,
        # so the engine records its own entry then (one too many rather than none) --
        # unless the row has a purpose (a study's file, a recording): then the announcer
        # at sign-in records the action's one entry (``_audits``; chat_files).
        self._quiet: set[str] = set()
        # Background deletes of cancelled uploads' blobs (best effort; ``drain``).
        self._deletes: set[asyncio.Task[None]] = set()

    @classmethod
    def for_session(cls, session: SessionService, **kwargs: Any) -> TransferEngine:
        """The engine of a signed-in :class:`app.services.session.SessionService`."""
        device, cache, audit = session.device, session.cache, session.audit
        if device is None or cache is None or audit is None:
            raise SafeConsultError("transfers need a signed-in session")

        def transport() -> Transport:
            if session.transport is None:
                raise ConnectionFailed("signed out")
            return session.transport

        signer = DeviceSigner(device.user_id, device.device_id, device.identity.sign)
        return cls(cache, transport, signer, audit=audit, **kwargs)

    @property
    def files(self) -> EncryptedFileStore:
        return self._files

    def transport(self) -> Transport:
        return self._transport() if callable(self._transport) else self._transport

    # -- public API --------------------------------------------------------------------------

    async def upload(self, room_id: str, path: str | os.PathLike[str], *,
                     name: str | None = None, mime: str | None = None,
                     transfer_id: str | None = None, audit: bool = True,
                     announce_event_id: str | None = None, purpose: str | None = None,
                     purpose_ref: str | None = None) -> AttachmentDescriptor:
        """Encrypt and upload the file at ``path`` (one the user picked) to ``room_id``;
        returns the signed descriptor to send in the room. ``name`` defaults to the file's
        name, ``mime`` to a guess from it. ``audit=False``: the caller records the action
        itself (one entry for a study or a recording, not one per file). Raises a
        :class:`TransferError` (``TransferInterrupted``: paused, resume it with
        ``resume(transfer_id)``). ``announce_event_id``: the event id of the chat file message
        this upload is to be sent as, kept with the transfer until :meth:`announced` (see
        ``chat_files``: an upload finished after a restart is still announced, once).
        ``purpose``/``purpose_ref``: what the upload is part of (``RECORDING``, ``STUDY``;
        None for a chat attachment), kept with the transfer so that the sign-in's resume
        knows what to do with it; such an upload is never audited by the engine (its
        caller, or the announcer at sign-in, records the one entry)."""
        source = Path(path)
        try:
            st = source.stat()
            if not stat.S_ISREG(st.st_mode):
                raise SourceUnreadable("source is not a regular file")
            with open(source, "rb"):
                pass
        except OSError:
            raise SourceUnreadable("source file cannot be read") from None
        return await self._upload(room_id, st.st_size, str(source.resolve()), stamp(st),
                                  name if name is not None else source.name, mime,
                                  transfer_id, audit, announce_event_id, purpose, purpose_ref)

    async def upload_bytes(self, room_id: str, data: bytes | bytearray | memoryview, *,
                           name: str, mime: str | None = None, transfer_id: str | None = None,
                           audit: bool = True, announce_event_id: str | None = None,
                           purpose: str | None = None, purpose_ref: str | None = None,
                           ) -> AttachmentDescriptor:
        """Encrypt and upload ``data`` from memory: nothing is written to disk (a
        de-identified copy, a snapshot). Resumes after a dropped connection while this
        process lives; after a restart the transfer ends as ``source_gone`` and the caller
        uploads again (see ``sources``). The engine holds the bytes until the transfer
        finishes, fails or is cancelled."""
        payload = bytes(data)
        transfer_id = transfer_id or secrets.token_hex(16)
        self._memory[transfer_id] = payload
        try:
            return await self._upload(room_id, len(payload), MEMORY,
                                      hashlib.sha256(payload).hexdigest(), name, mime,
                                      transfer_id, audit, announce_event_id, purpose,
                                      purpose_ref)
        finally:  # kept only for a paused transfer's resume in this process
            with contextlib.suppress(Exception):  # a closing cache must not mask the error
                record = self._repo.get(transfer_id)
                if record is None or record.final:
                    self._memory.pop(transfer_id, None)

    async def upload_stored(self, room_id: str, file_id: str, *, name: str,
                            mime: str | None = None, transfer_id: str | None = None,
                            audit: bool = True, announce_event_id: str | None = None,
                            purpose: str | None = None, purpose_ref: str | None = None,
                            ) -> AttachmentDescriptor:
        """Upload a file of the encrypted file store: read through its decryptor chunk by
        chunk in memory and encrypted once, under the transfer's own key (the stored
        file's key stays on this device). Resumable after a restart, like a path."""
        source = StoredSource(self._files, file_id, None)
        try:
            size, when = source.size, source.stamp
        finally:
            source.close()
        return await self._upload(room_id, size, STORE + file_id, when, name, mime,
                                  transfer_id, audit, announce_event_id, purpose, purpose_ref)

    async def _upload(self, room_id: str, size: int, source: str, source_stamp: str,
                      name: str, mime: str | None, transfer_id: str | None,
                      audit: bool, announce_event_id: str | None = None,
                      purpose: str | None = None, purpose_ref: str | None = None,
                      ) -> AttachmentDescriptor:
        chunks = max(1, -(-size // self.options.chunk_size))
        if size + TAG_SIZE * chunks > blob_api.MAX_BLOB_BYTES:
            raise FileTooLarge("file larger than the blob limit")
        shown = _clean_name(name)
        kind = mime or mimetypes.guess_type(shown)[0] or DEFAULT_MIME
        if not MIME_PATTERN.match(kind):
            kind = DEFAULT_MIME
        key = new_file_key(self.options.suite)
        cipher = ChunkCipher.new(key, length=size, suite=self.options.suite,
                                 chunk_size=self.options.chunk_size)
        transfer_id = transfer_id or secrets.token_hex(16)
        if not audit:
            self._quiet.add(transfer_id)
        self._repo.insert(
            transfer_id, UPLOAD, PREPARING, room_id, size=size, chunk_count=cipher.count,
            file_key=key, header=cipher.header_bytes, source=Phi(source),
            source_stamp=source_stamp, name=Phi(shown), mime=Phi(kind),
            announce_event_id=announce_event_id, purpose=purpose, purpose_ref=purpose_ref)
        result = await self._start(transfer_id)
        assert result.descriptor is not None
        return result.descriptor

    async def download(self, descriptor: AttachmentDescriptor | Mapping[str, Any] | str,
                       sender: SenderDevice, *, room_id: str | None = None,
                       audit: bool = True) -> str:
        """Fetch, verify and store an attachment; returns its id in the encrypted file
        store. ``sender`` is the sending device *as this device knows it* (e.g. the Megolm
        sender's record); ``room_id``, when given, must be the descriptor's room.

        Nothing is fetched unless the signature verifies; nothing is stored unless every
        chunk and the digest do. The same descriptor again returns the same file id."""
        try:
            desc = (descriptor if isinstance(descriptor, AttachmentDescriptor)
                    else parse_descriptor(descriptor))
            if room_id is not None and desc.room_id != room_id:
                raise DescriptorInvalid("descriptor belongs to another room")
            desc.verify(sender)
        except (DescriptorInvalid, ManifestSignatureInvalid) as exc:
            if audit:
                self._record(RECEIVE_ACTION, None, outcome="refused", code=exc.code,
                             room_id=room_id)
            raise
        transfer_id = download_id(desc)
        if audit:
            self._quiet.discard(transfer_id)
        else:
            self._quiet.add(transfer_id)
        record = self._repo.get(transfer_id)
        if record is not None and record.state == DONE and record.file_id in self._files.ids():
            return record.file_id  # type: ignore[return-value]
        if record is not None and (record.final or record.sender_ed25519 != sender.ed25519):
            self._repo.delete(transfer_id)
            record = None
        if record is None:
            self._repo.insert(
                transfer_id, DOWNLOAD, DOWNLOADING, desc.room_id, size=desc.size,
                chunk_count=desc.chunk_count, blob_id=desc.blob_id, sha256=desc.sha256,
                descriptor=desc.to_json(), sender_ed25519=sender.ed25519, name=desc.name,
                mime=desc.mime)
        result = await self._start(transfer_id)
        assert result.file_id is not None
        return result.file_id

    async def resume(self, transfer_id: str) -> TransferResult:
        """Go on with a paused or interrupted transfer (or return a finished one's result)."""
        return await self._start(transfer_id)

    async def resume_pending(self, *, skip: Callable[[TransferRecord], bool] | None = None,
                             ) -> list[TransferResult]:
        """Resume every unfinished transfer, one after the other (call at start-up, once
        the session is signed in), except those ``skip`` names. Errors are reported in the
        results, not raised."""
        self._repo.remove_orphan_staging()
        results = []
        for record in self._repo.unfinished():
            if record.transfer_id in self._active or (skip is not None and skip(record)):
                continue
            try:
                results.append(await self._start(record.transfer_id))
            except TransferError as exc:
                results.append(TransferResult(record.transfer_id, record.direction,
                                              record.room_id, error_code=exc.code,
                                              error_message=exc.user_message))
        return results

    def cancel(self, transfer_id: str) -> None:
        """Stop a transfer for good (running or paused). Its partial data is removed, and an
        upload's blob is deleted on the server -- in the background, best effort: if the
        server cannot be reached the blob is left to the server's retention. The cancel
        itself never waits for, nor fails because of, that delete (``drain`` waits)."""
        run = self._runs.get(transfer_id)
        if run is not None:
            run.cancel_requested = True
            return
        record = self._repo.get(transfer_id)
        if record is None:
            raise UnknownTransfer("no such transfer")
        if not record.final:
            self._end(record, phases.CANCELLED, TransferCancelled("cancelled by the user"))

    def discard(self, transfer_id: str) -> None:
        """A finished (or failed) upload that will never be announced -- a study share that
        was cancelled or that a restart interrupted: delete its blob on the server, as for a
        cancelled upload (background, best effort). A cancelled upload's blob was deleted at
        its cancel; a download, or an upload that created no blob, has nothing to delete."""
        record = self._repo.get(transfer_id)
        if record is None:
            raise UnknownTransfer("no such transfer")
        if record.direction != UPLOAD or record.state not in (DONE, FAILED):
            return
        self._delete_blob(record.blob_id)

    async def drain(self) -> None:
        """Wait for the blob deletes under way (each bounded by ``delete_timeout_s``)."""
        while pending := [task for task in self._deletes if not task.done()]:
            await asyncio.wait(pending)

    async def stop(self) -> None:
        """Pause every running transfer (sign-out, lock-down, shutdown): their callers get
        ``CancelledError``, the state stays, ``resume_pending`` goes on later. Blob deletes
        under way get a short moment to finish (then they are left to retention)."""
        tasks = [run.task for run in self._runs.values()
                 if run.task is not None and run.task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        deletes = tuple(self._deletes)
        if deletes:
            _done, late = await asyncio.wait(deletes, timeout=_STOP_DELETE_WAIT_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def transfers(self) -> list[TransferProgress]:
        """Every transfer this device knows, running or not (for a transfer list)."""
        out = []
        for record in self._repo.all():
            run = self._runs.get(record.transfer_id)
            out.append(run.snapshot() if run is not None else self._idle_snapshot(record))
        return out

    def pending(self) -> list[TransferRecord]:
        """Unfinished transfers (what ``resume_pending`` will go on with), oldest first."""
        return self._repo.unfinished()

    def running(self, transfer_id: str) -> bool:
        """Whether the transfer is being driven now (in this process)."""
        return transfer_id in self._active

    def to_announce(self) -> list[TransferRecord]:
        """Finished uploads whose chat file message is not queued yet (``announce_event_id``)."""
        return self._repo.to_announce()

    def announcing(self) -> list[TransferRecord]:
        """Uploads in any state still holding their ``announce_event_id`` (not settled)."""
        return self._repo.announcing()

    def record(self, transfer_id: str) -> TransferRecord | None:
        """A transfer's row (its purpose, state, event id), or None."""
        return self._repo.get(transfer_id)

    def transaction(self) -> contextlib.AbstractContextManager[object]:
        """One write transaction of the cache around several calls (e.g. settling an
        announcement and recording its audit entry: both or neither)."""
        return self._repo.transaction()

    def announce_event_id(self, transfer_id: str) -> str | None:
        record = self._repo.get(transfer_id)
        return record.announce_event_id if record is not None else None

    def announced(self, transfer_id: str) -> None:
        """The upload's file message is in the chat outbox: nothing left to announce."""
        if self._repo.get(transfer_id) is not None:
            self._repo.update(transfer_id, announce_event_id=None)

    def result(self, transfer_id: str) -> TransferResult | None:
        """A finished transfer's result (e.g. an upload's descriptor after a restart)."""
        record = self._repo.get(transfer_id)
        if record is None or record.state != DONE:
            return None
        return self._result_of(record)

    def forget(self, transfer_id: str) -> None:
        """Drop a finished transfer's row (a download's file stays in the file store)."""
        record = self._repo.get(transfer_id)
        if record is not None and not record.final:
            raise TransferError("cancel a transfer before forgetting it")
        self._repo.delete(transfer_id)
        self._memory.pop(transfer_id, None)
        self._quiet.discard(transfer_id)

    # -- driving -----------------------------------------------------------------------------

    async def _start(self, transfer_id: str) -> TransferResult:
        active = self._active.get(transfer_id)
        if active is not None:
            return await asyncio.shield(active)
        future: asyncio.Future[TransferResult] = asyncio.get_running_loop().create_future()
        self._active[transfer_id] = future
        try:
            result = await self._drive(transfer_id)
        except BaseException as exc:
            if isinstance(exc, TransferError) and exc.transfer_id is None:
                exc.transfer_id = transfer_id  # so that the caller can resume or cancel it
            if not future.done():
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
                    future.exception()  # retrieved: no "never retrieved" warning
            raise
        else:
            future.set_result(result)
            return result
        finally:
            self._active.pop(transfer_id, None)

    async def _drive(self, transfer_id: str) -> TransferResult:
        record = self._repo.get(transfer_id)
        if record is None:
            raise UnknownTransfer("no such transfer")
        if record.state == DONE:
            return self._result_of(record)
        if record.final:
            raise TransferError(f"transfer already ended ({record.state})")
        run = Run(self, record)
        run.task = asyncio.current_task()
        self._runs[transfer_id] = run
        try:
            if record.direction == UPLOAD:
                descriptor = await run_upload(self, run)
                result = TransferResult(transfer_id, UPLOAD, record.room_id, descriptor=descriptor)
            else:
                file_id = await run_download(self, run)
                result = TransferResult(transfer_id, DOWNLOAD, record.room_id, file_id=file_id)
        except asyncio.CancelledError:
            if run.cancel_requested:
                self._end(run.record, phases.CANCELLED, TransferCancelled("cancelled"), run)
                raise TransferCancelled("cancelled by the user") from None
            self._pause(run, None)
            raise
        except TransferCancelled as exc:
            self._end(run.record, phases.CANCELLED, exc, run)
            raise
        except TransferInterrupted as exc:
            self._pause(run, exc)
            raise
        except (TransferError, FileTampered) as exc:
            error = exc if isinstance(exc, TransferError) else TransferTampered(str(exc))
            self._end(run.record, phases.FAILED, error, run)
            if error is exc:
                raise
            raise error from None
        except CertificateNotPinned as exc:
            self._pause(run, exc)
            raise
        finally:
            self._runs.pop(transfer_id, None)
        self._memory.pop(transfer_id, None)
        self._quiet.discard(transfer_id)
        self.progress.emit(run.snapshot(phases.DONE))
        self.finished.emit(result)
        return result

    def _pause(self, run: Run, error: SafeConsultError | None) -> None:
        # Best effort: the cache may be closing under us (sign-out, wipe); the staging file
        # is re-checked at resume anyway.
        with contextlib.suppress(Exception):
            run.commit()
        self.progress.emit(run.snapshot(phases.PAUSED, error))

    def _end(self, record: TransferRecord, phase: str, error: TransferError,
             run: Run | None = None) -> None:
        state = FAILED if phase == phases.FAILED else phases.CANCELLED
        fields: dict[str, Any] = {"state": state, "error": error.code, "file_key": None,
                                  "tags": None}
        if record.direction == DOWNLOAD:
            fields["descriptor"] = None
        self._repo.update(record.transfer_id, **fields)
        with contextlib.suppress(ValueError):
            self._repo.staging_path(record.transfer_id).unlink(missing_ok=True)
        if phase == phases.CANCELLED and record.direction == UPLOAD:
            self._delete_blob(record.blob_id)
        action = SEND_ACTION if record.direction == UPLOAD else RECEIVE_ACTION
        outcome = "refused" if isinstance(error, (TransferTampered, TransferRefused)) else (
            "failed")
        self._memory.pop(record.transfer_id, None)
        if phase == phases.FAILED and self._audits(record.transfer_id):
            self._record(action, record.blob_id, outcome=outcome, code=error.code,
                         room_id=record.room_id)
        self._quiet.discard(record.transfer_id)
        snapshot = run.snapshot(phase, error) if run is not None else TransferProgress(
            record.transfer_id, record.direction, phase, record.room_id, 0, 0, 0,
            record.chunk_count, error_code=error.code, error_message=error.user_message)
        self.progress.emit(snapshot)
        self.finished.emit(TransferResult(record.transfer_id, record.direction, record.room_id,
                                          error_code=error.code,
                                          error_message=error.user_message))

    def _delete_blob(self, blob_id: str | None) -> None:
        """Start deleting an upload's blob on the server, in the background."""
        if blob_id is None:  # cancelled before the server made one: nothing there
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): left to retention
            log.warning("an unsent upload's blob was not deleted; left to the server's "
                        "retention", extra={"event": "blob_delete_failed",
                                            "reason_code": "no_event_loop"})
            return
        task = loop.create_task(self._delete_blob_now(blob_id))
        self._deletes.add(task)
        task.add_done_callback(self._deletes.discard)

    async def _delete_blob_now(self, blob_id: str) -> None:
        """One blob delete: a few tries while the server is finalizing it or busy, all
        within ``delete_timeout_s``; any failure is logged (no patient data) and the blob
        left to the server's retention. Never raises (but for its own cancellation)."""
        reason = ""
        try:
            async with asyncio.timeout(self.options.delete_timeout_s):
                for attempt in range(_DELETE_TRIES):
                    try:
                        await blob_api.delete_blob(self.transport(), blob_id)
                        break
                    except ServerError as exc:
                        transient = (exc.code in _RETRYABLE_CODES or exc.status >= 500
                                     or exc.status == 429)
                        if not transient or attempt == _DELETE_TRIES - 1:
                            raise
                    await asyncio.sleep(self.options.retry_base_s * 2 ** attempt)
        except ServerError as exc:
            reason = exc.code
        except (ConnectionFailed, CertificateNotPinned):
            reason = "connection"
        except TimeoutError:
            reason = "timeout"
        except ProtocolError:
            reason = "protocol"
        except Exception as exc:  # e.g. the transport closed by a sign-out meanwhile
            reason = type(exc).__name__
        if reason:
            log.warning("an unsent upload's blob was not deleted; left to the server's "
                        "retention", extra={"event": "blob_delete_failed",
                                            "reason_code": reason})
        else:
            log.info("an unsent upload's blob was deleted", extra={"event": "blob_deleted"})

    def _emit(self, run: Run, *, force: bool = False) -> None:
        now = self._clock()
        if force or now - run.last_emit >= self.options.progress_interval_s:
            run.last_emit = now
            self.progress.emit(run.snapshot())

    def _audits(self, transfer_id: str) -> bool:
        """Whether the engine records this transfer's audit entry (not its caller): not for
        ``audit=False``, nor for an upload with a purpose (a study's file, a recording),
        whose one entry its caller -- or the announcer at sign-in -- records."""
        if transfer_id in self._quiet:
            return False
        record = self._repo.get(transfer_id)
        return record is None or record.purpose is None

    def _record(self, action: str, blob_id: str | None, *, outcome: str = "ok",
                code: str = "", room_id: str | None = None, size: int | None = None) -> None:
        detail: dict[str, str | int] = {}
        if room_id:
            detail["room_id"] = room_id[:128]
        if size is not None:
            detail["size"] = size
        if code:
            detail["code"] = code
        self._audit.record(action, object_type="blob", object_id=blob_id, outcome=outcome,
                           detail=detail)

    def _idle_snapshot(self, record: TransferRecord) -> TransferProgress:
        phase = {DONE: phases.DONE, FAILED: phases.FAILED,
                 phases.CANCELLED: phases.CANCELLED}.get(record.state, phases.PAUSED)
        total = record.size if record.direction == UPLOAD and record.state == PREPARING else (
            record.size + TAG_SIZE * record.chunk_count)
        done = total if record.state == DONE else (
            total * len(record.done) // max(1, record.chunk_count))
        return TransferProgress(
            record.transfer_id, record.direction, phase, record.room_id,
            bytes_done=done, bytes_total=total,
            chunks_done=len(record.done), chunk_count=record.chunk_count,
            error_code=record.error or "")

    def _result_of(self, record: TransferRecord) -> TransferResult:
        if record.direction == UPLOAD:
            assert record.descriptor is not None
            return TransferResult(record.transfer_id, UPLOAD, record.room_id,
                                  descriptor=parse_descriptor(record.descriptor))
        return TransferResult(record.transfer_id, DOWNLOAD, record.room_id,
                              file_id=record.file_id)

    # -- requests with retries ---------------------------------------------------------------

    async def _call(self, run: Run, request: Callable[[], Awaitable[T]], *,
                    passthrough: frozenset[str] = frozenset()) -> T:
        """One server request, retried with jittered backoff while the failure is transient
        (connection, 5xx, 429); after ``max_retries`` in a row -> TransferInterrupted."""
        failures = 0
        while True:
            run.check()
            try:
                return await request()
            except CertificateNotPinned:
                raise
            except ServerError as exc:
                if exc.code in passthrough:
                    raise
                if exc.code in _SESSION_CODES or exc.status == 401:
                    raise TransferInterrupted("signed out or session expired") from None
                if not (exc.status >= 500 or exc.status == 429 or exc.code in _RETRYABLE_CODES):
                    raise self._refusal(exc) from None
                reason = exc.code
            except ConnectionFailed:
                reason = "connection"
            except ProtocolError:
                raise TransferError("the server's answer was not understood") from None
            failures += 1
            if failures > self.options.max_retries:
                raise TransferInterrupted(f"gave up after {failures} failures ({reason})")
            delay = min(self.options.retry_max_s, self.options.retry_base_s * 2 ** (failures - 1))
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 -- not security

    @staticmethod
    def _refusal(exc: ServerError) -> TransferError:
        if exc.status == 413:
            return FileTooLarge(f"server: {exc.code}")
        if exc.code == "chunk_missing":
            return TransferTampered("the server no longer holds a chunk")
        if exc.status in (403, 404):
            return TransferRefused(f"server: {exc.code}", server_code=exc.code)
        return TransferError(f"server refused: {exc.status} {exc.code}")

    async def _pump(self, run: Run, todo: list[int],
                    work: Callable[[int], Awaitable[int]]) -> None:
        """Run ``work`` over ``todo`` with at most ``parallel`` chunks in flight."""
        pending = iter(todo)

        async def worker() -> None:
            for index in pending:
                run.check()
                nbytes = await work(index)
                run.advance(nbytes, index)

        tasks = [asyncio.ensure_future(worker())
                 for _ in range(min(self.options.parallel, len(todo)))]
        if not tasks:
            return
        try:
            done, rest = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
