"""The message features of secure chat beyond sending and reading text (docs/e2ee.md,
"Message content"): delivery and read receipts, urgent messages and their
acknowledgements, presence / do not disturb, retention and disappearing messages.

A mixin of :class:`app.services.chat.ChatService`, kept apart so that neither module grows
past reading: it uses the service's cache, state, machine, lock and outbox, and adds no
state of its own beyond what ``ChatService.__init__`` sets up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from app.core.chat import ChatMessage, Delivery, Notification
from app.core.errors import ConnectionFailed, SafeConsultError
from app.crypto.machine import DecryptedToDevice
from app.net import relay_api
from app.services import chat_content
from app.services.chat_content import Disappear, MalformedContent, Receipt, new_event_id, now_ms
from app.services.transfers.descriptor import parse_descriptor
from app.services.transfers.errors import DescriptorInvalid
from app.services.transfers.retention import PurgedTransfers, purge_transfers

if TYPE_CHECKING:
    from app.services.chat import _Applied

log = logging.getLogger("app.services.chat")

URGENT_RENOTIFY_S = 60.0  # an urgent message not acknowledged notifies again this often
PRESENCE_KEY = "presence"  # chat_state row: our own status
PEER_PRESENCE = "presence:"  # chat_state row per user: their status as they sent it
RECEIPT_INTERVAL_S = 1.0  # delivery receipts go out at most this often (a burst: one each)
RETENTION_SWEEP_S = 30.0  # how often retention and disappearing messages are applied
DISAPPEAR = "disappear:"  # chat_state row per room: "<after_s>:<origin_ms of the setting>"
ATTACHMENT_PREFIX = "attachment:"  # chat_state row per file message (ChatService.ATTACHMENT_KEY)
_ACK = "ack:"  # pending receipt kind + event id: our acknowledgement of an urgent message
_STATUS = "status"  # pending receipt kind (room ""): our status for every room's members
_PENDING = "receipts_pending"  # chat_state row: the user's receipts waiting to be sent (JSON)
_READ_SENT = "read_receipt_sent:"  # chat_state row per room: the last read receipt's target
_now_ms = now_ms


class ChatFeatures:
    """Receipts, urgent messages, presence, retention (mixed into ChatService)."""

    # Provided by ChatService (see its __init__).
    state: Any
    messages_repo: Any
    machine: Any
    cache: Any
    user_id: str
    renotify_s: float
    receipt_interval_s: float
    retention_ms: int
    _lock: asyncio.Lock
    _closing: bool
    _pending_receipts: dict[tuple[str, str], str]
    _receipts_sent_at: float
    _pending_restored = False  # the waiting receipts kept in the cache were read back

    def mark_read(self, room_id: str) -> None:
        """The user read the room: unread count to zero, and a read receipt for the newest
        message of another member (sent by the loop, or :meth:`send_receipts`)."""
        self.state.mark_read(room_id)
        latest = [m for m in self.messages_repo.list_room(room_id, limit=20)
                  if m.sender != self.user_id]
        if latest and self.state.room_state(room_id) == "joined":
            up_to = latest[-1].event_id
            if self.state.get(_READ_SENT + room_id) != up_to:
                self._pending_receipts[(room_id, "read")] = up_to
                self._keep_pending()
                self.wake()
        self.rooms_changed.emit()

    async def send_receipts(self) -> None:
        """Send the receipts, acknowledgements and status waiting (Olm to-device, through
        the to-device outbox) now.

        Each is encrypted only once an Olm session with every recipient device could be
        set up (claiming one-time keys): while offline they stay waiting and go with the
        next successful sync, so a device we had no session with still gets them -- the
        relay stores them until that device syncs. Once encrypted they are in the
        to-device outbox (in the cache) and sent exactly once. Those written by the user
        (read receipts, acknowledgements, status) are kept in the cache while they wait, so
        a restart meanwhile does not lose them."""
        if not self._pending_restored:
            self._pending_restored = True
            for room_id, kind, value in json.loads(self.state.get(_PENDING) or "[]"):
                self._pending_receipts.setdefault((room_id, kind), value)
        if not self._pending_receipts:
            return
        self._receipts_sent_at = time.monotonic()
        async with self._lock:
            pending, self._pending_receipts = self._pending_receipts, {}
            users: set[str] = set()
            for room_id, kind in pending:
                users.update(self.state.all_member_ids() if kind == _STATUS
                             else self.state.members(room_id))
            if not await self._ensure_sessions(users):
                for key, value in pending.items():  # a newer one queued meanwhile wins
                    self._pending_receipts.setdefault(key, value)
                self._keep_pending()
                return
            with self.cache.write():
                for (room_id, kind), value in pending.items():
                    self._queue_pending(room_id, kind, value)
                self._keep_pending()  # what is left: those added while keys were claimed
            await self._send_queued_to_device()

    def _keep_pending(self) -> None:
        """The waiting receipts written by the user, in the cache (delivered receipts are
        not: the next message brings a newer one)."""
        kept = [[room_id, kind, value] for (room_id, kind), value in
                sorted(self._pending_receipts.items()) if kind != "delivered"]
        if kept:
            self.state.put(_PENDING, json.dumps(kept))
        elif self.state.get(_PENDING) is not None:
            self.state.delete(_PENDING)

    def _queue_pending(self, room_id: str, kind: str, value: str) -> None:
        if kind == _STATUS:
            others = [u for u in self.state.all_member_ids() if u != self.user_id]
            if others:
                self._queue_to_device(self.machine.encrypt_to_members(
                    others, chat_content.PRESENCE_TYPE, {"status": value}))
            return
        if self.state.room_state(room_id) != "joined":
            return
        if kind.startswith(_ACK):  # value: the author of the urgent message
            wire = chat_content.receipt_to_wire(Receipt(room_id, "ack", kind[len(_ACK):]))
            self._queue_to_device(self.machine.encrypt_to_members(
                [value], chat_content.RECEIPT_TYPE, wire))
            return
        others = [u for u in self.state.members(room_id) if u != self.user_id]
        wire = chat_content.receipt_to_wire(Receipt(room_id, kind, value))
        self._queue_to_device(self.machine.encrypt_to_members(
            others, chat_content.RECEIPT_TYPE, wire))
        if kind == "read":
            self.state.put(_READ_SENT + room_id, value)

    # -- retention and disappearing messages ---------------------------------------------

    def disappearing(self, room_id: str) -> int:
        """Seconds after which the room's messages disappear (0: they do not)."""
        value = self.state.get(DISAPPEAR + room_id)
        return int(value.split(":")[0]) if value else 0

    def _set_disappear(self, room_id: str, after_s: int, origin_ms: int) -> bool:
        """Keep the newest setting (by the relay's time); True if it changed."""
        value = self.state.get(DISAPPEAR + room_id)
        if value and int(value.split(":")[1]) > origin_ms:
            return False  # an older setting arriving late
        self.state.put(DISAPPEAR + room_id, f"{after_s}:{origin_ms}")
        return not value or int(value.split(":")[0]) != after_s

    async def set_disappearing(self, room_id: str, after_s: int) -> str:
        """Make the room's messages disappear ``after_s`` seconds after sending on every
        member's device (0: off). An encrypted room event; returns its event id."""
        self._check_joined(room_id)
        setting = Disappear(after_s)
        chat_content.parse(chat_content.to_wire(setting))
        event_id = new_event_id()
        async with self._lock:
            with self.cache.write():
                self._queue_content(room_id, event_id, setting)
                self._set_disappear(room_id, after_s, _now_ms())
        self.room_settings_changed.emit(room_id)
        self.purge_expired()
        await self._after_queue()
        return event_id

    def purge_expired(self, now_ms: int | None = None) -> set[str]:
        """Remove from the cache what retention (``Policy.retention_days``) and each room's
        disappearing setting no longer allow; returns the rooms that lost messages."""
        now_ms = _now_ms() if now_ms is None else now_ms
        rooms: set[str] = set()
        with self.cache.write():
            retention_cutoff = now_ms - self.retention_ms
            if self.messages_repo.delete_older_than(retention_cutoff):
                rooms.update(r[0] for r in self.state.rooms())  # any room may have lost some
            self.state.delete_undecrypted_older_than(retention_cutoff)
            for room_id, *_ in self.state.rooms():
                after_s = self.disappearing(room_id)
                if after_s:
                    cutoff = now_ms - after_s * 1000
                    if self.messages_repo.delete_room_older_than(room_id, cutoff):
                        rooms.add(room_id)
                    self.state.delete_undecrypted_older_than(cutoff, room_id)
            if rooms:
                self.messages_repo.forget_orphan_meta()
            files = self._purge_files(bool(rooms), retention_cutoff, {
                room_id: now_ms - after_s * 1000 for room_id, *_ in self.state.rooms()
                if (after_s := self.disappearing(room_id))})
        if files:
            log.info("chat files purged", extra={"event": "chat_files_purged",
                                                 "count": files.transfers})
        if rooms:
            log.info("chat cache purged", extra={"event": "chat_purged", "count": len(rooms)})
            self.purged.emit(rooms)
        return rooms

    def _purge_files(self, messages_went: bool, retention_cutoff: int,
                     room_cutoffs: dict[str, int]) -> PurgedTransfers:
        """The files of the messages just purged: each file message's descriptor row, and
        the transfers of its blob (upload or download: the row with the file key and name,
        a partial download's staging file, the downloaded copy in the encrypted file store);
        transfers idle for longer than the retention or the room's disappearing time too."""
        gone: set[str] = set()
        kept: set[str] = set()
        for name, value in self.state.named(ATTACHMENT_PREFIX) if messages_went else ():
            event_id = name[len(ATTACHMENT_PREFIX):]
            try:
                blob_id = parse_descriptor(json.loads(value)["file"]).blob_id
            except (ValueError, KeyError, TypeError, DescriptorInvalid):
                blob_id = None
            if self.messages_repo.get(event_id) is not None:
                if blob_id is not None:
                    kept.add(blob_id)
                continue
            self.state.delete(name)
            if blob_id is not None:
                gone.add(blob_id)
        return purge_transfers(self.cache, blob_ids=gone - kept, older_than_ms=retention_cutoff,
                               room_cutoffs=room_cutoffs)

    async def _retention_loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(SafeConsultError):  # the cache closed under us
                self.purge_expired()
            await asyncio.sleep(RETENTION_SWEEP_S)

    # -- urgent messages and presence -----------------------------------------------------

    def unacknowledged(self) -> list[ChatMessage]:
        """Urgent messages of others we have not acknowledged, oldest first."""
        return [self._shown(m, self.messages_repo.meta(m.event_id, m.sender))
                for m in self.messages_repo.unacknowledged_urgent(self.user_id)]

    def renotify(self) -> list[Notification]:
        """Notify again of every urgent message not acknowledged (also under do not
        disturb); the urgent loop calls this every ``renotify_s``."""
        due = [Notification(m.room_id, m.event_id, m.sender, True, repeat=True)
               for m in self.unacknowledged()]
        for notification in due:
            self.notify.emit(notification)
        return due

    async def _urgent_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.renotify_s)
            with contextlib.suppress(SafeConsultError):  # the cache closed under us
                self.renotify()

    async def acknowledge(self, room_id: str, event_id: str) -> None:
        """We saw the urgent message ``event_id``: no more re-notifying, and its author
        learns it (an ``ack`` receipt)."""
        message = self.messages_repo.get(event_id)
        if message is None or message.room_id != room_id:
            raise SafeConsultError("unknown message", user_message="This message is gone.")
        async with self._lock:
            with self.cache.write():
                self.messages_repo.acknowledge(event_id, self.user_id, _now_ms())
        if message.sender != self.user_id:
            self._pending_receipts[(room_id, _ACK + event_id)] = message.sender
            self._keep_pending()
        try:
            await self._send_now()
        finally:
            self._emit_changed(event_id)

    async def _send_now(self) -> None:
        try:
            await self.send_receipts()
        except ConnectionFailed:
            self._set_online(False)
        if self._pending_receipts or self.outbox.to_device():
            self.wake()  # offline: the sync loop sends them when the relay is back

    async def _ensure_sessions(self, users: Iterable[str]) -> bool:
        """Olm sessions with the allowed devices of ``users`` (claiming one-time keys), for
        the to-device messages of receipts and status. False when the relay could not be
        reached (the caller keeps its messages for later); a device without one-time keys
        left gets nothing."""
        users = [u for u in dict.fromkeys(users) if u != self.user_id]
        try:
            await self._ensure_device_lists(users)
            missing = self.machine.missing_sessions(users)
            if missing:
                self.machine.receive_key_claim(
                    await relay_api.claim_keys(self.transport, [d for _, d in missing]))
        except ConnectionFailed:
            self._set_online(False)
            return False
        return True

    def acknowledged_by(self, event_id: str) -> list[str]:
        """Who acknowledged (our own urgent) ``event_id``, first first."""
        return self.messages_repo.acks(event_id)

    @property
    def presence(self) -> str:
        """Our own status: "available" or "dnd" (do not disturb)."""
        return self.state.get(PRESENCE_KEY) or "available"

    def peer_presence(self, user_id: str) -> str:
        return self.state.get(PEER_PRESENCE + user_id) or "available"

    async def set_presence(self, status: str) -> None:
        """Set our status and tell the members of our rooms (Olm to-device). Under "dnd"
        only urgent messages notify."""
        if status not in chat_content.PRESENCE:
            raise SafeConsultError("unknown status", user_message="Unknown status.")
        self._pending_receipts[("", _STATUS)] = status
        self._keep_pending()
        try:
            await self._send_now()
        finally:  # ours from now on, sent or waiting to be
            self.state.put(PRESENCE_KEY, status)
            self.presence_changed.emit(self.user_id)

    def delivery(self, room_id: str, *, limit: int = 100,
                 before_ts_ms: int | None = None) -> dict[str, Delivery]:
        """Our own messages among the room's latest ``limit`` (before ``before_ts_ms``), by
        event id: how far each got with the other joined members, from their receipts."""
        others = [u for u in self.state.members(room_id) if u != self.user_id]
        receipts = self.state.receipts(room_id)
        got = [max(receipts.get(u, {}).values(), default=-1) for u in others]
        read = [receipts.get(u, {}).get("read", -1) for u in others]
        found = {}
        for m in self.messages_repo.list_room(room_id, limit=limit, before_ts_ms=before_ts_ms):
            if m.sender != self.user_id:
                continue
            n_got = sum(ts >= m.ts_ms for ts in got)
            n_read = sum(ts >= m.ts_ms for ts in read)
            state = ("read" if others and n_read == len(others)
                     else "delivered" if others and n_got == len(others) else "sent")
            found[m.event_id] = Delivery(state, n_got, n_read, len(others))
        return found

    # -- receiving (to-device) ------------------------------------------------------------

    def _receive_presence(self, msg: DecryptedToDevice, applied: _Applied) -> None:
        try:
            status = chat_content.parse_presence(msg.content.reveal())
        except MalformedContent as exc:
            log.warning("presence rejected", extra={"event": "chat_presence_rejected",
                                                    "reason_code": exc.__class__.__name__})
            return
        if msg.sender_user == self.user_id or \
                msg.sender_user not in self.state.all_member_ids():
            return  # only the people we share a room with
        if self.state.get(PEER_PRESENCE + msg.sender_user) != status:
            self.state.put(PEER_PRESENCE + msg.sender_user, status)
            applied.presence.add(msg.sender_user)

    def _receive_receipt(self, msg: DecryptedToDevice, applied: _Applied) -> None:
        """Another member's device has (or read) the room up to a message (Olm-authenticated
        sender; the room and the message are checked against our own view)."""
        try:
            receipt = chat_content.parse_receipt(msg.content.reveal())
        except MalformedContent as exc:
            log.warning("receipt rejected", extra={"event": "chat_receipt_rejected",
                                                   "reason_code": exc.__class__.__name__})
            return
        target = self.messages_repo.get(receipt.up_to)
        if (msg.sender_user == self.user_id or target is None
                or target.room_id != receipt.room_id
                or msg.sender_user not in self.state.members(receipt.room_id)):
            return  # another device of ours, a message we do not hold, or not a member
        if receipt.kind == "ack":
            if self.messages_repo.acknowledge(target.event_id, msg.sender_user, _now_ms()):
                shown = self.message_by_id(target.event_id)
                if shown is not None:
                    applied.changed.append(shown)
            return
        moved = self.state.record_receipt(receipt.room_id, msg.sender_user, receipt.kind,
                                          target.ts_ms)
        if receipt.kind == "read":  # read implies delivered
            moved = self.state.record_receipt(receipt.room_id, msg.sender_user, "delivered",
                                              target.ts_ms) or moved
        if moved:
            applied.receipt_rooms.add(receipt.room_id)
