"""The sans-I/O end-to-end encryption machine of one device (docs/e2ee.md).

It takes plain dicts the transport received and returns plain dicts for the transport to
send; it never does I/O. Trust comes only from the caller: the device lists it fed in (each
entry self-signed), the members it names for a room, and the devices its user accepted or
verified. Keys go to nobody else, whatever the relay says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import vodozemac

from app.core.phi import Phi
from app.crypto import megolm
from app.crypto.devices import (
    DeviceWarning,
    TrustPolicy,
    may_receive_keys,
    merge_device_list,
)
from app.crypto.errors import (
    DeviceKeysInvalid,
    MalformedPayload,
    NoOlmSession,
    RoomKeyNotShared,
    StoreError,
    UnknownSenderDevice,
    vodozemac_detail,
)
from app.crypto.identity import DeviceIdentity, verify_ed25519
from app.crypto.megolm import DecryptedRoomEvent, MissingRoomKey, RotationPolicy
from app.crypto.messages import (
    ENCRYPTED,
    FORWARDED_ROOM_KEY,
    ROOM_KEY,
    ROOM_KEY_REQUEST,
    VERIFICATION_TYPES,
    OutgoingToDevice,
    get_b64,
    get_key,
    get_str,
    one_time_key_message,
    parse_object,
    require_object,
)
from app.crypto.olm import LocalDevice, OlmChannel
from app.crypto.room_keys import KeyRequestAnswer, RoomKeyReceived, RoomKeys
from app.crypto.sas import Party, SasVerification
from app.crypto.store import (
    CryptoStore,
    DeviceRecord,
    OutboundGroupRecord,
    Recipient,
    TrustLevel,
)
from app.crypto.verification import Verifications, VerificationUpdate


@dataclass(frozen=True, slots=True)
class RoomKeyShare:
    """What ``share_room_key`` decided. Send ``messages`` before the room event."""

    messages: list[OutgoingToDevice]
    rotated: bool
    # allowed devices with no Olm session yet: claim keys, ``receive_key_claim``, share again
    missing_sessions: list[tuple[str, str]]
    # devices of members that get nothing, with their trust level (flagged, blocked, ...)
    withheld: list[tuple[str, str, TrustLevel]]
    # members whose device list was never fed in: fetch it first
    unknown_users: list[str]
    # the next session's key, sent before the rotation: may go after the room event
    ahead: list[OutgoingToDevice] = field(default_factory=list)
    # the rotation took over the session whose key went ahead: any of its key messages
    # still queued are needed before this event now
    promoted: bool = False


@dataclass(frozen=True, slots=True)
class DecryptedToDevice:
    """An Olm payload of a type the machine does not handle itself (for other services)."""

    sender_user: str
    sender_device: str
    type: str
    content: Phi[dict[str, Any]] = field(repr=False)


ToDeviceResult = RoomKeyReceived | VerificationUpdate | DecryptedToDevice | KeyRequestAnswer


class CryptoMachine:
    def __init__(
        self,
        identity: DeviceIdentity,
        user_id: str,
        username: str,
        store: CryptoStore,
        pickle_key: bytes,
        *,
        trust_policy: TrustPolicy = TrustPolicy.TOFU,
        rotation: RotationPolicy | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if len(pickle_key) != 32:
            raise ValueError("pickle key must be 32 bytes")
        self._identity = identity
        self._account = identity.account
        self._store = store
        self._key = pickle_key
        self._live = megolm.LiveSessions()
        self.trust_policy = trust_policy
        self.rotation = rotation or RotationPolicy()
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.local = LocalDevice(user_id, identity.device_id, identity.ed25519,
                                 identity.curve25519)
        self.username = username
        self._olm = OlmChannel(self._account, self.local, store, pickle_key, self._clock_ms,
                               self._save_account)
        self._claims: dict[str, str] = {}  # device id -> user id we asked the server about
        self._room_keys = RoomKeys(self.local, store, pickle_key, self._olm, self._allowed)
        self._verifications = Verifications(
            Party(user_id, identity.device_id, identity.ed25519),
            lambda user, device: self.devices(user).get(device),
            self._mark_verified,
        )
        self._save_account()

    @classmethod
    def load(
        cls,
        device_id: str,
        user_id: str,
        username: str,
        store: CryptoStore,
        pickle_key: bytes,
        **options: Any,
    ) -> CryptoMachine:
        """Reopen a machine from its store. The store's account pickle is the current one:
        it alone knows which one-time keys are spent, so never restart from an older copy."""
        pickled = store.load_account()
        if pickled is None:
            raise StoreError("no account in the crypto store")
        identity = DeviceIdentity.unpickle(device_id, pickled, pickle_key)
        return cls(identity, user_id, username, store, pickle_key, **options)

    # --- own keys ------------------------------------------------------------------------

    def keys_for_upload(self, one_time_keys: int) -> dict[str, Any]:
        """A key upload body: ``one_time_keys`` new signed keys and a fallback key if none is
        unpublished. Call :meth:`mark_keys_published` once the server took it."""
        if one_time_keys > 0:
            self._account.generate_one_time_keys(one_time_keys)
        # The bindings have fallback keys; their 0.10 type stubs do not list them.
        account: Any = self._account
        if not account.fallback_key:
            account.generate_fallback_key()
        self._save_account()
        signed = [self._signed_key(k, v) for k, v in account.one_time_keys.items()]
        fallback = [self._signed_key(k, v) for k, v in account.fallback_key.items()]
        return {"one_time_keys": signed, "fallback_key": fallback[0] if fallback else None}

    def mark_keys_published(self) -> None:
        self._account.mark_keys_as_published()
        self._save_account()

    # --- device lists --------------------------------------------------------------------

    def update_device_list(
        self, user_id: str, username: str, devices: Iterable[Any],
    ) -> list[DeviceWarning]:
        """Feed a directory answer for one user; returns what the user should be told."""
        known = self._store.user_devices(user_id)
        skip = self.local.device_id if user_id == self.local.user_id else None
        merged, warnings = merge_device_list(user_id, username, known, devices, skip_device=skip)
        self._store.save_user_devices(user_id, merged)
        return warnings

    def devices(self, user_id: str) -> dict[str, DeviceRecord]:
        return self._store.user_devices(user_id) or {}

    def accept_device(self, user_id: str, device_id: str, ed25519: str) -> None:
        """The user accepted a flagged device after seeing ``ed25519`` (its fingerprint)."""
        self._set_trust(user_id, device_id, ed25519, TrustLevel.ACCEPTED)

    def block_device(self, user_id: str, device_id: str) -> None:
        record = self._device(user_id, device_id)
        self._set_trust(user_id, device_id, record.ed25519, TrustLevel.BLOCKED)

    # --- Olm sessions --------------------------------------------------------------------

    def missing_sessions(self, user_ids: Iterable[str]) -> list[tuple[str, str]]:
        """Allowed devices of these users with no Olm session: the key claim to make."""
        missing = []
        for user_id in user_ids:
            for record in self.devices(user_id).values():
                if self._allowed(record) and not self._olm.has_session(record.curve25519):
                    missing.append((user_id, record.device_id))
                    self._claims[record.device_id] = user_id
        return missing

    def receive_key_claim(self, response: Any) -> list[str]:
        """Feed a claim answer (``{"keys": {device_id: {key_id, key, signature, ...}}}``).

        Only devices we asked about are used; a key must be signed by the device as we know
        it. Returns the device ids whose key was refused."""
        keys = require_object(_as_object(response).get("keys"), "claim keys")
        refused = []
        for device_id, claimed in keys.items():
            user_id = self._claims.get(device_id)
            record = self.devices(user_id).get(device_id) if user_id else None
            if record is None or not self._allowed(record):
                continue
            try:
                self._start_session(record, require_object(claimed, "claimed key"))
            except (DeviceKeysInvalid, MalformedPayload):
                refused.append(device_id)
                continue
            self._claims.pop(device_id, None)
        return refused

    # --- rooms ---------------------------------------------------------------------------

    def share_room_key(self, room_id: str, members: Iterable[str]) -> RoomKeyShare:
        """Make sure the room's session is current and its key went to every allowed device.

        ``members`` is the caller's view of the room (user ids, the local user included or
        not). Rotates when the allowed devices differ from the session's recipients, or the
        session is too old or used too much. Near the limit, the next session is made and
        its key sent ahead (``RoomKeyShare.ahead``); the rotation then takes it over, unless
        the allowed devices changed meanwhile."""
        now = self._clock_ms()
        recipients, withheld, unknown = self._recipients(members)
        record = self._store.outbound_group(room_id)
        rotated = (
            record is None
            or record.recipients != recipients
            or megolm.is_expired(record, self.rotation, now)
        )
        promoted = False
        if rotated:
            record, promoted = self._next_session(room_id, recipients, now)
        assert record is not None
        ahead = (self._share_ahead(room_id, recipients, now)
                 if megolm.is_due_soon(record, self.rotation, now) else [])
        if not rotated and recipients <= record.shared_with:
            # Every allowed device has the key already (the usual case): nothing to do.
            return RoomKeyShare([], False, [], withheld, unknown, ahead)
        messages, missing, record = self._send_key(record, recipients)
        self._store.save_outbound_group(record)
        return RoomKeyShare(messages, rotated, missing, withheld, unknown, ahead, promoted)

    def _next_session(
        self, room_id: str, recipients: frozenset[Recipient], now: int,
    ) -> tuple[OutboundGroupRecord, bool]:
        """The session that replaces the room's current one: the upcoming session if its key
        went to exactly these devices' view (True), else a new one (False)."""
        upcoming = self._store.upcoming_outbound_group(room_id)
        if upcoming is not None:
            self._store.drop_upcoming_outbound_group(room_id)
            if (upcoming.recipients == recipients
                    and not megolm.is_expired(upcoming, self.rotation, now)):
                return upcoming, True
        return self._new_session(room_id, recipients, now), False

    def _share_ahead(
        self, room_id: str, recipients: frozenset[Recipient], now: int,
    ) -> list[OutgoingToDevice]:
        """Make (or keep) the upcoming session and send its key to whoever lacks it."""
        upcoming = self._store.upcoming_outbound_group(room_id)
        if (upcoming is None or upcoming.recipients != recipients
                or megolm.is_expired(upcoming, self.rotation, now)):
            upcoming = self._new_session(room_id, recipients, now)
        elif recipients <= upcoming.shared_with:
            return []
        # A device without an Olm session is left out here: the current session's share
        # claims its keys, and a later message sends this key too.
        messages, _, upcoming = self._send_key(upcoming, recipients)
        self._store.save_upcoming_outbound_group(upcoming)
        return messages

    def _new_session(
        self, room_id: str, recipients: frozenset[Recipient], now: int,
    ) -> OutboundGroupRecord:
        record = megolm.new_outbound(room_id, recipients, now, self._key, self._live)
        # Our own inbound copy: this device reads back what it sent.
        self._store.save_inbound_group(
            megolm.outbound_as_inbound(record, self._own_record(), self._key, self._live))
        return record

    def _send_key(
        self, record: OutboundGroupRecord, recipients: frozenset[Recipient],
    ) -> tuple[list[OutgoingToDevice], list[tuple[str, str]], OutboundGroupRecord]:
        """The session's key Olm-encrypted to each of ``recipients`` that lacks it and has an
        Olm session; the devices without one (to claim keys for); the updated record."""
        content = megolm.room_key_content(record, self._key, self._live)
        messages, missing, shared = [], [], set(record.shared_with)
        for recipient in sorted(recipients - record.shared_with):
            device = self._device(recipient.user_id, recipient.device_id)
            if not self._olm.has_session(device.curve25519):
                missing.append((device.user_id, device.device_id))
                self._claims[device.device_id] = device.user_id
                continue
            envelope = self._olm.encrypt(device, ROOM_KEY, content)
            messages.append(OutgoingToDevice(device.user_id, device.device_id, ENCRYPTED,
                                             envelope))
            shared.add(recipient)
        return messages, missing, replace(record, shared_with=frozenset(shared))

    def encrypt_room_event(
        self, room_id: str, members: Iterable[str], event_type: str, content: dict[str, Any],
    ) -> dict[str, Any]:
        """The ``sc.encrypted`` event content. Call :meth:`share_room_key` first, every time.

        ``members`` is checked again here: if the allowed devices are no longer the ones the
        session was made for (someone left, a device was removed or blocked since the last
        share), the event is refused rather than sent under a key others hold."""
        record = self._store.outbound_group(room_id)
        if record is None:
            raise RoomKeyNotShared("no room key for this room yet")
        if megolm.is_expired(record, self.rotation, self._clock_ms()):
            raise RoomKeyNotShared("the room key is due for rotation")
        if self._recipients(members)[0] != record.recipients:
            raise RoomKeyNotShared("room members or their devices changed: share again")
        advanced, envelope = megolm.encrypt(
            record, self._key, self.local.curve25519, event_type, content, self._live,
        )
        self._store.save_outbound_group(advanced)
        return envelope

    def encrypt_to_members(
        self, members: Iterable[str], type_: str, content: dict[str, Any],
    ) -> list[OutgoingToDevice]:
        """``content`` Olm-encrypted to each allowed device of ``members`` (ours excepted)
        that already has an Olm session: best effort, no key claims (chat receipts)."""
        out = []
        for recipient in sorted(self._recipients(members)[0]):
            device = self._device(recipient.user_id, recipient.device_id)
            if self._olm.has_session(device.curve25519):
                out.append(OutgoingToDevice(device.user_id, device.device_id, ENCRYPTED,
                                            self._olm.encrypt(device, type_, content)))
        return out

    def decrypt_room_event(
        self, room_id: str, event_id: str, content: Any,
    ) -> DecryptedRoomEvent | MissingRoomKey:
        """Decrypt an ``sc.encrypted`` room event, or say which key is missing."""
        result = megolm.decrypt(self._store, self._key, room_id, event_id, _as_object(content),
                                self._live)
        if isinstance(result, MissingRoomKey):
            return result
        device = self._store.device_by_curve(result.sender_key)
        if device is None:
            own = result.sender_key == self.local.curve25519  # our own message
            return replace(result, sender_trust=TrustLevel.VERIFIED if own else None)
        same = (device.user_id, device.device_id) == (result.sender_user, result.sender_device)
        return replace(result, sender_trust=device.trust if same else None)

    def forward_room_key(
        self, room_id: str, sender_key: str, session_id: str, user_id: str, device_id: str,
    ) -> OutgoingToDevice:
        """Forward a room key we hold to another of *our own* allowed devices."""
        target = self._device(user_id, device_id)
        if user_id != self.local.user_id or not self._allowed(target):
            raise RoomKeyNotShared("keys are forwarded only to our own trusted devices")
        record = self._store.inbound_group(room_id, sender_key, session_id)
        if record is None:
            raise RoomKeyNotShared("no such room key here")
        if not self._olm.has_session(target.curve25519):
            raise NoOlmSession("no Olm session with the target device")
        return self._room_keys.forward(record, target)

    def request_room_key(self, missing: MissingRoomKey) -> list[OutgoingToDevice]:
        """Ask for a key that did not arrive: its creator device and our own other devices.

        Answers come back as ``sc.forwarded_room_key`` (a :class:`RoomKeyReceived`)."""
        return self._room_keys.request(missing, self.devices(self.local.user_id).values())

    # --- to-device -----------------------------------------------------------------------

    def receive_to_device(
        self, sender_user: str, sender_device: str, type_: str, content: Any,
    ) -> ToDeviceResult:
        """Handle one to-device message as the relay delivered it."""
        content = _as_object(content)
        if type_ in VERIFICATION_TYPES:
            return self._verifications.receive(sender_user, sender_device, type_, content)
        if type_ == ROOM_KEY_REQUEST:
            requester = self.devices(sender_user).get(sender_device)
            answer = self._room_keys.answer(requester, content)
            if answer.outcome == "no_session" and requester is not None:
                self._claims[requester.device_id] = requester.user_id
            return answer
        if type_ != ENCRYPTED:
            raise MalformedPayload("unexpected to-device type")
        sender = self._store.device_by_curve(get_key(content, "sender_key"))
        if sender is None or (sender.user_id, sender.device_id) != (sender_user, sender_device):
            # Checked before decrypting, so nothing is spent: refresh the list and retry.
            raise UnknownSenderDevice("sender device is not in our view of its user")
        if sender.trust is TrustLevel.BLOCKED:
            raise UnknownSenderDevice("sender device is blocked")
        plaintext = self._olm.decrypt(sender, content)
        if plaintext.type == ROOM_KEY:
            return self._room_keys.receive_room_key(sender, plaintext.content)
        if plaintext.type == FORWARDED_ROOM_KEY:
            return self._room_keys.receive_forwarded(sender, plaintext.content)
        return DecryptedToDevice(sender_user, sender_device, plaintext.type,
                                 Phi(plaintext.content))

    # --- verification --------------------------------------------------------------------

    def start_verification(
        self, user_id: str, device_id: str,
    ) -> tuple[SasVerification, OutgoingToDevice]:
        return self._verifications.start(self._device(user_id, device_id))

    def confirm_verification(self, transaction_id: str) -> VerificationUpdate:
        """The user says the codes match: send our MAC; mark verified once both MACs hold."""
        return self._verifications.confirm(transaction_id)

    def cancel_verification(self, transaction_id: str, code: str = "user") -> OutgoingToDevice:
        return self._verifications.cancel(transaction_id, code)

    # --- internals -----------------------------------------------------------------------

    def _mark_verified(self, peer: Party) -> DeviceRecord:
        # Marks the keys the MAC covered; if they changed meanwhile this raises.
        self._set_trust(peer.user_id, peer.device_id, peer.ed25519, TrustLevel.VERIFIED)
        return self._device(peer.user_id, peer.device_id)

    def _recipients(
        self, members: Iterable[str],
    ) -> tuple[frozenset[Recipient], list[tuple[str, str, TrustLevel]], list[str]]:
        if isinstance(members, str):  # a lone user id would iterate as characters
            raise TypeError("members must be a collection of user ids")
        recipients, withheld, unknown = set(), [], []
        for user_id in sorted(set(members) | {self.local.user_id}):
            devices = self._store.user_devices(user_id)
            if devices is None:
                if user_id != self.local.user_id:
                    unknown.append(user_id)
                continue
            for record in devices.values():
                if user_id == self.local.user_id and record.device_id == self.local.device_id:
                    continue
                if self._allowed(record):
                    recipients.add(Recipient(user_id, record.device_id, record.curve25519))
                else:
                    withheld.append((user_id, record.device_id, record.trust))
        return frozenset(recipients), withheld, unknown

    def _start_session(self, record: DeviceRecord, claimed: dict[str, Any]) -> None:
        key_id, key = get_str(claimed, "key_id", max_len=64), get_key(claimed, "key")
        signature = get_b64(claimed, "signature", size=64)
        if not verify_ed25519(
            record.ed25519, one_time_key_message(record.device_id, key_id, key), signature,
        ):
            raise DeviceKeysInvalid("claimed key is not signed by the device")
        self._olm.create_outbound(record, key)

    def _allowed(self, record: DeviceRecord) -> bool:
        return may_receive_keys(record, self.trust_policy)

    def _device(self, user_id: str, device_id: str) -> DeviceRecord:
        record = self.devices(user_id).get(device_id)
        if record is None:
            raise UnknownSenderDevice("device is not in our view of its user")
        return record

    def _set_trust(self, user_id: str, device_id: str, ed25519: str, trust: TrustLevel) -> None:
        devices = self.devices(user_id)
        record = devices.get(device_id)
        if record is None or record.ed25519 != ed25519:
            raise DeviceKeysInvalid("device keys changed since they were shown")
        devices[device_id] = replace(record, trust=trust)
        self._store.save_user_devices(user_id, devices)

    def _own_record(self) -> DeviceRecord:
        return DeviceRecord(self.local.user_id, self.username, self.local.device_id,
                            self.local.ed25519, self.local.curve25519, 0, "",
                            TrustLevel.VERIFIED)

    def _signed_key(self, key_id: str, key: vodozemac.Curve25519PublicKey) -> dict[str, str]:
        text = key.to_base64()
        message = one_time_key_message(self.local.device_id, key_id, text)
        return {"key_id": key_id, "key": text, "signature": self._identity.sign(message)}

    def _save_account(self) -> None:
        try:
            self._store.save_account(self._account.pickle(self._key))
        except (ValueError, TypeError) as exc:
            raise StoreError(f"account pickle ({vodozemac_detail(exc)})") from None


def _as_object(content: Any) -> dict[str, Any]:
    """Content as the transport has it: a parsed dict, or the JSON text itself."""
    if isinstance(content, str | bytes):
        return parse_object(content)
    return require_object(content, "content")

