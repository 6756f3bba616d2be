"""Secure-chat domain types: rooms, members, relay events and sync batches.

Relay content is opaque here (ciphertext envelopes as parsed JSON); only the chat service
and the encryption machine look inside. Decrypted text appears only as :class:`Phi`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.core.phi import Phi

MEMBER_EVENT = "sc.room.member"  # written by the server on every membership change
ENCRYPTED_EVENT = "sc.encrypted"
MESSAGE_TYPE = "sc.message"  # the plaintext type of a chat message inside sc.encrypted
# Set by app.net.relay_api on a timeline entry that did not parse (never a wire type).
UNREADABLE_EVENT = "sc.client.unreadable"


@dataclass(frozen=True, slots=True)
class Room:
    """A room as the relay lists it for the caller."""

    room_id: str
    creator: str
    created_ms: int
    membership_version: int
    role: str
    state: str  # "invited" | "joined"
    expires_ms: int | None


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    role: str
    state: str  # "invited" | "joined"
    since_ms: int
    expires_ms: int | None


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """A timeline entry as the relay delivers it; ``content`` is the opaque JSON object."""

    pos: int
    room_id: str
    event_id: str
    type: str
    sender: str
    sender_device: str | None
    origin_ms: int
    content: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class ToDeviceEvent:
    pos: int
    sender: str
    sender_device: str
    type: str
    content: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class SyncBatch:
    next_token: str
    limited: bool  # more is waiting: sync again at once
    events: list[RoomEvent]
    to_device: list[ToDeviceEvent]


@dataclass(frozen=True, slots=True)
class PostResult:
    event_id: str
    pos: int
    duplicate: bool  # the relay already had this event id (a retry): stored once


@dataclass(frozen=True, slots=True)
class KeyCounts:
    one_time_key_count: int
    has_fallback_key: bool


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A user's device list as the key directory gives it (entries still unverified)."""

    user_id: str
    username: str
    device_list_version: int
    devices: list[dict[str, Any]] = field(repr=False)


class EventState(StrEnum):
    """What became of a room event this device could not show."""

    WAITING_FOR_KEY = "waiting_for_key"  # kept; retried when its room key arrives
    REJECTED = "rejected"  # tampered, replayed, misdirected: kept with the reason, never shown


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A message ready for display. ``body`` is patient data."""

    room_id: str
    event_id: str
    sender: str
    ts_ms: int
    body: Phi[str]
    pending: bool = False  # composed here, not yet accepted by the relay
    reply_to: str | None = None  # the event id this message answers
    edited: bool = False  # the author changed it (``body`` is the latest text)
    recalled: bool = False  # the author deleted it for everyone (``body`` is empty)
    urgent: bool = False  # re-notifies until acknowledged
    acknowledged: bool = False  # urgent and acknowledged by us (another's) / by anyone (ours)


@dataclass(frozen=True, slots=True)
class UndecryptedEvent:
    room_id: str
    event_id: str
    sender: str
    origin_ms: int
    state: EventState
    reason: str  # error class name or "missing_room_key"; never content
    user_message: str


@dataclass(frozen=True, slots=True)
class RoomSummary:
    room_id: str
    state: str  # "invited" | "joined" | "left"
    members: tuple[str, ...]  # joined members as this device knows them
    unread: int
    last_ts_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """How far one of our own messages got with the room's other members (receipts)."""

    state: str  # "sent" | "delivered" (every other member has it) | "read" (every one read it)
    delivered: int  # other members whose device has it
    read: int  # other members who read it
    others: int  # other joined members


@dataclass(frozen=True, slots=True)
class Notification:
    """A message of another member that should get the user's attention now."""

    room_id: str
    event_id: str
    sender: str
    urgent: bool
    repeat: bool = False  # an urgent message not acknowledged yet, notified again
