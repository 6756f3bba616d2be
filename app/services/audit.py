"""The one client audit call (DESIGN property 7): :meth:`AuditService.record`.

Every part of the client that does something security-relevant calls ``record`` -- lock and
unlock, export, print, screen share, break-glass, a rebuilt cache, a verified device. The
call is synchronous and local: the entry is sealed (hash-chained, signed with the device
identity) and committed to the encrypted cache before ``record`` returns, so it survives
being offline, a crash or a power cut. A background loop then uploads the queue to
``POST /v1/audit/events`` in order, one entry at a time, and drops each entry only after the
server's receipt.

Delivery is at-least-once: if the process dies after the server stored an entry but before
the receipt was committed locally, the entry is sent again at the next start. The server
entry carries ``device_seq`` (and the entry's hash) in its detail, so an auditor matches
duplicates and sees gaps. Entries are sent strictly in order: an entry the server keeps
refusing holds back the ones after it (visible as :attr:`AuditService.pending`), rather
than leaving a gap.

``record`` must be called on the event loop's thread (the cache connection is not shared
between threads).

A wipe erases the cache that holds the queue. So before erasing, the session takes the queue
out (:meth:`AuditService.take_for_wipe`: the signed entries and the chain's head, in memory
only -- identifiers and codes, no PHI), erases, then sends them with
:func:`send_final_entries` (the server accepts a device's own chain entries on its key
proof alone while a wipe order for it is pending) and acknowledges the order with the head,
signed (docs/protocol.md, "Device status and orders"). What could not be sent shows as a
gap up to that head in the server's check of the device's chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.core.audit_queue import (
    AuditEntry,
    ChainHead,
    ChainReport,
    Detail,
    seal,
    validate,
    verify_chain,
)
from app.core.errors import SafeConsultError, ServerError
from app.crypto.identity import verify_ed25519
from app.net import audit_api
from app.net.transport import Transport
from app.storage.audit_queue import AuditQueueRepository
from app.storage.cache import Cache
from app.storage.errors import CacheError

log = logging.getLogger(__name__)

Signer = Callable[[bytes], str]
"""Signs bytes with the device identity; returns the unpadded base64 signature."""


@dataclass(frozen=True)
class FinalEntries:
    """A device's queue taken out of its cache just before a wipe: the entries the server
    does not have yet, in order, and the chain's head (the last entry ever appended)."""

    entries: tuple[AuditEntry, ...]
    head: ChainHead


