"""Uploads that outlive the process: send a file as a chat message, and at sign-in resume
what a restart interrupted -- and still announce it in its room, once. One place for every
kind of upload that is announced by a room event (``resume_pending``).

``send_file(room_id, path)`` chooses the file message's event id *before* the upload starts
and keeps it with the transfer (``announce_event_id``, a column of the transfer's row in the
encrypted cache). When the upload is finalized the message is queued in the chat outbox
under that id, then the id is cleared from the row.

Other kinds of upload mark their rows with a *purpose* (migration 8) and register an
:class:`Announcer` for it (``register``): a shared recording (``RECORDING``: resumable, one
``sc.recording`` event once the upload is finished) and a study share (``STUDY``: N files,
then one manifest; not resumable in general -- its de-identified copies were in memory --
so an interrupted share is ended and reported). ``resume_pending()`` (once per sign-in, in
the background):

1. ends every interrupted action of a kind that does not resume: its unfinished uploads are
   cancelled, the blobs of all its uploads (finished ones too: never announced) are deleted
   on the server (best effort, else left to its retention), its announcer records the
   action's one (failed) audit entry and its rows are settled in the same commit, and
   ``interrupted`` tells the user, once;
2. announces every finished upload still holding its id (the process stopped between
   finalize and queueing), through its kind's announcer;
3. resumes every other unfinished transfer of this device (``TransferEngine.resume_pending``):
   an upload asks the server which chunks it holds and sends only the others; an upload
   from memory ends as failed (``source_gone``: the bytes are gone with the process); a
   download re-checks its staging file and lands in the encrypted file store;
4. announces each upload it finished, as in 2; a resumable kind's upload that ended failed
   is settled with its announcer's failed entry.

Uploads of a kind nobody registered here are left as they are (a later sign-in with that
service handles them).

Exactly once: the chat does not queue an event whose caller-chosen id it already holds
(``ChatService.send_attachment(event_id=...)``, ``send_room_event(event_id=...)``) and the
outbox posts each event id once, so a crash after queueing but before clearing the id only
queues nothing the next time; an announcer settles the row and records its audit entry in
one commit.

Who listens: ``resuming`` is emitted, before anything resumes, with the transfers about to
go on (id, direction, room, name as :class:`~app.core.phi.Phi`), so that the chat view shows
them in its transfer panel; their progress then comes on the engine's ``progress`` signal like
any other transfer's. ``interrupted`` carries an :class:`Interrupted` (kind and room, no
patient data) for the notice. Kiosk sessions keep their cache in memory only: nothing is
left to resume.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Protocol

from psygnal import Signal

from app.core.errors import SafeConsultError
from app.core.phi import Phi
from app.services.chat_content import new_event_id
from app.services.transfers.descriptor import AttachmentDescriptor, parse_descriptor
from app.services.transfers.engine import TransferEngine
from app.services.transfers.progress import TransferResult
from app.storage.transfers import UPLOAD, TransferRecord

log = logging.getLogger("app.services.transfers")


class AttachmentSender(Protocol):
    async def send_attachment(self, room_id: str, descriptor: AttachmentDescriptor, *,
                              event_id: str | None = None) -> str: ...


@dataclass(frozen=True, slots=True)
class ResumingTransfer:
    transfer_id: str
    direction: str  # "upload" | "download"
    room_id: str
    name: Phi[str]


@dataclass(frozen=True, slots=True)
class Interrupted:
    """An action of uploads that a restart interrupted and that does not go on (a study
    share): its unfinished uploads were cancelled, nothing was announced. No patient data."""

    kind: str  # the uploads' purpose, e.g. "study"
    room_id: str
    event_id: str  # the announcement that was never sent
    transfer_ids: tuple[str, ...]
    files_done: int  # of its uploads, how many had finished


class Announcer(Protocol):
    """What a kind of upload (a purpose) does at sign-in; registered with
    :meth:`ChatFiles.register`."""

    resumable: bool  # its unfinished uploads go on (else an interrupted action is ended)

    async def announce(self, record: TransferRecord, descriptor: AttachmentDescriptor) -> None:
        """A finished upload (resumable kinds): send its room event under
        ``record.announce_event_id`` -- once -- and settle it (``engine.announced``) in the
        same commit as its audit entry. Raise a :class:`SafeConsultError` to keep it for the
        next sign-in."""

    def failed(self, record: TransferRecord, code: str) -> None:
        """A resumable kind's upload that ended failed after the restart: record the
        action's failed audit entry (called inside the commit that settles the row)."""

    def ongoing(self, event_id: str) -> bool:
        """Whether the action announced as ``event_id`` is still going on in this process
        (then it was not interrupted)."""

    def interrupted(self, action: Interrupted) -> None:
        """A non-resumable kind's interrupted action: record its one failed audit entry
        (called inside the commit that settles its rows)."""


