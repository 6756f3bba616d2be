"""Megolm: one outbound group session per room, inbound sessions per (room, sender, id).

Room-event plaintext carries its ``room_id`` and ``type`` inside the encryption, so a relay
that copies a ciphertext into another room is caught (:class:`WrongRoom`). Each decrypted
(session, message index) is remembered with its event id: the same index under another
event id is a replay. A ciphertext whose key has not arrived yet is not an error but a
:class:`MissingRoomKey` result the caller keeps and retries.
"""

from __future__ import annotations

import binascii
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import vodozemac

from app.core.phi import Phi
from app.crypto.errors import (
    DecryptionFailed,
    MalformedPayload,
    ReplayedMessage,
    StoreError,
    WrongRoom,
    vodozemac_detail,
)
from app.crypto.identity import b64, unb64
from app.crypto.messages import (
    MEGOLM_V1,
    canonical_json,
    get_b64,
    get_key,
    get_object,
    get_str,
    parse_object,
)
from app.crypto.store import (
    CryptoStore,
    DeviceRecord,
    InboundGroupRecord,
    OutboundGroupRecord,
    Recipient,
    TrustLevel,
)


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """When an outbound session is replaced even if the recipients did not change."""

    max_messages: int = 100
    max_age_ms: int = 7 * 24 * 3600 * 1000
    # The next session is made and its key sent this many messages (or this long) before
    # the limit, so that the first message under it finds its key at every receiver already
    # rather than waiting there for a sync to bring it (docs/e2ee.md, "Rotation").
    ahead_messages: int = 10
    ahead_ms: int = 3600 * 1000


@dataclass(frozen=True, slots=True)
class MissingRoomKey:
    """The key for this event is not here (yet): keep the event and retry when keys arrive."""

    room_id: str
    event_id: str
    sender_key: str
    session_id: str


@dataclass(frozen=True, slots=True)
class DecryptedRoomEvent:
    room_id: str
    event_id: str
    type: str
    content: Phi[dict[str, Any]]  # patient data: never shows in repr or logs
    sender_user: str
    sender_device: str
    sender_key: str
    message_index: int
    forwarded: bool  # key came via a forward: sender authenticity rests on the forwarder
    # the caller's current trust in the sending device; None if it is no longer in the view
    sender_trust: TrustLevel | None = None


@dataclass(frozen=True, slots=True)
class RoomKey:
    """A room key as carried inside Olm (``sc.room_key`` / ``sc.forwarded_room_key``)."""

    room_id: str
    session_id: str
    session_key: str = field(repr=False)


class LiveSessions:
    """Group sessions kept open between messages, so that each message does not unpickle
    its session again (about a third of what vodozemac costs per message).

    Keyed by the pickle a session was opened from or last saved as: a record whose pickle
    is not here (a rolled-back transaction brings an older one back) is opened from its
    pickle as before, so the memory can never stand for a state the store does not hold.
    An outbound session changes as it encrypts, so it is *taken* out and put back under
    its new pickle; an inbound one only decrypts. One per :class:`CryptoMachine`, which
    holds the pickle key anyway: the open sessions go with it at sign-out.
    """

    def __init__(self, limit: int = 64) -> None:
        self._limit = limit
        self._outbound: OrderedDict[str, vodozemac.GroupSession] = OrderedDict()
        self._inbound: OrderedDict[str, vodozemac.InboundGroupSession] = OrderedDict()

    def take_outbound(self, pickle: str) -> vodozemac.GroupSession | None:
        return self._outbound.pop(pickle, None)

    def keep_outbound(self, pickle: str, session: vodozemac.GroupSession) -> None:
        self._keep(self._outbound, pickle, session)

    def inbound(self, pickle: str) -> vodozemac.InboundGroupSession | None:
        session = self._inbound.get(pickle)
        if session is not None:
            self._inbound.move_to_end(pickle)
        return session

    def keep_inbound(self, pickle: str, session: vodozemac.InboundGroupSession) -> None:
        self._keep(self._inbound, pickle, session)

    def _keep(self, kept: OrderedDict, pickle: str, session: Any) -> None:
        kept[pickle] = session
        kept.move_to_end(pickle)
        while len(kept) > self._limit:
            kept.popitem(last=False)


# --- outbound ----------------------------------------------------------------------------


def new_outbound(
    room_id: str, recipients: frozenset[Recipient], now_ms: int, pickle_key: bytes,
    live: LiveSessions | None = None,
) -> OutboundGroupRecord:
    session = vodozemac.GroupSession()
    record = OutboundGroupRecord(
        room_id=room_id,
        session_id=session.session_id,
        pickle=session.pickle(pickle_key),
        created_ms=now_ms,
        message_count=0,
        recipients=recipients,
        shared_with=frozenset(),
    )
    if live is not None:
        live.keep_outbound(record.pickle, session)
    return record


