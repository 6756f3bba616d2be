"""Secure chat, receiving (docs/e2ee.md, "Receiving"): a mixin of
:class:`app.services.chat.ChatService`. A pushed chat text whose key is here is shown from
the push; everything else comes by sync, each batch applied in one cache transaction with its
next token (Olm state on disk before the token acknowledges its to-device messages).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from app.core.chat import (
    ENCRYPTED_EVENT,
    MEMBER_EVENT,
    MESSAGE_TYPE,
    UNREADABLE_EVENT,
    ChatMessage,
    EventState,
    Notification,
    RoomEvent,
    SyncBatch,
    UndecryptedEvent,
)
from app.core.errors import ConnectionFailed, SafeConsultError
from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.crypto import errors as crypto_errors
from app.crypto.errors import E2EEError, MalformedPayload, Misdirected, UnknownSenderDevice
from app.crypto.machine import DecryptedToDevice
from app.crypto.megolm import MissingRoomKey
from app.crypto.messages import ENCRYPTED, VERIFICATION_START
from app.crypto.room_keys import KeyRequestAnswer, RoomKeyReceived
from app.crypto.sas import SasState
from app.crypto.verification import VerificationUpdate
from app.net import relay_api
from app.net.auth_api import ProtocolError
from app.services import chat_content
from app.services.chat_content import (
    Attachment,
    Disappear,
    Edit,
    MalformedContent,
    NotTheSender,
    Recall,
    RecallTooLate,
    Text,
    now_ms,
)
from app.storage.chat_state import SYNC_TOKEN

log = logging.getLogger("app.services.chat")
_now_ms = now_ms

MISSING_KEY = "missing_room_key"
WAITING_TEXT = "Waiting for this message's key from the sender's device."
MEMBERSHIP_STATE = {"join": "joined", "invite": "invited", "leave": "left", "remove": "left",
                    "expire": "left"}
# After a pushed event was shown, the sync that moves the token past it runs this much later
# (coalescing a burst of pushes into one sync, off the path of the next message).
PUSH_SYNC_DELAY_S = 1.0
# Pushed events whose room key had not arrived, kept in memory (at most this many) to be
# opened as soon as a sync brings the key -- usually the very sync the key's push started.
HELD_PUSHES = 100


class _LeaveToSync(Exception):
    """A pushed event the fast path does not handle: roll back, let the sync do it."""


@dataclass(frozen=True, slots=True)
class RoomEventReceived:
    """A decrypted room event that is not a chat message (``sc.study.share``, ``sc.coview``):
    for the services that own its type. ``sender_device`` is the Megolm key's creator,
    checked against the envelope; ``content`` is the plaintext (may hold patient data)."""

    room_id: str
    event_id: str
    sender: str
    sender_device: str
    event_type: str
    content: Phi[dict[str, Any]] = field(repr=False)
    origin_ms: int = 0


@dataclass
class _Applied:
    """What one sync batch did, announced after its transaction committed."""

    shown: list[ChatMessage] = field(default_factory=list)
    changed: list[ChatMessage] = field(default_factory=list)  # edited or recalled
    # the newest message of others per room: (ts_ms, event_id), to acknowledge as delivered
    delivered: dict[str, tuple[int, str]] = field(default_factory=dict)
    receipt_rooms: set[str] = field(default_factory=set)  # rooms whose receipts moved
    presence: set[str] = field(default_factory=set)  # users whose status changed
    settings: set[str] = field(default_factory=set)  # rooms whose disappearing setting moved
    undecryptable: list[UndecryptedEvent] = field(default_factory=list)
    missing: list[tuple[MissingRoomKey, str]] = field(default_factory=list)  # (key, sender)
    to_device: list[Any] = field(default_factory=list)
    rooms_changed: bool = False
    keys_used: bool = False
    unknown_senders: set[str] = field(default_factory=set)
    # key requests we may answer once an Olm session with the requester exists
    unanswered: list[Any] = field(default_factory=list)
    room_events: list[RoomEventReceived] = field(default_factory=list)  # not chat messages


class ChatReceiving:
    """Push and sync (mixed into ChatService, which sets up the state)."""

    # Provided by ChatService (see its __init__).
    cache: Any
    state: Any
    outbox: Any
    messages_repo: Any
    machine: Any
    store: Any
    user_id: str
    sync_limit: int
    recall_window_ms: int
    _lock: asyncio.Lock
    _sync_lock: asyncio.Lock
    _closing: bool
    _pushed: set[asyncio.Task]
    _held: dict[str, RoomEvent]
    _sync_later: asyncio.TimerHandle | None
    _pending_receipts: dict[tuple[str, str], str]
    _receipts_sent_at: float
    _keys_low: bool
    _dirty_users: set[str]

    def _take_pushed(self, data: dict[str, Any]) -> bool:
        """A pushed room event of a joined room: show it now, without waiting for a sync
        round trip (docs/e2ee.md, "Receiving"). False: leave it to the sync."""
        try:
            event = relay_api.parse_event(data)
        except (ProtocolError, ValueError, TypeError, KeyError):
            return False
        if self._closing or self.state.room_state(event.room_id) != "joined":
            return False
        if not self._lock.locked() and not self._pushed:
            # Nothing else holds the machine or waits with an earlier push: apply it now,
            # in this step of the loop (the work has no await, so it is not interleaved).
            self._apply_pushed_now(event)
            return True
        task = asyncio.get_running_loop().create_task(self._apply_pushed(event))
        self._pushed.add(task)
        task.add_done_callback(self._pushed.discard)
        return True

    async def _apply_pushed(self, event: RoomEvent) -> None:
        async with self._lock:
            self._apply_pushed_now(event)

    def _apply_pushed_now(self, event: RoomEvent) -> None:
        """Decrypt and store one pushed event, then announce it (the caller holds ``_lock``
        or knows it free). Only a chat text whose key is here takes this path; anything else
        (a missing key, a rejection, an edit, another kind of event) is rolled back and left
        to the sync, which handles every case. The sync token does not move: the next sync
        brings the event again, and it is dropped as known (the message row and the Megolm
        index's event id are committed here first)."""
        applied = _Applied()
        try:
            if self._closing or self.messages_repo.get(event.event_id) is not None:
                return  # ours (the local echo) or synced meanwhile
            if self.cache.in_transaction:  # never join someone else's transaction
                self.wake()
                return
            try:
                with self.cache.write(durable=False):
                    if not self._receive_pushed(event, applied):
                        raise _LeaveToSync
            except _LeaveToSync:
                self.wake()
                return
            self._announce(applied)
            for room_id, (_, event_id) in applied.delivered.items():
                self._pending_receipts[(room_id, "delivered")] = event_id
        except SafeConsultError as exc:  # a busy or closed cache: the sync tries again
            log.info("pushed event left to sync", extra={
                "event": "chat_push_apply_failed", "reason_code": exc.__class__.__name__})
            self.wake()
            return
        except Exception as exc:  # a bug (or a failing observer) must not end the push loop
            log.error("pushed event crashed", extra={
                "event": "chat_push_apply_failed", "reason_code": exc.__class__.__name__})
            self.wake()
            return
        # The token catches up soon, not now: the event is shown and stored already.
        if self._sync_later is None and not self._closing:
            self._sync_later = asyncio.get_running_loop().call_later(
                PUSH_SYNC_DELAY_S, self._sync_due)

    def _sync_due(self) -> None:
        self._sync_later = None
        self.wake()

    def _receive_pushed(self, event: RoomEvent, applied: _Applied) -> bool:
        try:
            result = self.machine.decrypt_room_event(event.room_id, event.event_id,
                                                     event.content)
        except E2EEError:
            return False  # the sync keeps it as rejected, and says why
        if isinstance(result, MissingRoomKey):
            # The key is on its way (sent before the event): hold the event for the sync
            # that brings it, which then needs no second round for the event itself.
            self._held.pop(event.event_id, None)
            self._held[event.event_id] = event
            while len(self._held) > HELD_PUSHES:
                del self._held[next(iter(self._held))]
            return False
        if (result.type != MESSAGE_TYPE
                or (result.sender_user, result.sender_device) != (event.sender,
                                                                   event.sender_device)):
            return False
        try:
            content = chat_content.parse(result.content.reveal())
        except MalformedContent:
            return False
        if type(content) is not Text:
            return False
        self._receive_text(event, result.sender_user, content, applied)
        return True

    async def sync_once(self) -> int:
        """Fetch and apply everything new; returns how many messages were shown."""
        shown = 0
        async with self._sync_lock:
            while True:
                # The fetch does not hold the machine: a pushed message or a send meanwhile
                # does not wait for this round trip. Only this task moves the token.
                batch = await relay_api.sync(self.transport, self.state.get(SYNC_TOKEN),
                                             limit=self.sync_limit)
                async with self._lock:
                    await self._learn_senders(batch)
                    # Only Olm state must be on disk before the token acknowledges its
                    # to-device messages (the relay then deletes them). Room events alone
                    # may be lost by a power cut with the token that follows them: the
                    # relay sends them again.
                    with self.cache.write(durable=bool(batch.to_device)):
                        self.outbox.settle()  # rides on a commit that happens anyway
                        applied = self._apply(batch)
                        self.state.put(SYNC_TOKEN, batch.next_token)
                    shown += len(applied.shown)
                    self._announce(applied)
                    await self._after(applied)
                    for room_id, (_, event_id) in applied.delivered.items():
                        self._pending_receipts[(room_id, "delivered")] = event_id
                if not batch.limited:
                    break
        if time.monotonic() - self._receipts_sent_at >= self.receipt_interval_s:
            try:  # otherwise the loop sends them when the interval ends
                await self.send_receipts()
            except ConnectionFailed:
                self._set_online(False)
                self.wake()
        return shown

    async def _learn_senders(self, batch: SyncBatch) -> None:
        """Before the batch's transaction (which does no I/O): fetch the device lists of
        to-device senders we cannot place, so their messages decrypt instead of failing."""
        stale: set[str] = set()
        for msg in batch.to_device:
            if msg.type == VERIFICATION_START:
                # A colleague's device we have not seen yet asks to verify: learn it first.
                if msg.sender_device not in self.machine.devices(msg.sender):
                    stale.add(msg.sender)
                continue
            if msg.type != ENCRYPTED:
                continue
            sender_key = msg.content.get("sender_key")
            record = self.store.device_by_curve(sender_key) if isinstance(sender_key, str) else None
            if record is None or (record.user_id, record.device_id) != (msg.sender,
                                                                          msg.sender_device):
                stale.add(msg.sender)
        for event in batch.events:
            if event.type == MEMBER_EVENT and event.content.get("membership") == "join":
                subject = event.content.get("user_id")
                if isinstance(subject, str) and self.store.user_devices(subject) is None:
                    stale.add(subject)
        if stale:
            await self.refresh_device_lists(sorted(stale))

    def _apply(self, batch: SyncBatch) -> _Applied:
        applied = _Applied()
        # Keys first: a room key and the event it opens often arrive in the same batch.
        for msg in batch.to_device:
            self._apply_to_device(msg, applied)
        for event in batch.events:
            try:
                if event.type == MEMBER_EVENT:
                    self._apply_membership(event, applied)
                elif event.type == ENCRYPTED_EVENT:
                    if self.messages_repo.get(event.event_id) is None:
                        self._decrypt(event, applied)
                    # else: a message stored already (shown from its push, or our own):
                    # decrypting it again would find the same event id at its index, and
                    # change nothing
                elif event.type == UNREADABLE_EVENT:
                    self._reject(event, MalformedPayload("unreadable timeline entry"), applied)
            except (ProtocolError, ValueError, TypeError, KeyError) as exc:
                # Hostile or broken content must not stop the stream: keep it, say why.
                self._reject(event, MalformedPayload(exc.__class__.__name__), applied)
        return applied

    def _apply_to_device(self, msg: Any, applied: _Applied) -> None:
        if msg.type == ENCRYPTED and msg.content.get("type") == 0:
            applied.keys_used = True  # a pre-key message spends one of our one-time keys
        try:
            result = self.machine.receive_to_device(msg.sender, msg.sender_device, msg.type,
                                                    msg.content)
        except UnknownSenderDevice:
            applied.unknown_senders.add(msg.sender)
            log.warning("to-device from unknown device", extra={
                "event": "chat_to_device_rejected", "reason_code": "UnknownSenderDevice"})
            return
        except E2EEError as exc:
            log.warning("to-device rejected", extra={"event": "chat_to_device_rejected",
                                                     "reason_code": exc.__class__.__name__})
            return
        if isinstance(result, RoomKeyReceived):
            for event in self.state.waiting_for(result.session_id):
                if event.room_id == result.room_id:
                    self._decrypt(event, applied)
            for event_id, event in list(self._held.items()):
                if (event.room_id == result.room_id
                        and event.content.get("session_id") == result.session_id):
                    del self._held[event_id]  # its batch may bring it too: then it is known
                    if self.messages_repo.get(event_id) is None:
                        self._decrypt(event, applied)
        elif isinstance(result, KeyRequestAnswer):
            self._queue_to_device(result.outgoing)
            if result.outcome == "no_session":
                applied.unanswered.append(msg)
        elif isinstance(result, VerificationUpdate):
            if not result.verification.starter and result.verification.state is SasState.ACCEPTED:
                # A new incoming request: its accept waits for the user to say yes
                # (app/services/verification.py sends it, or a cancel).
                applied.to_device.append(result)
                return
            self._queue_to_device(result.outgoing)
            applied.to_device.append(result)
        elif isinstance(result, DecryptedToDevice):
            if result.type == chat_content.RECEIPT_TYPE:
                self._receive_receipt(result, applied)
            elif result.type == chat_content.PRESENCE_TYPE:
                self._receive_presence(result, applied)
            else:
                applied.to_device.append(result)

    def _apply_membership(self, event: RoomEvent, applied: _Applied) -> None:
        subject = event.content.get("user_id")
        state = MEMBERSHIP_STATE.get(str(event.content.get("membership")))
        if not isinstance(subject, str) or state is None:
            return
        self.state.set_member(event.room_id, subject, state)
        if subject == self.user_id:
            self.state.set_room(event.room_id, state)
        applied.rooms_changed = True

    def _decrypt(self, event: RoomEvent, applied: _Applied) -> None:
        try:
            result = self.machine.decrypt_room_event(event.room_id, event.event_id,
                                                     event.content)
        except E2EEError as exc:
            self._reject(event, exc, applied)
            return
        if isinstance(result, MissingRoomKey):
            if self.state.keep_undecrypted(event, EventState.WAITING_FOR_KEY, MISSING_KEY,
                                           result.session_id):
                applied.undecryptable.append(UndecryptedEvent(
                    event.room_id, event.event_id, event.sender, event.origin_ms,
                    EventState.WAITING_FOR_KEY, MISSING_KEY, WAITING_TEXT))
            applied.missing.append((result, event.sender))
            return
        if (result.sender_user, result.sender_device) != (event.sender, event.sender_device):
            # The key names its creator; an envelope claiming someone else is a forgery.
            self._reject(event, Misdirected("sender does not match the room key"), applied)
            return
        if result.type != MESSAGE_TYPE:
            self.state.forget_undecrypted(event.event_id)
            applied.room_events.append(RoomEventReceived(
                event.room_id, event.event_id, result.sender_user, result.sender_device,
                result.type, result.content, event.origin_ms))
            return  # another kind of room event: not a chat message
        try:
            content = chat_content.parse(result.content.reveal())
        except MalformedContent as exc:
            self._reject(event, exc, applied)
            return
        sender = result.sender_user
        if isinstance(content, Text):
            self._receive_text(event, sender, content, applied)
        elif isinstance(content, Attachment):
            desc = content.descriptor
            if (desc.room_id, desc.sender_user, desc.sender_device) != (
                    event.room_id, sender, result.sender_device):
                self._reject(event, Misdirected("attachment of another room or sender"),
                             applied)
                return
            self._keep_attachment(event.event_id, desc, result.sender_device)
            self._receive_text(event, sender, Text(desc.name), applied)
        elif isinstance(content, Disappear):
            self.state.forget_undecrypted(event.event_id)
            if self._set_disappear(event.room_id, content.after_s, event.origin_ms):
                applied.settings.add(event.room_id)
        elif isinstance(content, Edit | Recall):
            target = self.messages_repo.get(content.target)
            if target is not None and (target.sender != sender
                                       or target.room_id != event.room_id):
                self._reject(event, NotTheSender("change of someone else's message"), applied)
                return
            if isinstance(content, Edit):
                current = self.messages_repo.record_edit(event.room_id, content.target, sender,
                                                         content.body, content.order)
            else:
                if target is not None and event.origin_ms - target.ts_ms > self.recall_window_ms:
                    self._reject(event, RecallTooLate("recall after the window"), applied)
                    return
                self.messages_repo.record_recall(event.room_id, content.target, sender,
                                                 event.origin_ms)
                current = True
            self.state.forget_undecrypted(event.event_id)
            if current and target is not None:
                self.messages_repo.apply_changes(content.target,
                                                 recall_window_ms=self.recall_window_ms)
                shown = self.message_by_id(content.target)
                if shown is not None:
                    applied.changed.append(shown)

    def _receive_text(self, event: RoomEvent, sender: str, content: Text,
                      applied: _Applied) -> None:
        new = self.messages_repo.insert(
            CachedMessage(event.room_id, event.event_id, sender, event.origin_ms, content.body))
        self.state.forget_undecrypted(event.event_id)
        if not new:
            return
        # An edit or recall may have come first (this message waited for its key): one
        # lookup, and the usual case (none) costs nothing more.
        earlier = self.messages_repo.meta(event.event_id, sender)
        if content.reply_to is not None or content.urgent:
            self.messages_repo.set_reply(event.room_id, event.event_id, sender,
                                         content.reply_to, urgent=content.urgent)
        self.state.bump_unread(event.room_id, event.origin_ms, unread=sender != self.user_id)
        if sender != self.user_id and event.origin_ms >= applied.delivered.get(
                event.room_id, (-1, ""))[0]:
            applied.delivered[event.room_id] = (event.origin_ms, event.event_id)
        if earlier is None:
            applied.shown.append(ChatMessage(event.room_id, event.event_id, sender,
                                             event.origin_ms, content.body,
                                             reply_to=content.reply_to, urgent=content.urgent))
            return
        self.messages_repo.apply_changes(event.event_id, recall_window_ms=self.recall_window_ms)
        shown = self.message_by_id(event.event_id)
        if shown is not None:
            applied.shown.append(shown)

    def _reject(self, event: RoomEvent, exc: E2EEError, applied: _Applied) -> None:
        reason = exc.__class__.__name__
        session_id = event.content.get("session_id")
        if self.state.keep_undecrypted(event, EventState.REJECTED, reason,
                                       session_id if isinstance(session_id, str) else None):
            log.warning("room event rejected", extra={"event": "chat_event_rejected",
                                                      "reason_code": reason})
            applied.undecryptable.append(UndecryptedEvent(
                event.room_id, event.event_id, event.sender, event.origin_ms,
                EventState.REJECTED, reason, exc.user_message))

    def _announce(self, applied: _Applied) -> None:
        for message in (*applied.shown, *applied.changed):
            self.message.emit(message)
        quiet = self.presence == "dnd"
        for message in applied.shown:
            if message.sender != self.user_id and (message.urgent or not quiet):
                self.notify.emit(Notification(message.room_id, message.event_id,
                                              message.sender, message.urgent))
        for user_id in sorted(applied.presence):
            self.presence_changed.emit(user_id)
        for room_id in sorted(applied.settings):
            self.room_settings_changed.emit(room_id)
        for event in applied.undecryptable:
            self.undecryptable.emit(event)
        for item in applied.to_device:
            self.to_device.emit(item)
        for room_event in applied.room_events:
            self.room_event.emit(room_event)
        for room_id in sorted(applied.receipt_rooms):
            self.receipts_changed.emit(room_id)
        if applied.rooms_changed or applied.shown or applied.changed:
            self.rooms_changed.emit()

    async def _after(self, applied: _Applied) -> None:
        """Network work a batch asked for, after it is safely stored."""
        if applied.keys_used:
            self._keys_low = True
        wanted = [(m, s) for m, s in applied.missing if not self.state.requested(m.event_id)]
        # The request goes to the creator's device as *we* know it: learn it first.
        await self._ensure_device_lists({sender for _, sender in wanted})
        for missing, _ in wanted:
            with self.cache.write():
                requests = self.machine.request_room_key(missing)
                self._queue_to_device(requests)
                if requests:
                    self.state.mark_requested(missing.event_id, _now_ms())
        if applied.unknown_senders:
            self._dirty_users.update(applied.unknown_senders)
        if applied.unanswered:
            await self._answer_after_claim(applied.unanswered)
        await self._send_queued_to_device()

    async def _answer_after_claim(self, requests: list[Any]) -> None:
        """Key requests from devices we have no Olm session with: claim a key for each
        (the machine noted whom to expect), then handle the requests again. Held in memory
        only: a lost one is asked again by its sender."""
        devices = sorted({msg.sender_device for msg in requests})
        claim = await relay_api.claim_keys(self.transport, devices)
        self.machine.receive_key_claim(claim)
        with self.cache.write():
            for msg in requests:
                try:
                    answer = self.machine.receive_to_device(msg.sender, msg.sender_device,
                                                            msg.type, msg.content)
                except E2EEError as exc:
                    log.info("key request dropped", extra={
                        "event": "chat_key_request", "reason_code": exc.__class__.__name__})
                    continue
                if isinstance(answer, KeyRequestAnswer):
                    self._queue_to_device(answer.outgoing)
        await self._send_queued_to_device()


def _reason_texts() -> dict[str, str]:
    """Reason (an error class name) -> the text a user reads about a kept event."""
    texts = {MISSING_KEY: WAITING_TEXT}
    for module in (crypto_errors, chat_content):
        for name in dir(module):
            kind = getattr(module, name)
            if isinstance(kind, type) and issubclass(kind, E2EEError):
                texts[name] = kind.user_message
    return texts