class ChatFiles:
    resuming = Signal(object)  # tuple[ResumingTransfer, ...], before they resume
    announce_failed = Signal(object)  # (transfer id, the SafeConsultError: user_message)
    interrupted = Signal(object)  # Interrupted: tell the user, once

    def __init__(self, engine: TransferEngine, chat: AttachmentSender) -> None:
        self.engine = engine
        self._chat = chat
        self._announcers: dict[str, Announcer] = {}

    def register(self, purpose: str, announcer: Announcer) -> None:
        """Let ``announcer`` handle the uploads of ``purpose`` at sign-in (one per purpose;
        register before ``resume_pending`` runs)."""
        self._announcers[purpose] = announcer

    async def send_file(self, room_id: str, path: str | os.PathLike[str], *,
                        transfer_id: str | None = None) -> str:
        """Upload the file at ``path`` and send it as a file message of ``room_id``;
        returns the message's event id. Interrupted by a restart, it finishes at the next
        sign-in (``resume_pending``) and the message is sent then."""
        transfer_id = transfer_id or secrets.token_hex(16)
        event_id = new_event_id()
        descriptor = await self.engine.upload(room_id, path, transfer_id=transfer_id,
                                              announce_event_id=event_id)
        return await self._announce(transfer_id, descriptor, event_id)

    async def resume_pending(self) -> list[TransferResult]:
        """End interrupted actions that do not resume, announce finished uploads, resume the
        unfinished transfers, announce those that finish. Errors are in the results (and on
        ``announce_failed``), not raised."""
        self._end_interrupted()
        await self._announce_finished()
        pending = tuple(
            ResumingTransfer(r.transfer_id, r.direction, r.room_id,
                             r.name if r.name is not None else Phi(""))
            for r in self.engine.pending()
            if not self.engine.running(r.transfer_id) and self._resumes(r)
            and not self._ongoing(r))
        if pending:
            self.resuming.emit(pending)
        results = await self.engine.resume_pending(
            skip=lambda r: not self._resumes(r) or self._ongoing(r))
        for result in results:
            if result.direction != UPLOAD:
                continue
            record = self.engine.record(result.transfer_id)
            if record is None or record.announce_event_id is None:
                continue
            if self._ongoing(record):
                continue
            if result.descriptor is not None:
                await self._try_announce(record, result.descriptor)
            elif record.final and record.purpose is not None:
                self._settle_failed(record, result.error_code)
        return results

    def _resumes(self, record: TransferRecord) -> bool:
        """Whether the sign-in goes on with this transfer: a chat attachment or download,
        or an upload of a registered kind that resumes."""
        if record.purpose is None:
            return True
        announcer = self._announcers.get(record.purpose)
        return announcer is not None and announcer.resumable

    def _end_interrupted(self) -> None:
        groups: dict[tuple[str, str], list[TransferRecord]] = {}
        for record in self.engine.announcing():
            announcer = self._announcers.get(record.purpose or "")
            if record.purpose is None or announcer is None or announcer.resumable:
                continue
            assert record.announce_event_id is not None
            groups.setdefault((record.purpose, record.announce_event_id), []).append(record)
        for (purpose, event_id), records in groups.items():
            announcer = self._announcers[purpose]
            if announcer.ongoing(event_id) or any(self.engine.running(r.transfer_id)
                                                  for r in records):
                continue
            for record in records:
                # Its remaining uploads are stopped for good, and its finished ones will
                # never be announced: the blobs of both are deleted on the server (best
                # effort, in the background; see TransferEngine.cancel / discard).
                with contextlib.suppress(SafeConsultError):
                    if not record.final:
                        self.engine.cancel(record.transfer_id)
                    else:
                        self.engine.discard(record.transfer_id)
            action = Interrupted(purpose, records[0].room_id, event_id,
                                 tuple(r.transfer_id for r in records),
                                 sum(r.state == "done" for r in records))
            with self.engine.transaction():  # its audit entry and the settled rows: one commit
                announcer.interrupted(action)
                for record in records:
                    self.engine.announced(record.transfer_id)
            log.info("interrupted uploads ended", extra={
                "event": "uploads_interrupted", "state": purpose, "count": len(records)})
            self.interrupted.emit(action)

    def _settle_failed(self, record: TransferRecord, code: str) -> None:
        announcer = self._announcers.get(record.purpose or "")
        if announcer is None:
            return
        with self.engine.transaction():
            announcer.failed(record, code)
            self.engine.announced(record.transfer_id)

    async def _announce_finished(self) -> None:
        for record in self.engine.to_announce():
            if record.descriptor is None or record.announce_event_id is None \
                    or not self._resumes(record) or self._ongoing(record):
                continue
            await self._try_announce(record, parse_descriptor(record.descriptor))

    def _ongoing(self, record: TransferRecord) -> bool:
        """An upload whose caller in this process announces it itself (not interrupted)."""
        announcer = self._announcers.get(record.purpose or "")
        return (announcer is not None and record.announce_event_id is not None
                and announcer.ongoing(record.announce_event_id))

    async def _try_announce(self, record: TransferRecord,
                            descriptor: AttachmentDescriptor) -> None:
        assert record.announce_event_id is not None
        try:
            if record.purpose is None:
                await self._announce(record.transfer_id, descriptor, record.announce_event_id)
            else:
                await self._announcers[record.purpose].announce(record, descriptor)
        except SafeConsultError as exc:
            # Kept: tried again at the next sign-in (e.g. the room's state is not back yet).
            log.warning("announcement of a resumed upload not queued (%s)",
                        type(exc).__name__)
            self.announce_failed.emit((record.transfer_id, exc))

    async def _announce(self, transfer_id: str, descriptor: AttachmentDescriptor,
                        event_id: str) -> str:
        sent = await self._chat.send_attachment(descriptor.room_id, descriptor,
                                                event_id=event_id)
        self.engine.announced(transfer_id)
        return sent


__all__ = ["Announcer", "AttachmentSender", "ChatFiles", "Interrupted", "ResumingTransfer"]
