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

The service is one class assembled from focused parts: this module (life cycle, the loops,
rooms and membership, reading, attachments), ``chat_sending`` (outbox, encrypting, posting),
``chat_receiving`` (push and sync), ``chat_devices`` (device lists, trust, verification,
one-time keys) and ``chat_features`` (receipts, urgent, presence, retention).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal

from app.core.chat import (
    ENCRYPTED_EVENT,
    MEMBER_EVENT,
    ChatMessage,
    RoomEvent,
    RoomSummary,
    UndecryptedEvent,
)
from app.core.errors import ConnectionFailed, SafeConsultError
from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.crypto.devices import TrustPolicy
from app.crypto.files import decrypt_chunks
from app.crypto.identity import DeviceIdentity
from app.crypto.machine import CryptoMachine
from app.crypto.megolm import RotationPolicy
from app.net import relay_api
from app.net.events import Closed, push_frames
from app.net.transport import Transport
from app.services import chat_content
from app.services.chat_content import new_event_id  # noqa: F401 (re-exported)
from app.services.chat_devices import ChatDevices
from app.services.chat_features import RECEIPT_INTERVAL_S, URGENT_RENOTIFY_S, ChatFeatures
from app.services.chat_receiving import (  # noqa: F401 (re-exported: the service's types)
    MISSING_KEY,
    PUSH_SYNC_DELAY_S,
    WAITING_TEXT,
    ChatReceiving,
    RoomEventReceived,
    _Applied,
    _reason_texts,
)
from app.services.chat_sending import (  # noqa: F401 (re-exported: the service's types)
    PERMANENT_REFUSALS,
    ChatSending,
    SendFailed,
)
from app.services.session import LIVE_STATES, SessionService
from app.services.transfers.descriptor import (
    AttachmentDescriptor,
    KnownDevice,
    SenderDevice,
    parse_descriptor,
)
from app.services.transfers.errors import ManifestSignatureInvalid
from app.storage.chat_state import ChatState
from app.storage.crypto_store import SqlCryptoStore
from app.storage.files import EncryptedFileStore
from app.storage.messages import MessageMeta, MessageRepository
from app.storage.outbox import Outbox

log = logging.getLogger(__name__)

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


class ChatService(ChatSending, ChatReceiving, ChatDevices, ChatFeatures):
    message = Signal(object)  # ChatMessage: new in a room (also our own, as composed)
    undecryptable = Signal(object)  # UndecryptedEvent: kept, not shown (waiting or rejected)
    device_warning = Signal(object)  # DeviceWarning: a contact's device appeared or changed
    rooms_changed = Signal()
    # user id: our view of that user's devices changed (accepted, blocked, or a directory
    # refresh found devices added, removed or with new keys); calls re-check their links
    devices_changed = Signal(str)
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
        self._held: dict[str, RoomEvent] = {}  # pushed before their key: event id -> event
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

    def search(self, keyword: str, *, room_id: str | None = None,
               limit: int = 50) -> list[ChatMessage]:
        """Search the local, decrypted history (FTS index in the encrypted cache), newest
        first. Nothing leaves the device."""
        return [ChatMessage(m.room_id, m.event_id, m.sender, m.ts_ms, m.body)
                for m in self.messages_repo.search(keyword, room_id=room_id, limit=limit)]

    # -- sending ---------------------------------------------------------------------------

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

    # -- receiving -------------------------------------------------------------------------
