"""Secure chat, sending (docs/e2ee.md, "Sending and the offline outbox"): a mixin of
:class:`app.services.chat.ChatService`. A message (text, file, edit, recall or another room
event) is queued in the outbox with its local echo -- encrypted at once when that needs no
request -- in one commit that does not wait for the disk, then flushed: to-device room keys
first, then the stored ciphertext under its client-chosen event id, exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.core.chat import (
    ENCRYPTED_EVENT,
    MESSAGE_TYPE,
    ChatMessage,
)
from app.core.errors import ConnectionFailed, SafeConsultError, ServerError
from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.crypto.machine import RoomKeyShare
from app.crypto.messages import OutgoingToDevice
from app.net import relay_api
from app.services import chat_content
from app.services.chat_content import (
    Attachment,
    Edit,
    Recall,
    Text,
    new_event_id,
    now_ms,
)
from app.services.transfers.descriptor import (
    AttachmentDescriptor,
)

log = logging.getLogger("app.services.chat")
_now_ms = now_ms
ATTACHMENT_STATE_KEY = "attachment:"  # + event id (ChatService.ATTACHMENT_KEY)
ROOM_EVENT_STATE_KEY = "room_event:"  # + a caller-chosen room event id, once queued

# Refusals after which a queued message can never be accepted: it leaves the outbox and the
# user is told (send_failed). Anything else (5xx, rate limits, the network) is retried.
PERMANENT_REFUSALS = frozenset({
    "not_member", "forbidden", "grant_expired", "event_id_conflict", "malformed", "too_large",
})


@dataclass(frozen=True, slots=True)
class SendFailed:
    room_id: str
    event_id: str
    code: str  # the relay's refusal code
    user_message: str


class ChatSending:
    """Queueing, encrypting and posting (mixed into ChatService, which sets up the state)."""

    # Provided by ChatService (see its __init__).
    cache: Any
    state: Any
    outbox: Any
    messages_repo: Any
    machine: Any
    store: Any
    device: Any
    user_id: str
    recall_window_ms: int
    _session: Any
    _lock: asyncio.Lock

    async def send_text(self, room_id: str, text: str, *, reply_to: str | None = None,
                        urgent: bool = False) -> str:
        """Queue ``text`` (kept encrypted in the cache) and try to send it now. Returns its
        event id. Offline, it stays queued and goes out exactly once when the relay is back.
        ``reply_to``: the event id of the message this one answers."""
        self._check_joined(room_id)
        event_id = new_event_id()
        now = _now_ms()
        body = Phi(text)
        content = Text(body, reply_to, urgent)
        chat_content.parse(chat_content.to_wire(content))  # refuse here what receivers would
        async with self._lock:
            with self.cache.write(durable=False):
                self._queue_content(room_id, event_id, content)
                self.messages_repo.insert(
                    CachedMessage(room_id, event_id, self.user_id, now, body))
                if reply_to is not None or urgent:
                    self.messages_repo.set_reply(room_id, event_id, self.user_id, reply_to,
                                                 urgent=urgent)
                self.state.bump_unread(room_id, now, unread=False)
        self.message.emit(ChatMessage(room_id, event_id, self.user_id, now, body, pending=True,
                                      reply_to=reply_to, urgent=urgent))
        await self._after_queue()
        return event_id

    async def send_attachment(self, room_id: str, descriptor: AttachmentDescriptor, *,
                              event_id: str | None = None) -> str:
        """Send an uploaded file (the engine's signed descriptor) as a message of the room:
        through the outbox like a text, Megolm-encrypted. Returns its event id; the message
        shows the file's name (kept encrypted in the cache like any message).

        ``event_id``: chosen by the caller before the upload (kept with the transfer, see
        app/services/transfers/chat_files.py); a file message already queued under that id
        is not queued again -- so announcing an upload again after a crash sends it once."""
        self._check_joined(room_id)
        if descriptor.room_id != room_id or descriptor.sender_device != self.device.device_id:
            raise SafeConsultError("descriptor of another room or device")
        content = Attachment(descriptor)
        chat_content.parse(chat_content.to_wire(content))
        event_id = event_id or new_event_id()
        now = _now_ms()
        async with self._lock:
            if self.state.get(ATTACHMENT_STATE_KEY + event_id) is not None \
                    or self.messages_repo.get(event_id) is not None:
                return event_id  # queued before (this id is sent once by the outbox)
            with self.cache.write(durable=False):
                self._queue_content(room_id, event_id, content)
                self._keep_attachment(event_id, descriptor, self.device.device_id)
                self.messages_repo.insert(
                    CachedMessage(room_id, event_id, self.user_id, now, descriptor.name))
                self.state.bump_unread(room_id, now, unread=False)
        self.message.emit(ChatMessage(room_id, event_id, self.user_id, now, descriptor.name,
                                      pending=True))
        await self._after_queue()
        return event_id

    async def send_room_event(self, room_id: str, event_type: str,
                              content: dict[str, Any], *, event_id: str | None = None) -> str:
        """Encrypt ``content`` as a room event of ``event_type`` (``sc.*``, not a chat
        message) in the room's Megolm channel and send it through the outbox like a message
        (kept encrypted, sent once, in order); it is not stored as a chat message. Returns
        its event id. Receivers get it on :attr:`room_event`.

        ``event_id``: chosen by the caller before an upload (kept with the transfer, see
        app/services/transfers/chat_files.py); a room event already queued under that id is
        not queued again -- so announcing an upload again after a crash sends it once."""
        if event_type == MESSAGE_TYPE or not event_type.startswith("sc."):
            raise ValueError("room events are sc.* types other than chat messages")
        self._check_joined(room_id)
        chosen = event_id is not None
        event_id = event_id or new_event_id()
        async with self._lock:
            if chosen and self.state.get(ROOM_EVENT_STATE_KEY + event_id) is not None:
                return event_id  # queued before (this id is sent once by the outbox)
            members = self.state.members(room_id)
            await self._ensure_device_lists(members)
            missing = self.machine.missing_sessions(members)
            if missing:
                claim = await relay_api.claim_keys(self.transport, [d for _, d in missing])
                self.machine.receive_key_claim(claim)
            with self.cache.write(durable=False):
                self.outbox.settle()
                self._queue_share(self.machine.share_room_key(room_id, members))
                self.outbox.queue(room_id, event_id, Phi(""), structured=True,
                                  content=self.machine.encrypt_room_event(
                                      room_id, members, event_type, content))
                if chosen:
                    self.state.put(ROOM_EVENT_STATE_KEY + event_id, event_type)
        await self._after_queue()
        return event_id

    async def edit_message(self, room_id: str, event_id: str, text: str) -> str:
        """Replace the text of our own message ``event_id`` for everyone; returns the edit's
        event id. Only the author may edit; the latest edit (the author's order) wins."""
        self._check_joined(room_id)
        target = self._own_message(room_id, event_id)
        body = Phi(text)
        async with self._lock:
            with self.cache.write(durable=False):
                meta = self.messages_repo.meta(event_id, self.user_id)
                if meta is not None and meta.recalled_ms is not None:
                    raise SafeConsultError("message recalled",
                                           user_message="This message was recalled.")
                last = meta.edit_order if meta is not None and meta.edit_order else 0
                edit = Edit(event_id, body, max(_now_ms(), last + 1))
                chat_content.parse(chat_content.to_wire(edit))
                edit_id = new_event_id()
                self._queue_content(room_id, edit_id, edit)
                self.messages_repo.record_edit(room_id, event_id, self.user_id, body,
                                               edit.order)
                self.messages_repo.apply_changes(event_id,
                                                 recall_window_ms=self.recall_window_ms)
        self._emit_changed(target.event_id)
        await self._after_queue()
        return edit_id

    async def recall_message(self, room_id: str, event_id: str) -> str:
        """Delete our own message ``event_id`` for everyone (within the policy's recall
        window); audited. Every member's device drops its text from the cache."""
        self._check_joined(room_id)
        target = self._own_message(room_id, event_id)
        now = _now_ms()
        if now - target.ts_ms > self.recall_window_ms:
            self._audit_recall(event_id, "refused")
            raise SafeConsultError("recall window passed", user_message=(
                "This message is too old to recall."))
        recall_id = new_event_id()
        async with self._lock:
            with self.cache.write(durable=False):
                self._queue_content(room_id, recall_id, Recall(event_id))
                self.messages_repo.record_recall(room_id, event_id, self.user_id, now)
                self.messages_repo.apply_changes(event_id,
                                                 recall_window_ms=self.recall_window_ms)
        self._audit_recall(event_id, "ok")
        self._emit_changed(event_id)
        await self._after_queue()
        return recall_id

    def _audit_recall(self, event_id: str, outcome: str) -> None:
        audit = self._session.audit
        if audit is None:
            return
        try:
            audit.record("message.recall", object_type="message", object_id=event_id,
                         outcome=outcome)
        except SafeConsultError as exc:  # signed out meanwhile
            log.warning("recall not audited", extra={"event": "chat_recall_audit_failed",
                                                     "reason_code": exc.__class__.__name__})

    def _check_joined(self, room_id: str) -> None:
        if self.state.room_state(room_id) != "joined":
            raise SafeConsultError("not a member of this conversation",
                                   user_message="You are not a member of this conversation.")

    def _own_message(self, room_id: str, event_id: str) -> CachedMessage:
        target = self.messages_repo.get(event_id)
        if target is None or target.room_id != room_id or target.sender != self.user_id:
            raise SafeConsultError("not our message",
                                   user_message="Only the author can change a message.")
        return target

    def _emit_changed(self, event_id: str) -> None:
        shown = self.message_by_id(event_id)
        if shown is not None:
            self.message.emit(shown)

    def _queue_content(self, room_id: str, event_id: str, content: chat_content.Content) -> None:
        """Queue one content (inside the caller's transaction, holding ``_lock``); encrypt
        it at once when that needs no network (the usual case). Otherwise the flush does."""
        self.outbox.settle()
        members = self.state.members(room_id)
        if isinstance(content, Text) and content.reply_to is None and not content.urgent:
            body, structured = content.body, False  # plain text: the outbox as before
        else:
            body = Phi(json.dumps(chat_content.to_wire(content), separators=(",", ":")))
            structured = True
        ciphertext = (self._encrypt_now(room_id, members, body, structured=structured)
                      if self._ready_offline(members) else None)
        self.outbox.queue(room_id, event_id, body, structured=structured, content=ciphertext)

    async def _after_queue(self) -> None:
        """Send what was just queued. Queueing did not wait for the disk (it advanced the
        Megolm session too: see __init__ for what a crash does to that): once the relay has
        the message, it is safe there; if it could not be sent, it is made durable now, so
        a message written offline survives a power cut until it goes out."""
        try:
            await self.flush()
        except ConnectionFailed:
            self._durable()
            self._set_online(False)
            self.wake()  # the loop retries with backoff
        except BaseException:
            self._durable()
            raise

    def _durable(self) -> None:
        try:
            self.cache.sync()
        except SafeConsultError as exc:  # closed under us (signed out): nothing to keep
            log.warning("outbox not synced", extra={"event": "chat_outbox_sync_failed",
                                                    "reason_code": exc.__class__.__name__})

    async def flush(self) -> int:
        """Send what the outbox holds, oldest first; returns how many the relay accepted.
        Stops at the first failure that may pass (the order of a room is kept)."""
        sent = 0
        async with self._lock:
            # Keys sent ahead (the next session's) wait until after the first event: the
            # session they open is not in use yet (``release_ahead`` when it is).
            await self._send_queued_to_device(ahead=False)
            for item in self.outbox.pending():
                content = item.content
                if content is None:
                    assert item.body is not None
                    content = await self._encrypt(item.seq, item.room_id, item.body,
                                                  structured=item.structured)
                    await self._send_queued_to_device(ahead=False)  # keys before the event
                try:
                    result = await relay_api.post_event(self.transport, item.room_id,
                                                        item.event_id, ENCRYPTED_EVENT, content)
                except ConnectionFailed:
                    self.outbox.attempted(item.seq)
                    raise
                except ServerError as exc:
                    if exc.code not in PERMANENT_REFUSALS:
                        self.outbox.attempted(item.seq)
                        raise
                    self.outbox.done(item.seq)
                    log.warning("message refused", extra={"event": "chat_send_refused",
                                                          "reason_code": exc.code})
                    self.send_failed.emit(SendFailed(item.room_id, item.event_id, exc.code,
                                                     exc.user_message))
                    continue
                self.outbox.accepted(item.seq)
                sent += 1
                self.sent.emit(item.event_id)
                if result.duplicate:
                    log.info("retry deduplicated", extra={"event": "chat_send_duplicate"})
                await self._send_queued_to_device(ahead=True)
            await self._send_queued_to_device(ahead=True)  # also when no event went out
        return sent

    def _ready_offline(self, members: list[str]) -> bool:
        """Whether a message to ``members`` can be encrypted with no request: every device
        list known and an Olm session with every allowed device."""
        return (all(self.store.user_devices(u) is not None for u in members)
                and not self.machine.missing_sessions(members))

    async def _encrypt(self, seq: int, room_id: str, body: Phi[str], *,
                       structured: bool = False) -> dict[str, Any]:
        members = self.state.members(room_id)
        await self._ensure_device_lists(members)
        missing = self.machine.missing_sessions(members)
        if missing:
            claim = await relay_api.claim_keys(self.transport, [d for _, d in missing])
            refused = self.machine.receive_key_claim(claim)
            if refused:
                log.warning("claimed keys refused", extra={"event": "chat_claim_refused",
                                                           "count": len(refused)})
        with self.cache.write():
            content = self._encrypt_now(room_id, members, body, structured=structured)
            self.outbox.set_encrypted(seq, content)
            return content

    def _encrypt_now(self, room_id: str, members: list[str], body: Phi[str], *,
                     structured: bool = False) -> dict[str, Any]:
        """No I/O: the room key share, its to-device messages and the ciphertext. The caller
        holds the cache transaction and keeps the ciphertext in the outbox in it, so they
        are committed together or not at all."""
        share = self.machine.share_room_key(room_id, members)
        self._queue_share(share)
        plain = json.loads(body.reveal()) if structured else {"msgtype": "text",
                                                                "body": body.reveal()}
        content = self.machine.encrypt_room_event(room_id, members, MESSAGE_TYPE, plain)
        if share.rotated:
            log.info("room key rotated", extra={"event": "chat_room_key_rotated",
                                                "count": len(share.messages)})
        return content

    def _queue_share(self, share: RoomKeyShare) -> None:
        """Queue what a room-key share decided, in the caller's transaction."""
        if share.promoted:
            self.outbox.release_ahead()
        self._queue_to_device(share.messages)
        self._queue_to_device(share.ahead, ahead=True)

    def _queue_to_device(self, messages: Iterable[OutgoingToDevice], *,
                         ahead: bool = False) -> None:
        by_type: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        for m in messages:
            by_type.setdefault(m.type, []).append(
                (m.recipient_user, m.recipient_device, m.content))
        for type_, items in by_type.items():
            self.outbox.queue_to_device("td_" + new_event_id(), type_, items, ahead=ahead)

    async def _send_queued_to_device(self, *, ahead: bool | None = None) -> None:
        for batch in self.outbox.to_device(ahead=ahead):
            await relay_api.send_to_device(self.transport, batch.txn_id, batch.type,
                                           batch.messages)
            self.outbox.to_device_done(batch.seq)
