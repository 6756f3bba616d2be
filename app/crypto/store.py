"""What the encryption machine persists, as a protocol, plus an in-memory store for tests.

vodozemac objects are kept as pickles (strings encrypted by vodozemac under the machine's
32-byte pickle key), so a store never holds a private key in the clear and needs no
knowledge of vodozemac. The SQLCipher-backed implementation lives in ``app.storage``.
Records are immutable; a store replaces a record as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol


class TrustLevel(StrEnum):
    """How far the caller trusts a device's keys (never the server's word alone)."""

    UNVERIFIED = "unverified"  # new or changed after we first saw its user: flagged
    TOFU = "tofu"  # present when we first saw its user (trust on first use)
    ACCEPTED = "accepted"  # the user accepted it explicitly after a warning
    VERIFIED = "verified"  # SAS-verified
    BLOCKED = "blocked"  # never receives keys, whatever the policy


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    user_id: str
    username: str
    device_id: str
    ed25519: str
    curve25519: str
    enroll_ts_ms: int
    signature: str
    trust: TrustLevel


class Recipient(NamedTuple):
    """A device a room key went (or will go) to. The curve key is part of it, so a device
    whose keys change is a different recipient and forces a rotation."""

    user_id: str
    device_id: str
    curve25519: str


@dataclass(frozen=True, slots=True)
class OlmSessionRecord:
    peer_curve25519: str
    session_id: str
    pickle: str
    created_ms: int
    last_used_ms: int


@dataclass(frozen=True, slots=True)
class OutboundGroupRecord:
    room_id: str
    session_id: str
    pickle: str
    created_ms: int
    message_count: int
    recipients: frozenset[Recipient]  # who the session is meant for (decides rotation)
    shared_with: frozenset[Recipient]  # who has been sent the key so far


@dataclass(frozen=True, slots=True)
class InboundGroupRecord:
    room_id: str
    sender_key: str  # curve25519 of the device that created the session
    session_id: str
    pickle: str
    first_known_index: int
    sender_user: str
    sender_device: str
    sender_ed25519: str
    forwarded: bool  # came from someone other than its creator: weaker authenticity


class CryptoStore(Protocol):
    def load_account(self) -> str | None: ...
    def save_account(self, pickle: str) -> None: ...

    def olm_sessions(self, peer_curve25519: str) -> list[OlmSessionRecord]:
        """All sessions with a peer device, most recently used first."""
        ...

    def save_olm_session(self, record: OlmSessionRecord) -> None: ...
    def drop_olm_session(self, peer_curve25519: str, session_id: str) -> None: ...

    def outbound_group(self, room_id: str) -> OutboundGroupRecord | None: ...
    def save_outbound_group(self, record: OutboundGroupRecord) -> None: ...
    def drop_outbound_group(self, room_id: str) -> None: ...

    def upcoming_outbound_group(self, room_id: str) -> OutboundGroupRecord | None:
        """The room's next session, made and shared ahead of the current one's rotation."""
        ...

    def save_upcoming_outbound_group(self, record: OutboundGroupRecord) -> None: ...
    def drop_upcoming_outbound_group(self, room_id: str) -> None: ...

    def inbound_group(
        self, room_id: str, sender_key: str, session_id: str,
    ) -> InboundGroupRecord | None: ...

    def inbound_group_rooms(self, sender_key: str, session_id: str) -> list[str]:
        """Rooms holding a session with this id: tells 'moved to another room' from
        'key not here yet'."""
        ...

    def save_inbound_group(self, record: InboundGroupRecord) -> None: ...

    def seen_event(self, session_id: str, index: int) -> str | None:
        """The event id first decrypted at this Megolm message index, if any.

        Keyed by session id alone (it is the session's own signing key, unique), so a
        ciphertext re-posted under another sender key is still a replay."""
        ...

    def mark_seen(self, session_id: str, index: int, event_id: str) -> str:
        """Remember ``event_id`` at this index unless another is there already; returns the
        one there now (the first writer wins: a later event id at the same index is the
        replay). One statement per message where a look-up and an insert would be two."""
        ...

    def user_devices(self, user_id: str) -> dict[str, DeviceRecord] | None:
        """The caller's view of a user's devices; None if the user was never seen."""
        ...

    def save_user_devices(self, user_id: str, devices: Mapping[str, DeviceRecord]) -> None: ...
    def device_by_curve(self, curve25519: str) -> DeviceRecord | None: ...


class MemoryCryptoStore:
    """A dict-backed :class:`CryptoStore` (tests, and kiosk sessions that keep nothing)."""

    def __init__(self) -> None:
        self._account: str | None = None
        self._olm: dict[str, dict[str, OlmSessionRecord]] = {}
        self._outbound: dict[str, OutboundGroupRecord] = {}
        self._upcoming: dict[str, OutboundGroupRecord] = {}
        self._inbound: dict[tuple[str, str, str], InboundGroupRecord] = {}
        self._seen: dict[tuple[str, int], str] = {}
        self._devices: dict[str, dict[str, DeviceRecord]] = {}

    def load_account(self) -> str | None:
        return self._account

    def save_account(self, pickle: str) -> None:
        self._account = pickle

    def olm_sessions(self, peer_curve25519: str) -> list[OlmSessionRecord]:
        records = self._olm.get(peer_curve25519, {}).values()
        return sorted(records, key=lambda r: r.last_used_ms, reverse=True)

    def save_olm_session(self, record: OlmSessionRecord) -> None:
        self._olm.setdefault(record.peer_curve25519, {})[record.session_id] = record

    def drop_olm_session(self, peer_curve25519: str, session_id: str) -> None:
        self._olm.get(peer_curve25519, {}).pop(session_id, None)

    def outbound_group(self, room_id: str) -> OutboundGroupRecord | None:
        return self._outbound.get(room_id)

    def save_outbound_group(self, record: OutboundGroupRecord) -> None:
        self._outbound[record.room_id] = record

    def drop_outbound_group(self, room_id: str) -> None:
        self._outbound.pop(room_id, None)

    def upcoming_outbound_group(self, room_id: str) -> OutboundGroupRecord | None:
        return self._upcoming.get(room_id)

    def save_upcoming_outbound_group(self, record: OutboundGroupRecord) -> None:
        self._upcoming[record.room_id] = record

    def drop_upcoming_outbound_group(self, room_id: str) -> None:
        self._upcoming.pop(room_id, None)

    def inbound_group(
        self, room_id: str, sender_key: str, session_id: str,
    ) -> InboundGroupRecord | None:
        return self._inbound.get((room_id, sender_key, session_id))

    def inbound_group_rooms(self, sender_key: str, session_id: str) -> list[str]:
        return [r for (r, k, s) in self._inbound if (k, s) == (sender_key, session_id)]

    def save_inbound_group(self, record: InboundGroupRecord) -> None:
        self._inbound[(record.room_id, record.sender_key, record.session_id)] = record

    def seen_event(self, session_id: str, index: int) -> str | None:
        return self._seen.get((session_id, index))

    def mark_seen(self, session_id: str, index: int, event_id: str) -> str:
        return self._seen.setdefault((session_id, index), event_id)

    def user_devices(self, user_id: str) -> dict[str, DeviceRecord] | None:
        devices = self._devices.get(user_id)
        return None if devices is None else dict(devices)

    def save_user_devices(self, user_id: str, devices: Mapping[str, DeviceRecord]) -> None:
        self._devices[user_id] = dict(devices)

    def device_by_curve(self, curve25519: str) -> DeviceRecord | None:
        for devices in self._devices.values():
            for record in devices.values():
                if record.curve25519 == curve25519:
                    return record
        return None
