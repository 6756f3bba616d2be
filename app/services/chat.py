"""Secure chat: the CryptoMachine wired to the relay and the encrypted cache (docs/e2ee.md,
"Chat service"). Async and Qt-free; views observe its psygnal signals.

Shape of the work:

* one *sync loop* task: ``/v1/sync?since=`` until caught up, then the outbox, woken by the
  push socket and by a fallback poll; a dropped connection only slows it down;
* every batch is applied in **one cache transaction together with its next sync token**:
  the relay deletes to-device messages once a later token is presented, so the Olm and
  Megolm state they changed must be on disk before that token is ever sent;
* sending goes through the outbox (app.storage.outbox): the text is queued first, encrypted
  once, and the same ciphertext is (re)posted under the client-chosen event id until the
  relay accepts it -- exactly once, even across crashes and lost answers;
* nothing from the relay is trusted for *who may read*: members come from membership
  events this device saw (or the member list when it joined), devices from self-signed
  directory entries (the machine checks them), and changes raise warnings.

One machine per device, used by one task at a time (``_lock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from psygnal import Signal

from app.core.chat import (
    ENCRYPTED_EVENT,
    MEMBER_EVENT,
    MESSAGE_TYPE,
    UNREADABLE_EVENT,
    ChatMessage,
    EventState,
    Notification,
    RoomEvent,
    RoomSummary,
    SyncBatch,
    UndecryptedEvent,
)
from app.core.errors import ConnectionFailed, SafeConsultError, ServerError
from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.crypto import errors as crypto_errors
from app.crypto.devices import DeviceWarning, TrustPolicy, may_receive_keys
from app.crypto.errors import E2EEError, MalformedPayload, Misdirected, UnknownSenderDevice
from app.crypto.files import decrypt_chunks
from app.crypto.identity import DeviceIdentity
from app.crypto.machine import CryptoMachine, DecryptedToDevice
from app.crypto.megolm import MissingRoomKey, RotationPolicy
from app.crypto.messages import ENCRYPTED, VERIFICATION_START, OutgoingToDevice
from app.crypto.room_keys import KeyRequestAnswer, RoomKeyReceived
from app.crypto.sas import SasState
from app.crypto.store import DeviceRecord, TrustLevel
from app.crypto.verification import VerificationUpdate
from app.net import relay_api
from app.net.auth_api import ProtocolError
from app.net.events import Closed, push_frames
from app.net.transport import Transport
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
    new_event_id,
    now_ms,
)
from app.services.chat_features import RECEIPT_INTERVAL_S, URGENT_RENOTIFY_S, ChatFeatures
from app.services.session import LIVE_STATES, SessionService
from app.services.transfers.descriptor import (
    AttachmentDescriptor,
    KnownDevice,
    SenderDevice,
    parse_descriptor,
)
from app.services.transfers.errors import ManifestSignatureInvalid
from app.storage.chat_state import SYNC_TOKEN, ChatState
from app.storage.crypto_store import SqlCryptoStore
from app.storage.files import EncryptedFileStore
from app.storage.messages import MessageMeta, MessageRepository
from app.storage.outbox import Outbox

log = logging.getLogger(__name__)
T = TypeVar("T")

# Refusals after which a queued message can never be accepted: it leaves the outbox and the
# user is told (send_failed). Anything else (5xx, rate limits, the network) is retried.
PERMANENT_REFUSALS = frozenset({
    "not_member", "forbidden", "grant_expired", "event_id_conflict", "malformed", "too_large",
})
MISSING_KEY = "missing_room_key"
WAITING_TEXT = "Waiting for this message's key from the sender's device."
MEMBERSHIP_STATE = {"join": "joined", "invite": "invited", "leave": "left", "remove": "left",
                    "expire": "left"}


_now_ms = now_ms
# After a pushed event was shown, the sync that moves the token past it runs this much later
# (coalescing a burst of pushes into one sync, off the path of the next message).
PUSH_SYNC_DELAY_S = 1.0


class _LeaveToSync(Exception):
    """A pushed event the fast path does not handle: roll back, let the sync do it."""


@dataclass(frozen=True, slots=True)
class SendFailed:
    room_id: str
    event_id: str
    code: str  # the relay's refusal code
    user_message: str


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


ATTACHMENT_KEY = "attachment:"  # + event id: a received or sent file's descriptor (chat_state)
EXPORT_ACTION = "file.export"  # an attachment saved, decrypted, to a place the user chose


@dataclass(frozen=True, slots=True)
class AttachmentInfo(chat_content.DescribedFile):
    """A file message: its signed descriptor and the device it came from (the Megolm
    sender, checked against the envelope). ``name`` and ``mime`` are patient data."""

    room_id: str
    event_id: str
    sender: str
    sender_device: str
    descriptor: AttachmentDescriptor = field(repr=False)


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


class ChatService(ChatFeatures):
    message = Signal(object)  # ChatMessage: new in a room (also our own, as composed)
    undecryptable = Signal(object)  # UndecryptedEvent: kept, not shown (waiting or rejected)
    device_warning = Signal(object)  # DeviceWarning: a contact's device appeared or changed
    rooms_changed = Signal()
    outbox_changed = Signal(int)  # messages composed here and not yet accepted by the relay
    sent = Signal(str)  # event id: the relay accepted a message composed here
    send_failed = Signal(object)  # SendFailed
    online_changed = Signal(bool)
    to_device = Signal(object)  # VerificationUpdate / DecryptedToDevice for other services
    room_event = Signal(object)  # RoomEventReceived: a room event of another type than chat
    receipts_changed = Signal(str)  # room id: another member's delivery/read receipt moved
    notify = Signal(object)  # Notification: a message of another member wants attention
    presence_changed = Signal(str)  # user id (ours too) whose status changed
    purged = Signal(object)  # set of room ids whose messages retention removed
    room_settings_changed = Signal(str)  # room id: disappearing messages set or changed

    def __init__(
        self, session: SessionService, *, poll_interval_s: float = 30.0,
        one_time_keys: int = 50, trust_policy: TrustPolicy = TrustPolicy.TOFU,
        rotation: RotationPolicy | None = None, sync_limit: int = 100,
        renotify_s: float = URGENT_RENOTIFY_S, receipt_interval_s: float = RECEIPT_INTERVAL_S,
    ) -> None:
        if session.cache is None or session.device is None:
            raise SafeConsultError("chat needs a signed-in session")
        self._session = session
        self.cache = session.cache
        self.device = session.device
        self.user_id = session.device.user_id
        self.poll_interval_s = poll_interval_s
        self.one_time_keys = one_time_keys
        self.sync_limit = sync_limit
        self.renotify_s = renotify_s
        self.receipt_interval_s = receipt_interval_s
        self._receipts_sent_at = -math.inf
        self.store = SqlCryptoStore(self.cache)
        self.state = ChatState(self.cache)
        self.outbox = Outbox(self.cache)
        self.messages_repo = MessageRepository(self.cache)
        self.recall_window_ms = session.policy.recall_window_minutes * 60_000
        self.retention_ms = session.policy.retention_days * 86_400_000
        keystore = session.bindings.keystore(self.device.username, self.device.device_id)
        pickle_key = keystore.pickle_key()
        if self.store.load_account() is None:
            # First use on this device: the crypto store takes over the account from the
            # device binding. From now on the store's copy is the only one Olm uses -- it
            # alone knows which one-time keys are spent (docs/e2ee.md, "Chat service").
            # A copy, not the binding's object, which keeps signing request proofs.
            identity = DeviceIdentity.unpickle(
                self.device.device_id, self.device.identity.pickle(pickle_key), pickle_key)
            self.machine = CryptoMachine(identity, self.user_id, self.device.username,
                                         self.store, pickle_key, trust_policy=trust_policy,
                                         rotation=rotation)
        else:
            self.machine = CryptoMachine.load(self.device.device_id, self.user_id,
                                              self.device.username, self.store, pickle_key,
                                              trust_policy=trust_policy, rotation=rotation)
        if not self.cache.closed_cleanly:
            # Sending does not wait for the disk (docs/e2ee.md, "Durability"): after a crash
            # or power cut a Megolm session may have been rolled back to an index already
            # sent, which receivers would reject as a replay. A fresh session per room instead.
            dropped = self.store.drop_outbound_groups()
            if dropped:
                log.info("room keys rotated after an unclean shutdown",
                         extra={"event": "chat_room_key_rotated", "count": dropped})
        self.online: bool | None = None
        self._lock = asyncio.Lock()
        self._sync_lock = asyncio.Lock()  # one sync at a time; its fetch leaves _lock free
        self._wake = asyncio.Event()
        self._push_retry = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self._dirty_users: set[str] = set()
        self._rooms_dirty = True
        self._keys_low = True
        self._upload_failed = False
        self._last_version_check = 0.0
        self._pending_receipts: dict[tuple[str, str], str] = {}  # (room, kind) -> up to
        self._pushed: set[asyncio.Task] = set()  # pushed events being applied
        self._sync_later: asyncio.TimerHandle | None = None
        # Signing out or a wipe closes the cache under us: stop at once, not on error.
        session.changed.connect(self._on_session)

    # -- life cycle ------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        transport = self._session.transport
        if transport is None:
            raise ConnectionFailed("signed out")
        return transport

    async def start(self, *, background: bool = True) -> None:
        """Publish keys, learn rooms and catch up; then (``background``) keep syncing."""
        try:
            await self.ensure_keys()
            await self.refresh_rooms()
            await self.refresh_device_lists([self.user_id])
            await self.sync_once()
            await self.flush()
            self._set_online(True)
        except ConnectionFailed:
            self._set_online(False)  # offline start: the loop catches up later
        if background:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._sync_loop()),
                           loop.create_task(self._push_loop()),
                           loop.create_task(self._urgent_loop()),
                           loop.create_task(self._retention_loop())]

    async def run(self) -> None:
        """:meth:`start`, then the loops, for a caller that owns one task for the whole chat
        (the GUI's TaskRunner): cancelling it stops everything. Also ends when the session
        signs out or is wiped."""
        try:
            try:
                await self.start(background=False)
            except SafeConsultError as exc:  # a refusal or odd answer: the loop tries again
                log.warning("chat start failed", extra={
                    "event": "chat_sync_failed",
                    "reason_code": getattr(exc, "code", "") or exc.__class__.__name__})
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._sync_loop()),
                           loop.create_task(self._push_loop()),
                           loop.create_task(self._urgent_loop()),
                           loop.create_task(self._retention_loop())]
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    def _on_session(self, snapshot: Any) -> None:
        # Locked is still live: PHI is hidden by the window, but messages keep arriving
        # (docs/device-protection.md). Signing out or a wipe closes the cache: stop.
        if snapshot.state not in LIVE_STATES:
            self._closing = True
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()

    async def stop(self) -> None:
        self._session.changed.disconnect(self._on_session)
        self._closing = True
        self._wake.set()
        if self._sync_later is not None:
            self._sync_later.cancel()
        for task in (*self._tasks, *self._pushed):
            task.cancel()
        for task in (*self._tasks, *self._pushed):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._session.cache is self.cache:  # still open: leave no accepted row behind
            self.outbox.settle()

    def wake(self) -> None:
        """Sync and flush now (a push arrived, or the network came back)."""
        self._wake.set()

    def _set_online(self, online: bool) -> None:
        if online != self.online:
            if online:
                self._push_retry.set()
            self.online = online
            self.online_changed.emit(online)

    async def _sync_loop(self) -> None:
        retry = 1.0
        while not self._closing:
            self._wake.clear()  # a wake during the round below runs another one at once
            timeout = self.poll_interval_s
            try:
                await self._round()
                self._set_online(True)
                retry = 1.0
            except ConnectionFailed:
                self._set_online(False)
                timeout, retry = retry, min(retry * 2, self.poll_interval_s)
            except SafeConsultError as exc:  # refusals, odd answers, a busy cache
                log.warning("chat sync failed", extra={"event": "chat_sync_failed",
                                                       "reason_code": getattr(exc, "code", "")
                                                       or exc.__class__.__name__})
                timeout, retry = retry, min(retry * 2, self.poll_interval_s)
            except Exception as exc:  # a bug must not end the chat for good
                log.error("chat sync crashed", extra={"event": "chat_sync_failed",
                                                      "reason_code": exc.__class__.__name__})
                timeout, retry = retry, min(retry * 2, self.poll_interval_s)
            if self._pending_receipts:  # held back by the interval: send them when it ends
                timeout = min(timeout, max(0.0, self._receipts_sent_at
                                           + self.receipt_interval_s - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _round(self) -> None:
        if self._rooms_dirty:
            await self.refresh_rooms()
        if self._dirty_users or time.monotonic() - self._last_version_check > self.poll_interval_s:
            self._keys_low = True  # also look at the key count now and then
            await self.check_device_lists()
        await self.sync_once()
        await self.flush()
        if self._keys_low:
            await self.ensure_keys()

    async def _push_loop(self) -> None:
        backoff = 1.0
        while not self._closing:
            try:
                async for frame in push_frames(self.transport):
                    backoff = 1.0
                    if isinstance(frame, Closed):
                        break
                    self._on_push(frame)
            except SafeConsultError as exc:
                log.info("chat push lost", extra={"event": "chat_push_lost",
                                                  "reason_code": exc.__class__.__name__})
            self.wake()  # whatever was missed while disconnected comes by sync
            self._push_retry.clear()
            # Back off, but reconnect at once when a request just got through again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._push_retry.wait(), backoff)
            backoff = min(backoff * 2, 30.0)

    def _on_push(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "device_list" and isinstance(frame.get("user_id"), str):
            self._dirty_users.add(frame["user_id"])
        elif kind == "event":
            event = frame.get("event")
            if isinstance(event, dict) and event.get("type") == MEMBER_EVENT:
                # Invitations are pushed to the invitee, who cannot sync the room yet.
                self._rooms_dirty = True
            elif (isinstance(event, dict) and event.get("type") == ENCRYPTED_EVENT
                  and self._take_pushed(event)):
                return
        elif kind not in ("to_device", "hello"):
            return
        self.wake()

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
        if (isinstance(result, MissingRoomKey) or result.type != MESSAGE_TYPE
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

    # -- rooms -----------------------------------------------------------------------------

    async def refresh_rooms(self) -> None:
        """Learn rooms (and invitations) from the relay; seed members of rooms new here."""
        rooms = await relay_api.list_rooms(self.transport)
        self._rooms_dirty = False  # only now: a failed attempt must be retried
        listed = {r.room_id for r in rooms}
        for room in rooms:
            known = self.state.room_state(room.room_id)
            if known != room.state:
                self.state.set_room(room.room_id, room.state)
                if room.state == "joined":
                    await self._load_members(room.room_id)
        for room_id, state, _, _ in self.state.rooms():
            if state in ("joined", "invited") and room_id not in listed:
                self.state.set_room(room_id, "left")  # removed or lapsed while away
        self.rooms_changed.emit()

    async def _load_members(self, room_id: str) -> None:
        """The member list at the moment we join; later changes come as membership events."""
        _, members = await relay_api.members(self.transport, room_id)
        self.state.replace_members(room_id, {m.user_id: m.state for m in members})

    async def create_room(self) -> str:
        room_id = await relay_api.create_room(self.transport)
        with self.cache.write():
            self.state.set_room(room_id, "joined")
            self.state.set_member(room_id, self.user_id, "joined")
        self.rooms_changed.emit()
        return room_id

    async def invite(self, room_id: str, username: str, *, role: str = "member",
                     expires_ms: int | None = None) -> str:
        user_id, _ = await relay_api.user_by_name(self.transport, username)
        await relay_api.invite(self.transport, room_id, user_id=user_id, role=role,
                               expires_ms=expires_ms)
        self.state.set_member(room_id, user_id, "invited")
        async with self._lock:
            await self._ensure_device_lists([user_id])
        self.rooms_changed.emit()
        return user_id

    async def join(self, room_id: str) -> None:
        await relay_api.join(self.transport, room_id)
        self.state.set_room(room_id, "joined")
        await self._load_members(room_id)
        async with self._lock:  # whom we are talking to: names and devices, known at once
            await self._ensure_device_lists(self.state.members(room_id))
        self.rooms_changed.emit()

    async def remove_member(self, room_id: str, user_id: str) -> None:
        """Remove a member; our next message in the room goes under a new room key."""
        await relay_api.remove_member(self.transport, room_id, user_id)
        self.state.set_member(room_id, user_id, "left")
        self.rooms_changed.emit()

    async def leave(self, room_id: str) -> None:
        await relay_api.leave(self.transport, room_id)
        self.state.set_room(room_id, "left")
        self.rooms_changed.emit()

    def rooms(self) -> list[RoomSummary]:
        return [RoomSummary(room_id, state, tuple(self.state.members(room_id)), unread, last)
                for room_id, state, unread, last in self.state.rooms()]

    def members(self, room_id: str) -> list[str]:
        return self.state.members(room_id)

    def messages(self, room_id: str, *, limit: int = 100,
                 before_ts_ms: int | None = None) -> list[ChatMessage]:
        """The room's latest ``limit`` messages (before ``before_ts_ms``: paging back),
        oldest first, with their replies, edits and recalls applied."""
        waiting = {item.event_id for item in self.outbox.pending()}
        cached = self.messages_repo.list_room(room_id, limit=limit, before_ts_ms=before_ts_ms)
        metas = self.messages_repo.metas(cached)
        return [self._shown(m, metas.get(m.event_id), pending=m.event_id in waiting)
                for m in cached]

    def message_by_id(self, event_id: str) -> ChatMessage | None:
        """One cached message as shown (a reply's quote), or None when not cached."""
        cached = self.messages_repo.get(event_id)
        if cached is None:
            return None
        return self._shown(cached, self.messages_repo.meta(cached.event_id, cached.sender))

    def _shown(self, m: CachedMessage, meta: MessageMeta | None, *,
               pending: bool = False) -> ChatMessage:
        if meta is None:
            return ChatMessage(m.room_id, m.event_id, m.sender, m.ts_ms, m.body,
                               pending=pending)
        recalled = (meta.recalled_ms is not None
                    and meta.recalled_ms - m.ts_ms <= self.recall_window_ms)
        acknowledged = False
        if meta.urgent:
            acks = self.messages_repo.acks(m.event_id)
            acknowledged = bool(acks) if m.sender == self.user_id else self.user_id in acks
        return ChatMessage(m.room_id, m.event_id, m.sender, m.ts_ms,
                           Phi("") if recalled else m.body, pending=pending,
                           reply_to=meta.reply_to, edited=meta.edit_order is not None,
                           recalled=recalled, urgent=bool(meta.urgent),
                           acknowledged=acknowledged)

    def undecrypted(self, room_id: str | None = None) -> list[UndecryptedEvent]:
        return self.state.undecrypted(room_id, user_messages=_reason_texts())

    def username(self, user_id: str) -> str | None:
        if user_id == self.user_id:
            return self.device.username
        return self.store.username(user_id)

    # -- devices ---------------------------------------------------------------------------

    async def check_device_lists(self) -> None:
        """Refetch the device lists whose version moved (or that a push named)."""
        self._last_version_check = time.monotonic()
        users = set(self.state.all_member_ids()) | {self.user_id} | self._dirty_users
        versions = await relay_api.device_versions(self.transport, sorted(users))
        stale = [u for u, v in versions.items()
                 if u in self._dirty_users or self.store.device_list_version(u) != v]
        self._dirty_users.clear()
        if stale:
            async with self._lock:
                await self.refresh_device_lists(stale)

    async def refresh_device_lists(self, user_ids: Iterable[str]) -> list[DeviceWarning]:
        warnings: list[DeviceWarning] = []
        for user_id in user_ids:
            directory = await relay_api.user_devices(self.transport, user_id)
            found = self.machine.update_device_list(user_id, directory.username,
                                                    directory.devices)
            # After the list itself: the version row must never make an unseen user "seen".
            self.store.set_device_list_version(user_id, directory.device_list_version)
            warnings.extend(found)
        for warning in warnings:
            log.info("device list changed", extra={"event": "chat_device_warning",
                                                   "state": warning.change.value})
            self.device_warning.emit(warning)
        return warnings

    async def _ensure_device_lists(self, user_ids: Iterable[str]) -> None:
        unknown = [u for u in dict.fromkeys(user_ids) if self.store.user_devices(u) is None]
        if unknown:
            await self.refresh_device_lists(unknown)

    def accept_device(self, user_id: str, device_id: str, ed25519: str) -> None:
        """The user accepted a flagged device after comparing its fingerprint."""
        self.machine.accept_device(user_id, device_id, ed25519)

    def block_device(self, user_id: str, device_id: str) -> None:
        self.machine.block_device(user_id, device_id)

    def devices(self, user_id: str) -> list[DeviceRecord]:
        """``user_id``'s devices as this device's own view holds them (with trust), by id."""
        return sorted(self.machine.devices(user_id).values(), key=lambda r: r.device_id)

    def may_receive_keys(self, record: DeviceRecord) -> bool:
        """Whether the trust policy lets ``record`` receive room keys now."""
        return may_receive_keys(record, self.machine.trust_policy)

    def flagged_devices(self, room_id: str) -> list[DeviceRecord]:
        """Devices of the room's members (ourselves included) that appeared or changed after
        first contact and that the user has not verified, accepted or blocked yet: they get
        no room key, and the user should decide before writing here."""
        flagged = []
        for user_id in dict.fromkeys([*self.state.members(room_id), self.user_id]):
            flagged.extend(r for r in self.devices(user_id)
                           if r.trust is TrustLevel.UNVERIFIED)
        return flagged

    async def verification_step(
        self, step: Callable[[CryptoMachine], tuple[T, list[OutgoingToDevice]]],
    ) -> T:
        """Run one verification step on the machine (which one task uses at a time) and send
        what it answers. The to-device messages are queued in the same transaction as any
        trust the step changed, and go out at once (or with the next flush when offline)."""
        async with self._lock:
            with self.cache.write():
                result, outgoing = step(self.machine)
                self._queue_to_device(outgoing)
            try:
                await self._send_queued_to_device()
            except ConnectionFailed:
                self._set_online(False)
                self.wake()
        return result

    def search(self, keyword: str, *, room_id: str | None = None,
               limit: int = 50) -> list[ChatMessage]:
        """Search the local, decrypted history (FTS index in the encrypted cache), newest
        first. Nothing leaves the device."""
        return [ChatMessage(m.room_id, m.event_id, m.sender, m.ts_ms, m.body)
                for m in self.messages_repo.search(keyword, room_id=room_id, limit=limit)]

    async def ensure_keys(self) -> None:
        """Keep the relay stocked with our one-time keys (and a fallback key)."""
        counts = await relay_api.key_counts(self.transport)
        if counts.one_time_key_count >= self.one_time_keys // 2 and counts.has_fallback_key:
            self._keys_low = False
            return
        async with self._lock:
            # After a failed upload the generated keys are still unpublished and come
            # again with the next body: add none then, so a body stays within the relay's
            # 100-key limit however often the network fails.
            wanted = 0 if self._upload_failed else max(
                0, self.one_time_keys - counts.one_time_key_count)
            body = self.machine.keys_for_upload(wanted)
            self._upload_failed = True
            await relay_api.upload_keys(self.transport, body)
            self._upload_failed = False
            self.machine.mark_keys_published()
        self._keys_low = False
        log.info("one-time keys published", extra={"event": "chat_keys_published",
                                                   "count": len(body["one_time_keys"])})

    # -- sending ---------------------------------------------------------------------------

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

    async def send_attachment(self, room_id: str, descriptor: AttachmentDescriptor) -> str:
        """Send an uploaded file (the engine's signed descriptor) as a message of the room:
        through the outbox like a text, Megolm-encrypted. Returns its event id; the message
        shows the file's name (kept encrypted in the cache like any message)."""
        self._check_joined(room_id)
        if descriptor.room_id != room_id or descriptor.sender_device != self.device.device_id:
            raise SafeConsultError("descriptor of another room or device")
        content = Attachment(descriptor)
        chat_content.parse(chat_content.to_wire(content))
        event_id = new_event_id()
        now = _now_ms()
        async with self._lock:
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

    def _keep_attachment(self, event_id: str, descriptor: AttachmentDescriptor,
                         device_id: str) -> None:
        self.state.put(ATTACHMENT_KEY + event_id,
                       json.dumps({"file": descriptor.to_wire(), "device": device_id}))

    def attachment(self, event_id: str) -> AttachmentInfo | None:
        """The file of message ``event_id``, or None when it is not a file message."""
        raw = self.state.get(ATTACHMENT_KEY + event_id)
        message = self.messages_repo.get(event_id) if raw is not None else None
        if raw is None or message is None:
            return None
        data = json.loads(raw)
        return AttachmentInfo(message.room_id, event_id, message.sender, data["device"],
                              parse_descriptor(data["file"]))

    def attachment_sender(self, info: AttachmentInfo) -> SenderDevice:
        """The sending device as *this* device knows it, to check the descriptor against."""
        if info.sender == self.user_id and info.sender_device == self.device.device_id:
            return KnownDevice(self.user_id, self.device.device_id,
                               self.device.identity.ed25519)
        for record in self.devices(info.sender):
            if record.device_id == info.sender_device:
                return record
        raise ManifestSignatureInvalid("the sending device is not known here")

    async def export_attachment(self, files: EncryptedFileStore, file_id: str,
                                info: AttachmentInfo, path: str) -> None:
        """Decrypt a downloaded (verified) file from the encrypted store to ``path``, the
        place the user chose -- the only plaintext copy -- and audit it (``file.export``)."""

        key = files.key(file_id)  # on the loop's thread: the cache connection is not shared
        if key is None:
            raise SafeConsultError("file not downloaded", user_message=(
                "This file is no longer on this workstation. Download it again."))
        sealed = files.sealed_path(file_id)

        def write() -> None:
            try:
                with open(sealed, "rb") as src, open(path, "wb") as out:
                    for chunk in decrypt_chunks(src, key):
                        out.write(chunk)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                raise

        outcome = "failed"
        try:
            await asyncio.to_thread(write)
            outcome = "ok"
        except OSError:
            raise SafeConsultError("export failed", user_message=(
                "The file could not be saved there. Choose another place.")) from None
        finally:
            audit = self._session.audit
            if audit is not None:
                with contextlib.suppress(SafeConsultError):
                    audit.record(EXPORT_ACTION, object_type="blob",
                                 object_id=info.descriptor.blob_id, outcome=outcome,
                                 detail={"room_id": info.room_id[:128], "size": info.size})

    async def send_room_event(self, room_id: str, event_type: str,
                              content: dict[str, Any]) -> str:
        """Encrypt ``content`` as a room event of ``event_type`` (``sc.*``, not a chat
        message) in the room's Megolm channel and send it through the outbox like a message
        (kept encrypted, sent once, in order); it is not stored as a chat message. Returns
        its event id. Receivers get it on :attr:`room_event`."""
        if event_type == MESSAGE_TYPE or not event_type.startswith("sc."):
            raise ValueError("room events are sc.* types other than chat messages")
        self._check_joined(room_id)
        event_id = new_event_id()
        async with self._lock:
            members = self.state.members(room_id)
            await self._ensure_device_lists(members)
            missing = self.machine.missing_sessions(members)
            if missing:
                claim = await relay_api.claim_keys(self.transport, [d for _, d in missing])
                self.machine.receive_key_claim(claim)
            with self.cache.write(durable=False):
                self.outbox.settle()
                seq = self.outbox.queue(room_id, event_id, Phi(""), structured=True)
                share = self.machine.share_room_key(room_id, members)
                self._queue_to_device(share.messages)
                self.outbox.set_encrypted(seq, self.machine.encrypt_room_event(
                    room_id, members, event_type, content))
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
        seq = self.outbox.queue(room_id, event_id, body, structured=structured)
        if self._ready_offline(members):
            self._encrypt_now(seq, room_id, members, body, structured=structured)

    async def _after_queue(self) -> None:
        """Send what was just queued. Queueing did not wait for the disk (it advanced the
        Megolm session too: see __init__ for what a crash does to that): once the relay has
        the message, it is safe there; if it could not be sent, it is made durable now, so
        a message written offline survives a power cut until it goes out."""
        self.outbox_changed.emit(self.outbox.count())
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
            await self._send_queued_to_device()
            for item in self.outbox.pending():
                content = item.content
                if content is None:
                    assert item.body is not None
                    content = await self._encrypt(item.seq, item.room_id, item.body,
                                                  structured=item.structured)
                    await self._send_queued_to_device()  # room keys before the event
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
        if sent:
            self.outbox_changed.emit(self.outbox.count())
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
            return self._encrypt_now(seq, room_id, members, body, structured=structured)

    def _encrypt_now(self, seq: int, room_id: str, members: list[str],
                     body: Phi[str], *, structured: bool = False) -> dict[str, Any]:
        """No I/O: the room key share, its to-device messages and the ciphertext. The caller
        holds the cache transaction, so they are committed together or not at all."""
        share = self.machine.share_room_key(room_id, members)
        self._queue_to_device(share.messages)
        plain = json.loads(body.reveal()) if structured else {"msgtype": "text",
                                                                "body": body.reveal()}
        content = self.machine.encrypt_room_event(room_id, members, MESSAGE_TYPE, plain)
        self.outbox.set_encrypted(seq, content)
        if share.rotated:
            log.info("room key rotated", extra={"event": "chat_room_key_rotated",
                                                "count": len(share.messages)})
        return content

    def _queue_to_device(self, messages: Iterable[OutgoingToDevice]) -> None:
        by_type: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        for m in messages:
            by_type.setdefault(m.type, []).append(
                (m.recipient_user, m.recipient_device, m.content))
        for type_, items in by_type.items():
            self.outbox.queue_to_device("td_" + new_event_id(), type_, items)

    async def _send_queued_to_device(self) -> None:
        for batch in self.outbox.to_device():
            await relay_api.send_to_device(self.transport, batch.txn_id, batch.type,
                                           batch.messages)
            self.outbox.to_device_done(batch.seq)

    # -- receiving -------------------------------------------------------------------------

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
