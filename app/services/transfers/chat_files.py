"""Chat attachments that outlive the process: send a file as a chat message, and at sign-in
resume what a restart interrupted -- and still announce it in its room, once.

``send_file(room_id, path)`` chooses the file message's event id *before* the upload starts
and keeps it with the transfer (``announce_event_id``, a column of the transfer's row in the
encrypted cache). When the upload is finalized the message is queued in the chat outbox
under that id, then the id is cleared from the row. ``resume_pending()`` (once per sign-in,
in the background):

1. queues the file message of every finished upload still holding its id (the process
   stopped between finalize and queueing);
2. resumes every unfinished transfer of this device (``TransferEngine.resume_pending``):
   an upload asks the server which chunks it holds and sends only the others; an upload
   from memory ends as failed (``source_gone``: the bytes are gone with the process); a
   download re-checks its staging file and lands in the encrypted file store;
3. queues the file message of each upload it finished, as in 1.

Exactly once: the chat does not queue a file message whose event id it already holds
(``ChatService.send_attachment(event_id=...)``) and the outbox posts each event id once, so
a crash after queueing but before clearing the id only queues nothing the next time.

Who listens: ``resuming`` is emitted, before anything resumes, with the transfers about to
go on (id, direction, room, name as :class:`~app.core.phi.Phi`), so that the chat view shows
them in its transfer panel; their progress then comes on the engine's ``progress`` signal like
any other transfer's. Kiosk sessions keep their cache in memory only: nothing is left to
resume.
"""

from __future__ import annotations

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
from app.storage.transfers import UPLOAD

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


class ChatFiles:
    resuming = Signal(object)  # tuple[ResumingTransfer, ...], before they resume
    announce_failed = Signal(object)  # (transfer id, the SafeConsultError: user_message)

    def __init__(self, engine: TransferEngine, chat: AttachmentSender) -> None:
        self.engine = engine
        self._chat = chat

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
        """Announce finished uploads, resume the unfinished transfers, announce those that
        finish. Errors are in the results (and on ``announce_failed``), not raised."""
        await self._announce_finished()
        pending = tuple(
            ResumingTransfer(r.transfer_id, r.direction, r.room_id,
                             r.name if r.name is not None else Phi(""))
            for r in self.engine.pending() if not self.engine.running(r.transfer_id))
        if pending:
            self.resuming.emit(pending)
        results = await self.engine.resume_pending()
        for result in results:
            if result.direction == UPLOAD and result.descriptor is not None:
                event_id = self.engine.announce_event_id(result.transfer_id)
                if event_id is not None:
                    await self._try_announce(result.transfer_id, result.descriptor, event_id)
        return results

    async def _announce_finished(self) -> None:
        for record in self.engine.to_announce():
            if record.descriptor is None or record.announce_event_id is None:
                continue
            await self._try_announce(record.transfer_id, parse_descriptor(record.descriptor),
                                     record.announce_event_id)

    async def _try_announce(self, transfer_id: str, descriptor: AttachmentDescriptor,
                            event_id: str) -> None:
        try:
            await self._announce(transfer_id, descriptor, event_id)
        except SafeConsultError as exc:
            # Kept: tried again at the next sign-in (e.g. the room's state is not back yet).
            log.warning("file message of a resumed upload not queued (%s)", type(exc).__name__)
            self.announce_failed.emit((transfer_id, exc))

    async def _announce(self, transfer_id: str, descriptor: AttachmentDescriptor,
                        event_id: str) -> str:
        sent = await self._chat.send_attachment(descriptor.room_id, descriptor,
                                                event_id=event_id)
        self.engine.announced(transfer_id)
        return sent
