"""The transfer engine: resumable, end-to-end encrypted upload and download of attachments.

Upload (``upload(room_id, path) -> AttachmentDescriptor``):

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

Progress is published as :class:`TransferProgress` snapshots on the ``progress`` signal
(psygnal: Qt-free), results on ``finished``; ``cancel(transfer_id)`` stops a transfer.
Memory stays bounded: at most ``parallel`` chunks in flight, each a few times
``chunk_size``. Must be used from the event loop's thread (the cache connection is not
shared between threads); encryption and file I/O run in worker threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import mimetypes
import os
import random
import secrets
import stat
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from psygnal import Signal

from app.core.errors import CertificateNotPinned, ConnectionFailed, SafeConsultError, ServerError
from app.core.phi import Phi
from app.crypto.files import (
    HEADER_SIZE,
    TAG_SIZE,
    ChunkCipher,
    FileHeader,
    FileTampered,
    decrypt_chunks,
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
from app.services.transfers.errors import (
    DescriptorInvalid,
    FileTooLarge,
    ManifestSignatureInvalid,
    SourceChanged,
    SourceUnreadable,
    TransferCancelled,
    TransferError,
    TransferInterrupted,
    TransferRefused,
    TransferTampered,
    UnknownTransfer,
)
from app.services.transfers.fileio import PositionalFile
from app.services.transfers.progress import RateMeter, TransferProgress, TransferResult
from app.storage.files import EncryptedFileStore
from app.storage.transfers import (
    DONE,
    DOWNLOAD,
    DOWNLOADING,
    FAILED,
    PREPARING,
    UPLOAD,
    UPLOADING,
    VERIFYING,
    TransferRecord,
    TransferRepository,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

SEND_ACTION = "file.send"
RECEIVE_ACTION = "file.download"
_RETRYABLE_CODES = frozenset({"blob_finalizing"})
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


def _stamp(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}"


def _clean_name(name: str) -> str:
    name = name.encode("utf-8", "replace").decode("utf-8")
    name = "".join("_" if (ord(c) < 32 or ord(c) == 127 or c in "/\\") else c for c in name)
    if name in ("", ".", ".."):
        name = "file"
    return name[:MAX_NAME]


class _PlainReader:
    """A ``read(n)`` view of a chunk iterator, for EncryptedFileStore.put."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        while not self._buf:
            nxt = next(self._chunks, None)
            if nxt is None:
                return b""
            self._buf = memoryview(nxt)
        if size < 0:
            size = len(self._buf)
        out = bytes(self._buf[:size])
        self._buf = self._buf[size:]
        return out


# Chunk work (encryption, hashing, file I/O) runs on a few dedicated threads rather than the
# loop's default executor: fewer threads means fewer malloc arenas holding freed chunk
# buffers, which keeps the resident size of a long transfer flat.
_WORKERS = 4
_executor: concurrent.futures.ThreadPoolExecutor | None = None