def is_expired(record: OutboundGroupRecord, policy: RotationPolicy, now_ms: int) -> bool:
    return (
        record.message_count >= policy.max_messages
        or now_ms - record.created_ms >= policy.max_age_ms
        or now_ms < record.created_ms  # clock went back: do not trust the age
    )


def is_due_soon(record: OutboundGroupRecord, policy: RotationPolicy, now_ms: int) -> bool:
    """Whether the session is close enough to its limit for the next one's key to go out."""
    return (
        record.message_count + policy.ahead_messages >= policy.max_messages
        or now_ms - record.created_ms + policy.ahead_ms >= policy.max_age_ms
        or now_ms < record.created_ms
    )


def room_key_content(
    record: OutboundGroupRecord, pickle_key: bytes, live: LiveSessions | None = None,
) -> dict[str, Any]:
    """The ``sc.room_key`` content for the session at its current index."""
    session = _open_outbound(record, pickle_key, live)
    if live is not None:
        live.keep_outbound(record.pickle, session)  # unchanged: reading its key moves nothing
    return {
        "algorithm": MEGOLM_V1,
        "room_id": record.room_id,
        "session_id": session.session_id,
        "session_key": session.session_key.to_base64(),
    }


def encrypt(
    record: OutboundGroupRecord,
    pickle_key: bytes,
    sender_key: str,
    event_type: str,
    content: dict[str, Any],
    live: LiveSessions | None = None,
) -> tuple[OutboundGroupRecord, dict[str, Any]]:
    """Encrypt one room event; returns the advanced record and the ``sc.encrypted`` content."""
    session = _open_outbound(record, pickle_key, live)
    plaintext = canonical_json({"room_id": record.room_id, "type": event_type, "content": content})
    message = session.encrypt(plaintext)
    envelope = {
        "algorithm": MEGOLM_V1,
        "sender_key": sender_key,
        "session_id": session.session_id,
        "ciphertext": b64(message.to_bytes()),
    }
    advanced = replace(
        record, pickle=session.pickle(pickle_key), message_count=record.message_count + 1,
    )
    if live is not None:
        live.keep_outbound(advanced.pickle, session)
    return advanced, envelope


# --- inbound -----------------------------------------------------------------------------


def parse_room_key(content: dict[str, Any]) -> RoomKey:
    if get_str(content, "algorithm") != MEGOLM_V1:
        raise MalformedPayload("room key for an unknown algorithm")
    return RoomKey(
        get_str(content, "room_id"),
        get_str(content, "session_id"),
        get_b64(content, "session_key"),
    )


def inbound_from_room_key(
    key: RoomKey, creator: DeviceRecord, pickle_key: bytes,
) -> InboundGroupRecord:
    """An inbound session from a key its creator sent us over Olm."""
    try:
        session = vodozemac.InboundGroupSession(vodozemac.SessionKey(key.session_key))
    except (ValueError, TypeError) as exc:
        raise MalformedPayload(f"room key unusable ({vodozemac_detail(exc)})") from None
    return _inbound_record(key, session, creator, pickle_key, forwarded=False)


def inbound_from_export(
    key: RoomKey, creator: DeviceRecord, pickle_key: bytes, *, forwarded: bool,
) -> InboundGroupRecord:
    """An inbound session from an exported key (forwarded by a trusted device, or re-sent
    by its creator on request: then ``forwarded`` is False)."""
    try:
        session = vodozemac.InboundGroupSession.import_session(
            vodozemac.ExportedSessionKey(key.session_key)
        )
    except (ValueError, TypeError) as exc:
        raise MalformedPayload(f"forwarded key unusable ({vodozemac_detail(exc)})") from None
    return _inbound_record(key, session, creator, pickle_key, forwarded=forwarded)


def export_at_first_index(record: InboundGroupRecord, pickle_key: bytes) -> str:
    session = _open_inbound(record, pickle_key)
    exported = session.export_at(record.first_known_index)
    if exported is None:  # cannot happen for the session's own first index
        raise StoreError("inbound session cannot export its first index")
    return exported.to_base64()


def outbound_as_inbound(
    record: OutboundGroupRecord, creator: DeviceRecord, pickle_key: bytes,
    live: LiveSessions | None = None,
) -> InboundGroupRecord:
    """Our own session, so that we can read back what we sent."""
    key = room_key_content(record, pickle_key, live)
    return inbound_from_room_key(
        RoomKey(record.room_id, key["session_id"], key["session_key"]), creator, pickle_key,
    )