class AuditService:
    def __init__(
        self, cache: Cache, sign: Signer, *, device_id: str, transport: Transport | None = None,
        clock: Callable[[], float] = time.time, min_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0, on_contact: Callable[[], None] | None = None,
    ) -> None:
        self._cache = cache
        self._queue = AuditQueueRepository(cache)
        self._sign = sign
        self.device_id = device_id
        # Settable: the session hands over a new transport after signing in again; entries
        # queued meanwhile go out on it.
        self.transport = transport
        self._clock = clock
        self._min_backoff, self._max_backoff = min_backoff_s, max_backoff_s
        self._backoff = min_backoff_s
        self._on_contact = on_contact
        self._upload_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.uploaded = 0  # entries the server acknowledged in this process
        self.last_error = ""  # class name of the last upload failure, "" after a success

    # -- the one call ------------------------------------------------------------------

    def record(
        self, action: str, *, object_type: str | None = None, object_id: str | None = None,
        outcome: str = "ok", detail: Detail | None = None,
    ) -> AuditEntry:
        """Seal and store one entry, then wake the uploader. Identifiers and codes only: no
        patient names, no free text (``detail`` values are at most 128 characters).

        Raises :class:`app.core.audit_queue.AuditEntryError` for an entry the server would
        refuse (unknown action, too many or too long fields): a programming error, caught
        here rather than as an upload that fails forever.
        """
        clean = validate(action, object_type, object_id, outcome, detail)
        if self._cache.conn is None:
            # Signed out or wiped: there is no device log to append to. Loud, because an
            # audit entry silently lost is worse than a failed action.
            raise CacheError("the audit log is closed (no session)")
        ts_ms = int(self._clock() * 1000)

        def make(device_seq: int, prev_hash: str) -> AuditEntry:
            return seal(AuditEntry(self.device_id, device_seq, ts_ms, action, object_type,
                                   object_id, outcome, clean, prev_hash), self._sign)

        entry = self._queue.append(make)
        log.info("audit recorded", extra={"event": "audit_recorded", "action": action,
                                          "device_seq": entry.device_seq})
        self._wake.set()
        return entry

    # -- checking ------------------------------------------------------------------------

    def verify(self, public_key_b64: str) -> ChainReport:
        """Check the entries still on this device against the device's public key."""
        return verify_chain(
            self._queue.pending(limit=-1), anchor=self._queue.anchor(), head=self._queue.head(),
            verify_signature=lambda msg, sig: verify_ed25519(public_key_b64, msg, sig),
            device_id=self.device_id,
        )

    @property
    def pending(self) -> int:
        return self._queue.count()

    # -- upload --------------------------------------------------------------------------

    async def flush(self) -> int:
        """Upload the queue in order until it is empty or a request fails; returns how many
        entries the server acknowledged. Failures are logged (by class) and end the pass:
        the loop retries later, the entries stay queued."""
        async with self._upload_lock:
            sent = 0
            while self.transport is not None:
                rows = self._queue.pending(limit=50)
                if not rows:
                    break
                for row in rows:
                    try:
                        entry = AuditEntry.from_bytes(row.payload)
                    except ValueError:
                        self.last_error = "unreadable_entry"
                        log.error("audit entry unreadable; upload held", extra={
                            "event": "audit_upload_held", "device_seq": row.seq})
                        return sent
                    try:
                        await audit_api.record_client_event(
                            self.transport, entry.action, object_type=entry.object_type,
                            object_id=entry.object_id, outcome=entry.outcome,
                            detail=entry.server_detail())
                    except SafeConsultError as exc:
                        self._failed(exc, row.seq)
                        return sent
                    # The server has it: drop it now, entry by entry, so a crash re-sends
                    # at most this one.
                    self._queue.ack(row.seq)
                    sent += 1
                    self.uploaded += 1
                    self.last_error = ""
                    if self._on_contact is not None:
                        self._on_contact()
            return sent

    def _failed(self, exc: SafeConsultError, seq: int) -> None:
        self.last_error = (exc.code if isinstance(exc, ServerError) else
                           exc.__class__.__name__)
        level = logging.ERROR if isinstance(exc, ServerError) and exc.status == 422 else (
            logging.INFO)
        log.log(level, "audit upload failed", extra={
            "event": "audit_upload_failed", "device_seq": seq, "reason_code": self.last_error})

    def start(self) -> None:
        """Run the upload loop (idempotent). It wakes on :meth:`record` and :meth:`kick`,
        and after a failure retries with exponential backoff (jittered, capped)."""
        if self._task is None or self._task.done():
            self._wake.set()  # send what an earlier session left queued
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def kick(self) -> None:
        """The server is reachable again (e.g. the session just talked to it): retry now."""
        self._backoff = self._min_backoff
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except SafeConsultError as exc:  # e.g. the cache itself failed: retry later
                self.last_error = exc.__class__.__name__
            if self.last_error and self.pending:
                # Jitter spreads the retries of many workstations after an outage.
                delay = self._backoff * random.uniform(0.8, 1.2)  # noqa: S311 -- not security
                self._backoff = min(self._backoff * 2, self._max_backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                self._wake.set()
            else:
                self._backoff = self._min_backoff

    # -- the end of the chain: wipe ---------------------------------------------------------

    async def take_for_wipe(self) -> FinalEntries:
        """Stop uploading and return what is still queued, with the head, for a wipe about
        to erase the cache. An upload cut short here may have reached the server: sending
        it again is harmless (the server answers a repeated ``device_seq`` with the stored
        entry). A row that cannot be read ends the list there (the head still names it,
        so the server reports it missing rather than nothing)."""
        await self.aclose()
        async with self._upload_lock:  # a flush() called from elsewhere finishes first
            entries: list[AuditEntry] = []
            for row in self._queue.pending(limit=-1):
                try:
                    entries.append(AuditEntry.from_bytes(row.payload))
                except ValueError:
                    break
            return FinalEntries(tuple(entries), self._queue.head())

    async def aclose(self) -> None:
        """Stop the loop. Queued entries stay in the cache for the next session."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def send_final_entries(
    transport: Transport, entries: Sequence[AuditEntry], *, budget_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Upload ``entries`` (from :meth:`AuditService.take_for_wipe`) in order until one fails
    or ``budget_s`` has passed; returns how many the server acknowledged. The data is
    already erased when this runs: the budget only bounds how long the wipe's
    acknowledgement waits."""
    deadline = clock() + budget_s
    sent = 0
    for entry in entries:
        if clock() >= deadline:
            log.warning("audit final upload cut short", extra={
                "event": "audit_final_upload", "count": sent, "device_seq": entry.device_seq})
            break
        try:
            await audit_api.record_client_event(
                transport, entry.action, object_type=entry.object_type,
                object_id=entry.object_id, outcome=entry.outcome,
                detail=entry.server_detail())
        except SafeConsultError as exc:
            log.warning("audit final upload failed", extra={
                "event": "audit_final_upload", "count": sent, "device_seq": entry.device_seq,
                "reason_code": exc.code if isinstance(exc, ServerError) else
                exc.__class__.__name__})
            break
        sent += 1
    return sent