def _chunk_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = concurrent.futures.ThreadPoolExecutor(_WORKERS, "sc-transfer")
    return _executor


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run ``func`` in a worker thread. If the caller is cancelled, wait for the thread to
    finish before re-raising: it may be writing to a file descriptor the caller will close."""
    future = asyncio.get_running_loop().run_in_executor(_chunk_executor(), func, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise


class _Run:
    """The live state of one running transfer."""

    def __init__(self, engine: TransferEngine, record: TransferRecord) -> None:
        self.engine = engine
        self.record = record
        self.transfer_id = record.transfer_id
        self.phase = record.state
        self.bytes_total = 0
        self.bytes_done = 0
        self.resumed = 0
        self.done: set[int] = set()
        self.cancel_requested = False
        self.meter = RateMeter(clock=engine._clock)
        self.last_emit = 0.0
        self.last_commit = engine._clock()

    def start_phase(self, phase: str, total: int, done: Iterable[int] = (),
                    size_of: Callable[[int], int] | None = None) -> None:
        self.phase = phase
        self.done = set(done)
        self.bytes_total = total
        self.bytes_done = sum(size_of(i) for i in self.done) if size_of else 0
        self.resumed = self.bytes_done
        self.meter.reset(self.bytes_done)
        self.engine._emit(self, force=True)

    def advance(self, nbytes: int, index: int | None = None) -> None:
        if index is not None:
            self.done.add(index)
        self.bytes_done += nbytes
        self.meter.add(self.bytes_done)
        now = self.engine._clock()
        if index is not None and now - self.last_commit >= self.engine.options.commit_interval_s:
            self.commit()
        self.engine._emit(self)

    def commit(self) -> None:
        self.engine._repo.update(self.transfer_id, done=self.done)
        self.last_commit = self.engine._clock()

    def check(self) -> None:
        if self.cancel_requested:
            raise TransferCancelled("cancelled by the user")

    def snapshot(self, phase: str | None = None, error: SafeConsultError | None = None,
                 ) -> TransferProgress:
        rec = self.record
        return TransferProgress(
            transfer_id=self.transfer_id, direction=rec.direction, phase=phase or self.phase,
            room_id=rec.room_id, bytes_done=self.bytes_done, bytes_total=self.bytes_total,
            chunks_done=len(self.done), chunk_count=rec.chunk_count,
            speed_bps=self.meter.speed(), eta_s=self.meter.eta(self.bytes_total - self.bytes_done),
            resumed_bytes=self.resumed, error_code=_code(error) if error else "",
            error_message=error.user_message if error else "",
        )


def _code(exc: BaseException) -> str:
    return getattr(exc, "code", "") if isinstance(getattr(exc, "code", None), str) else (
        exc.__class__.__name__)


class TransferEngine:
    progress = Signal(object)  # TransferProgress
    finished = Signal(object)  # TransferResult: done, failed or cancelled

    def __init__(
        self, cache: Any, transport: Transport | Callable[[], Transport], device: DeviceSigner,
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
        self._runs: dict[str, _Run] = {}
        self._active: dict[str, asyncio.Future[TransferResult]] = {}

    @classmethod
    def for_session(cls, session: Any, **kwargs: Any) -> TransferEngine:
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
                     transfer_id: str | None = None) -> AttachmentDescriptor:
        """Encrypt and upload the file at ``path`` to ``room_id``; returns the signed
        descriptor to send in the room. ``name`` defaults to the file's name, ``mime`` to a
        guess from it. Raises a :class:`TransferError` (``TransferInterrupted``: paused,
        resume it with ``resume(transfer_id)``)."""
        source = Path(path)
        try:
            st = source.stat()
            if not stat.S_ISREG(st.st_mode):
                raise SourceUnreadable("source is not a regular file")
            with open(source, "rb"):
                pass
        except OSError:
            raise SourceUnreadable("source file cannot be read") from None
        chunks = max(1, -(-st.st_size // self.options.chunk_size))
        if st.st_size + TAG_SIZE * chunks > blob_api.MAX_BLOB_BYTES:
            raise FileTooLarge("file larger than the blob limit")
        shown = _clean_name(name if name is not None else source.name)
        kind = mime or mimetypes.guess_type(shown)[0] or DEFAULT_MIME
        if not MIME_PATTERN.match(kind):
            kind = DEFAULT_MIME
        key = new_file_key(self.options.suite)
        cipher = ChunkCipher.new(key, length=st.st_size, suite=self.options.suite,
                                 chunk_size=self.options.chunk_size)
        transfer_id = transfer_id or secrets.token_hex(16)
        self._repo.insert(
            transfer_id, UPLOAD, PREPARING, room_id, size=st.st_size, chunk_count=cipher.count,
            file_key=key, header=cipher.header_bytes, source=Phi(str(source.resolve())),
            source_stamp=_stamp(st), name=Phi(shown), mime=Phi(kind))
        result = await self._start(transfer_id)
        assert result.descriptor is not None
        return result.descriptor

    async def download(self, descriptor: AttachmentDescriptor | Mapping[str, Any] | str,
                       sender: SenderDevice, *, room_id: str | None = None) -> str:
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
            self._record(RECEIVE_ACTION, None, outcome="refused", code=exc.code,
                         room_id=room_id)
            raise
        transfer_id = download_id(desc)
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

    async def resume_pending(self) -> list[TransferResult]:
        """Resume every unfinished transfer, one after the other (call at start-up, once
        the session is signed in). Errors are reported in the results, not raised."""
        self._repo.remove_orphan_staging()
        results = []
        for record in self._repo.unfinished():
            if record.transfer_id in self._active:
                continue
            try:
                results.append(await self._start(record.transfer_id))
            except TransferError as exc:
                results.append(TransferResult(record.transfer_id, record.direction,
                                              record.room_id, error_code=exc.code,
                                              error_message=exc.user_message))
        return results

    def cancel(self, transfer_id: str) -> None:
        """Stop a transfer for good (running or paused). Its partial data is removed; an
        upload's incomplete blob is left to the server's retention."""
        run = self._runs.get(transfer_id)
        if run is not None:
            run.cancel_requested = True
            return
        record = self._repo.get(transfer_id)
        if record is None:
            raise UnknownTransfer("no such transfer")
        if not record.final:
            self._end(record, phases.CANCELLED, TransferCancelled("cancelled by the user"))

    def transfers(self) -> list[TransferProgress]:
        """Every transfer this device knows, running or not (for a transfer list)."""
        out = []
        for record in self._repo.all():
            run = self._runs.get(record.transfer_id)
            out.append(run.snapshot() if run is not None else self._idle_snapshot(record))
        return out

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
        run = _Run(self, record)
        self._runs[transfer_id] = run
        try:
            if record.direction == UPLOAD:
                descriptor = await self._upload(run)
                result = TransferResult(transfer_id, UPLOAD, record.room_id, descriptor=descriptor)
            else:
                file_id = await self._download(run)
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
        self.progress.emit(run.snapshot(phases.DONE))
        self.finished.emit(result)
        return result

    def _pause(self, run: _Run, error: SafeConsultError | None) -> None:
        with contextlib.suppress(SafeConsultError):
            run.commit()
        self.progress.emit(run.snapshot(phases.PAUSED, error))

    def _end(self, record: TransferRecord, phase: str, error: TransferError,
             run: _Run | None = None) -> None:
        state = FAILED if phase == phases.FAILED else phases.CANCELLED
        fields: dict[str, Any] = {"state": state, "error": error.code, "file_key": None,
                                  "tags": None}
        if record.direction == DOWNLOAD:
            fields["descriptor"] = None
        self._repo.update(record.transfer_id, **fields)
        with contextlib.suppress(ValueError):
            self._repo.staging_path(record.transfer_id).unlink(missing_ok=True)
        action = SEND_ACTION if record.direction == UPLOAD else RECEIVE_ACTION
        outcome = "refused" if isinstance(error, (TransferTampered, TransferRefused)) else (
            "failed")
        if phase == phases.FAILED:
            self._record(action, record.blob_id, outcome=outcome, code=error.code,
                         room_id=record.room_id)
        snapshot = run.snapshot(phase, error) if run is not None else TransferProgress(
            record.transfer_id, record.direction, phase, record.room_id, 0, 0, 0,
            record.chunk_count, error_code=error.code, error_message=error.user_message)
        self.progress.emit(snapshot)
        self.finished.emit(TransferResult(record.transfer_id, record.direction, record.room_id,
                                          error_code=error.code,
                                          error_message=error.user_message))

    def _emit(self, run: _Run, *, force: bool = False) -> None:
        now = self._clock()
        if force or now - run.last_emit >= self.options.progress_interval_s:
            run.last_emit = now
            self.progress.emit(run.snapshot())

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

    async def _call(self, run: _Run, request: Callable[[], Awaitable[T]], *,
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

    async def _pump(self, run: _Run, todo: list[int],
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

    # -- upload ------------------------------------------------------------------------------

    def _open_source(self, record: TransferRecord) -> PositionalFile:
        assert record.source is not None
        try:
            src = PositionalFile(record.source.reveal())
        except OSError:
            raise SourceUnreadable("source file cannot be read") from None
        if _stamp(src.stat()) != record.source_stamp:
            src.close()
            raise SourceChanged("source file changed since the transfer began")
        return src

    async def _upload(self, run: _Run) -> AttachmentDescriptor:
        record = run.record
        assert record.header is not None and record.file_key is not None
        cipher = ChunkCipher(FileHeader.unpack(record.header), record.file_key)
        src = self._open_source(record)
        try:
            if record.state == PREPARING:
                tags, digest = await self._prepare(run, cipher, src)
                info = await self._call(run, lambda: blob_api.create_blob(
                    self.transport(), record.room_id, total_size=cipher.sealed_length,
                    chunk_size=cipher.header.chunk_size + TAG_SIZE, chunk_count=cipher.count,
                    sha256=digest))
                self._repo.update(record.transfer_id, tags=tags, sha256=digest,
                                  blob_id=info.blob_id, state=UPLOADING, done=set())
                record = run.record = self._repo.get(record.transfer_id)  # type: ignore[assignment]
            await self._send_all(run, cipher, src)
        finally:
            src.close()
        assert record.blob_id is not None and record.sha256 is not None
        assert record.name is not None and record.mime is not None
        descriptor = AttachmentDescriptor.create(
            room_id=record.room_id, blob_id=record.blob_id, sender_user=self.device.user_id,
            sender_device=self.device.device_id, key=record.file_key, header=cipher.header,
            sha256=record.sha256, name=record.name.reveal(), mime=record.mime.reveal(),
            ts_ms=int(time.time() * 1000), sign=self.device.sign)
        with self._repo.transaction():  # the row and the audit entry in one commit
            self._repo.update(record.transfer_id, state=DONE, descriptor=descriptor.to_json(),
                              done=set(range(cipher.count)), file_key=None, tags=None,
                              source=None)
            self._record(SEND_ACTION, record.blob_id, room_id=record.room_id,
                         size=record.size)
        return descriptor

    async def _prepare(self, run: _Run, cipher: ChunkCipher, src: PositionalFile,
                       ) -> tuple[bytes, str]:
        """First pass: the ciphertext's digest and each chunk's tag; nothing is kept."""
        hasher = hashlib.sha256()
        tags = bytearray()
        run.start_phase(phases.PREPARING, cipher.header.length)

        def seal(index: int) -> bytes:
            size = cipher.plain_size(index)
            plain = src.read_at(size, cipher.plain_offset(index))
            if len(plain) != size:
                raise SourceChanged("source file shorter than when the transfer began")
            sealed = cipher.seal(index, plain)
            hasher.update(sealed)
            return sealed[-TAG_SIZE:]

        for index in range(cipher.count):
            run.check()
            tags += await _in_thread(seal, index)
            run.advance(cipher.plain_size(index))
        return bytes(tags), hasher.hexdigest()

    async def _send_all(self, run: _Run, cipher: ChunkCipher, src: PositionalFile) -> None:
        record = run.record
        blob_id, tags = record.blob_id, record.tags
        assert blob_id is not None and tags is not None
        transport = self.transport

        def seal(index: int) -> bytes:
            size = cipher.plain_size(index)
            plain = src.read_at(size, cipher.plain_offset(index))
            sealed = cipher.seal(index, plain) if len(plain) == size else b""
            if sealed[-TAG_SIZE:] != tags[index * TAG_SIZE:(index + 1) * TAG_SIZE]:
                # Different plaintext under the same nonce must never leave this process.
                raise SourceChanged("source file changed during the transfer")
            return sealed

        async def send(index: int) -> int:
            sealed = await _in_thread(seal, index)
            with contextlib.suppress(ServerError):  # blob_complete: finalized already
                await self._call(run, lambda: blob_api.put_chunk(
                    transport(), blob_id, index, sealed), passthrough=frozenset({"blob_complete"}))
            return len(sealed)

        resend_all = False
        for _attempt in range(3):
            status = await self._call(run, lambda: blob_api.blob_status(transport(), blob_id))
            if status.state == "complete":
                return
            present = frozenset() if resend_all else (status.present_chunks or frozenset())
            run.start_phase(phases.UPLOADING, cipher.sealed_length, present,
                            size_of=cipher.sealed_size)
            await self._pump(run, [i for i in range(cipher.count) if i not in present], send)
            run.commit()
            try:
                await self._call(run, lambda: blob_api.finalize(transport(), blob_id),
                                 passthrough=frozenset({"chunks_missing", "size_mismatch",
                                                        "hash_mismatch"}))
                return
            except ServerError as exc:
                # The server lost or garbled a chunk: send what it lacks (or all) again.
                log.info("blob finalize refused; resending", extra={
                    "event": "transfer_finalize_refused", "reason_code": exc.code})
                resend_all = exc.code != "chunks_missing"
        raise TransferError("the server did not accept the upload")

    # -- download ----------------------------------------------------------------------------

    async def _download(self, run: _Run) -> str:
        record = run.record
        assert record.descriptor is not None and record.sender_ed25519 is not None
        desc = parse_descriptor(record.descriptor)
        desc.verify_key(record.sender_ed25519)  # the row is ours, but check what we act on
        cipher = ChunkCipher(desc.header, desc.key)
        path = self._repo.staging_path(record.transfer_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        expected = HEADER_SIZE + cipher.sealed_length
        staging = PositionalFile(path, write=True)
        try:
            if record.state == DOWNLOADING:
                if staging.stat().st_size != expected:
                    staging.truncate(0)
                    staging.write_at(cipher.header_bytes, 0)
                    staging.truncate(expected)
                    done: frozenset[int] = frozenset()
                else:
                    done = await _in_thread(self._verify_staged, staging, cipher, record.done)
                run.start_phase(phases.DOWNLOADING, cipher.sealed_length, done,
                                size_of=cipher.sealed_size)
                todo = [i for i in range(cipher.count) if i not in done]
                await self._pump(run, todo,
                                 lambda i: self._fetch(run, cipher, staging, desc, i))
                self._repo.update(record.transfer_id, state=VERIFYING, done=run.done)
            run.start_phase(phases.VERIFYING, cipher.sealed_length, range(cipher.count),
                            size_of=cipher.sealed_size)
            digest = await _in_thread(self._digest_staged, staging, expected)
        finally:
            staging.close()
        if digest != desc.sha256:
            raise TransferTampered("ciphertext digest does not match the descriptor")
        file_id = self._store(path, desc)
        with self._repo.transaction():
            self._repo.update(record.transfer_id, state=DONE, file_id=file_id, descriptor=None)
            self._record(RECEIVE_ACTION, desc.blob_id, room_id=desc.room_id, size=desc.size)
        path.unlink(missing_ok=True)
        return file_id

    async def _fetch(self, run: _Run, cipher: ChunkCipher, staging: PositionalFile,
                     desc: AttachmentDescriptor, index: int) -> int:
        transport = self.transport
        data = await self._call(run, lambda: blob_api.get_chunk(transport(), desc.blob_id, index))
        if len(data) != cipher.sealed_size(index):
            raise TransferTampered(f"chunk {index} has the wrong size")

        def check_and_write() -> None:
            try:
                cipher.open(index, data)
            except FileTampered as exc:
                raise TransferTampered(str(exc)) from None
            staging.write_at(data, HEADER_SIZE + cipher.sealed_offset(index))

        await _in_thread(check_and_write)
        return len(data)

    @staticmethod
    def _verify_staged(staging: PositionalFile, cipher: ChunkCipher, done: frozenset[int],
                       ) -> frozenset[int]:
        """The chunks marked done whose staged bytes still open (a crash can lose writes)."""
        good = set()
        for index in done:
            sealed = bytes(staging.read_at(cipher.sealed_size(index),
                                           HEADER_SIZE + cipher.sealed_offset(index)))
            with contextlib.suppress(FileTampered):
                cipher.open(index, sealed)
                good.add(index)
        return frozenset(good)

    @staticmethod
    def _digest_staged(staging: PositionalFile, end: int) -> str:
        staging.fsync()
        hasher = hashlib.sha256()
        offset = HEADER_SIZE
        while offset < end:
            block = staging.read_at(min(1 << 20, end - offset), offset)
            if not block:
                break
            hasher.update(block)
            offset += len(block)
        return hasher.hexdigest()

    def _store(self, staging: Path, desc: AttachmentDescriptor) -> str:
        """Decrypt the verified staging file into the encrypted file store. A chunk that
        fails here (it cannot, after the checks, unless the disk changed it) aborts the put:
        the store removes its partial file and key."""
        try:
            with open(staging, "rb") as src:
                return self._files.put(_PlainReader(decrypt_chunks(src, desc.key)), desc.size)
        except FileTampered as exc:
            raise TransferTampered(str(exc)) from None