def better_of(old: InboundGroupRecord | None, new: InboundGroupRecord) -> InboundGroupRecord:
    """Keep the session that decrypts more; never let a forward downgrade a direct key."""
    if old is None:
        return new
    if new.first_known_index < old.first_known_index:
        return new
    if new.first_known_index == old.first_known_index and old.forwarded and not new.forwarded:
        return new
    return old


def decrypt(
    store: CryptoStore, pickle_key: bytes, room_id: str, event_id: str, envelope: dict[str, Any],
    live: LiveSessions | None = None,
) -> DecryptedRoomEvent | MissingRoomKey:
    if get_str(envelope, "algorithm") != MEGOLM_V1:
        raise MalformedPayload("not a Megolm payload")
    sender_key = get_key(envelope, "sender_key")
    session_id = get_str(envelope, "session_id", max_len=64)
    raw = unb64(get_b64(envelope, "ciphertext"))
    try:
        message = vodozemac.MegolmMessage.from_bytes(raw)
    except (ValueError, TypeError) as exc:
        raise MalformedPayload(f"Megolm message undecodable ({vodozemac_detail(exc)})") from None
    # vodozemac checks MAC and signature over its own re-encoding of the parsed fields, so
    # a non-canonical spelling (say, an unknown protobuf tag in place of the index) would
    # still decrypt. Only the exact bytes a sender produces are accepted.
    if message.to_bytes() != raw:
        raise DecryptionFailed("Megolm message is not canonically encoded")
    missing = MissingRoomKey(room_id, event_id, sender_key, session_id)
    record = store.inbound_group(room_id, sender_key, session_id)
    if record is None:
        if store.inbound_group_rooms(sender_key, session_id):
            raise WrongRoom("ciphertext belongs to another room's session")
        return missing
    index = message.message_index()
    if index < record.first_known_index:
        return missing  # we only hold a later part of the ratchet; an earlier key may come
    try:
        decrypted = _open_inbound(record, pickle_key, live).decrypt(message)
    except (ValueError, TypeError) as exc:
        raise DecryptionFailed(f"Megolm message rejected ({vodozemac_detail(exc)})") from None
    try:
        payload = parse_object(decrypted.plaintext)
    except MalformedPayload:
        raise MalformedPayload("decrypted room event is not a JSON object") from None
    if get_str(payload, "room_id") != room_id:
        raise WrongRoom("room event was encrypted for another room")
    event_type, content = get_str(payload, "type"), get_object(payload, "content")
    if store.mark_seen(session_id, decrypted.message_index, event_id) != event_id:
        raise ReplayedMessage("Megolm message index already used by another event")
    return DecryptedRoomEvent(
        room_id=room_id,
        event_id=event_id,
        type=event_type,
        content=Phi(content),
        sender_user=record.sender_user,
        sender_device=record.sender_device,
        sender_key=sender_key,
        message_index=decrypted.message_index,
        forwarded=record.forwarded,
    )


# --- internals ---------------------------------------------------------------------------


def _inbound_record(
    key: RoomKey,
    session: vodozemac.InboundGroupSession,
    creator: DeviceRecord,
    pickle_key: bytes,
    *,
    forwarded: bool,
) -> InboundGroupRecord:
    if session.session_id != key.session_id:
        raise MalformedPayload("room key does not match its session id")
    return InboundGroupRecord(
        room_id=key.room_id,
        sender_key=creator.curve25519,
        session_id=session.session_id,
        pickle=session.pickle(pickle_key),
        first_known_index=session.first_known_index,
        sender_user=creator.user_id,
        sender_device=creator.device_id,
        sender_ed25519=creator.ed25519,
        forwarded=forwarded,
    )


def _open_outbound(
    record: OutboundGroupRecord, pickle_key: bytes, live: LiveSessions | None = None,
) -> vodozemac.GroupSession:
    """The record's session; taken out of ``live`` if there (the caller puts it back)."""
    session = live.take_outbound(record.pickle) if live is not None else None
    if session is not None:
        return session
    try:
        return vodozemac.GroupSession.from_pickle(record.pickle, pickle_key)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise StoreError(f"outbound group pickle ({vodozemac_detail(exc)})") from None


def _open_inbound(
    record: InboundGroupRecord, pickle_key: bytes, live: LiveSessions | None = None,
) -> vodozemac.InboundGroupSession:
    session = live.inbound(record.pickle) if live is not None else None
    if session is not None:
        return session
    try:
        session = vodozemac.InboundGroupSession.from_pickle(record.pickle, pickle_key)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise StoreError(f"inbound group pickle ({vodozemac_detail(exc)})") from None
    if live is not None:
        live.keep_inbound(record.pickle, session)
    return session
