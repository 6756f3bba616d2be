"""Room keys arriving, forwarded and asked for (docs/e2ee.md, "Olm payload types").

Rules in one place: a room key authenticates only the device that sent it; a forwarded key
is taken from its creator or from our own trusted devices; a key request is answered only
to a device entitled to the key, and the answer is encrypted to the device key *we* know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from app.crypto import megolm
from app.crypto.errors import DeviceKeysInvalid
from app.crypto.megolm import MissingRoomKey
from app.crypto.messages import (
    ENCRYPTED,
    FORWARDED_ROOM_KEY,
    MEGOLM_V1,
    ROOM_KEY_REQUEST,
    OutgoingToDevice,
    get_key,
    get_str,
)
from app.crypto.olm import LocalDevice, OlmChannel
from app.crypto.store import (
    CryptoStore,
    DeviceRecord,
    InboundGroupRecord,
    Recipient,
    TrustLevel,
)


@dataclass(frozen=True, slots=True)
class RoomKeyReceived:
    """A room key arrived: retry the events that gave :class:`MissingRoomKey` for it."""

    room_id: str
    session_id: str
    sender_key: str
    sender_user: str
    sender_device: str
    forwarded: bool


@dataclass(frozen=True, slots=True)
class KeyRequestAnswer:
    """What we did with another device's ``sc.room_key_request``."""

    outgoing: list[OutgoingToDevice]  # the forwarded key, if we give it
    # "forwarded", or why not: "not_entitled", "unknown_session", "no_session" (no Olm
    # session with the requester yet: claim a key for it and feed the request again)
    outcome: str


class RoomKeys:
    def __init__(
        self,
        local: LocalDevice,
        store: CryptoStore,
        pickle_key: bytes,
        olm: OlmChannel,
        allowed: Callable[[DeviceRecord], bool],
    ) -> None:
        self._local = local
        self._store = store
        self._key = pickle_key
        self._olm = olm
        self._allowed = allowed

    # --- arriving ------------------------------------------------------------------------

    def receive_room_key(self, sender: DeviceRecord, content: dict[str, Any]) -> RoomKeyReceived:
        key = megolm.parse_room_key(content)
        self._keep(megolm.inbound_from_room_key(key, sender, self._key))
        return RoomKeyReceived(key.room_id, key.session_id, sender.curve25519, sender.user_id,
                               sender.device_id, forwarded=False)

    def receive_forwarded(
        self, forwarder: DeviceRecord, content: dict[str, Any],
    ) -> RoomKeyReceived:
        key = megolm.parse_room_key(content)
        creator_key = get_key(content, "sender_key")
        # From the session's creator itself (answering our request) it is as good as a room
        # key: Olm authenticated the creator. Otherwise forwards are taken from our own
        # trusted devices only: anyone else could claim it is a colleague's session.
        if creator_key == forwarder.curve25519:
            self._keep(megolm.inbound_from_export(key, forwarder, self._key, forwarded=False))
            return RoomKeyReceived(key.room_id, key.session_id, creator_key,
                                   forwarder.user_id, forwarder.device_id, forwarded=False)
        if forwarder.user_id != self._local.user_id or not self._allowed(forwarder):
            raise DeviceKeysInvalid("room key forwarded by a device we do not trust for it")
        creator = self._store.device_by_curve(creator_key) or DeviceRecord(
            user_id=get_str(content, "sender_user"),
            username="",
            device_id=get_str(content, "sender_device"),
            ed25519=get_key(content, "sender_ed25519"),
            curve25519=creator_key,
            enroll_ts_ms=0,
            signature="",
            trust=TrustLevel.UNVERIFIED,
        )
        self._keep(megolm.inbound_from_export(key, creator, self._key, forwarded=True))
        return RoomKeyReceived(key.room_id, key.session_id, creator_key, creator.user_id,
                               creator.device_id, forwarded=True)

    # --- asking and answering ------------------------------------------------------------

    def request(
        self, missing: MissingRoomKey, own_devices: Iterable[DeviceRecord],
    ) -> list[OutgoingToDevice]:
        content = {
            "room_id": missing.room_id,
            "sender_key": missing.sender_key,
            "session_id": missing.session_id,
        }
        targets = {(r.user_id, r.device_id) for r in own_devices if self._allowed(r)}
        creator = self._store.device_by_curve(missing.sender_key)
        if creator is not None and creator.trust is not TrustLevel.BLOCKED:
            targets.add((creator.user_id, creator.device_id))
        return [
            OutgoingToDevice(user, device, ROOM_KEY_REQUEST, dict(content))
            for user, device in sorted(targets)
        ]

    def answer(self, requester: DeviceRecord | None, content: dict[str, Any]) -> KeyRequestAnswer:
        # The relay vouches for the requester's identity, so it could forge a request; the
        # answer is Olm-encrypted to the requester's known device key, so a forgery yields
        # nothing it can read. Entitlement is decided here, never by the request.
        room_id = get_str(content, "room_id")
        sender_key = get_key(content, "sender_key")
        session_id = get_str(content, "session_id", max_len=64)
        if requester is None or not self._allowed(requester):
            return KeyRequestAnswer([], "not_entitled")
        record = self._store.inbound_group(room_id, sender_key, session_id)
        if record is None:
            return KeyRequestAnswer([], "unknown_session")
        if not self._entitled(requester, record):
            return KeyRequestAnswer([], "not_entitled")
        if not self._olm.has_session(requester.curve25519):
            return KeyRequestAnswer([], "no_session")
        return KeyRequestAnswer([self.forward(record, requester)], "forwarded")

    def forward(self, record: InboundGroupRecord, target: DeviceRecord) -> OutgoingToDevice:
        content = {
            "algorithm": MEGOLM_V1,
            "room_id": record.room_id,
            "session_id": record.session_id,
            "session_key": megolm.export_at_first_index(record, self._key),
            "sender_key": record.sender_key,
            "sender_user": record.sender_user,
            "sender_device": record.sender_device,
            "sender_ed25519": record.sender_ed25519,
        }
        envelope = self._olm.encrypt(target, FORWARDED_ROOM_KEY, content)
        return OutgoingToDevice(target.user_id, target.device_id, ENCRYPTED, envelope)

    # --- internals -----------------------------------------------------------------------

    def _entitled(self, requester: DeviceRecord, record: InboundGroupRecord) -> bool:
        """Our own allowed devices may have any key we hold; anyone else only a key of our
        current session for the room, and only if the session was made for them."""
        if requester.user_id == self._local.user_id:
            return True
        if record.sender_key != self._local.curve25519:
            return False
        outbound = self._store.outbound_group(record.room_id)
        return (
            outbound is not None
            and outbound.session_id == record.session_id
            and Recipient(requester.user_id, requester.device_id, requester.curve25519)
            in outbound.recipients
        )

    def _keep(self, new: InboundGroupRecord) -> None:
        old = self._store.inbound_group(new.room_id, new.sender_key, new.session_id)
        best = megolm.better_of(old, new)
        if best is not old:
            self._store.save_inbound_group(best)
