"""Olm: one-to-one encrypted to-device payloads between two devices.

The plaintext names sender and recipient (user, device, Ed25519 key) inside the encryption,
so a relay that re-addresses a ciphertext, or a device that replays one addressed to
somebody else, is caught after decryption (:class:`Misdirected`). The envelope's clear
``recipient_key`` lets a device refuse a message meant for another device before it spends
any ratchet state on it.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import vodozemac

from app.crypto.errors import (
    DecryptionFailed,
    MalformedPayload,
    Misdirected,
    NoOlmSession,
    ReplayedMessage,
    StoreError,
    vodozemac_detail,
)
from app.crypto.identity import b64, unb64
from app.crypto.messages import (
    OLM_V1,
    canonical_json,
    get_b64,
    get_int,
    get_key,
    get_object,
    get_str,
    parse_object,
)
from app.crypto.store import CryptoStore, DeviceRecord, OlmSessionRecord

PRE_KEY, NORMAL = 0, 1
# Sessions kept per peer device. Two are normal (one each way after a race); more mean a
# peer that keeps starting over. Each normal message may be tried on all of them, so the
# list is bounded: the least recently used go first.
MAX_SESSIONS_PER_PEER = 8


@dataclass(frozen=True, slots=True)
class LocalDevice:
    user_id: str
    device_id: str
    ed25519: str
    curve25519: str


@dataclass(frozen=True, slots=True)
class OlmPlaintext:
    type: str
    content: dict[str, Any] = field(repr=False)  # may hold room keys or PHI


class OlmChannel:
    """Olm sessions of one local device, persisted in a :class:`CryptoStore`."""

    def __init__(
        self,
        account: vodozemac.Account,
        local: LocalDevice,
        store: CryptoStore,
        pickle_key: bytes,
        clock_ms: Callable[[], int],
        save_account: Callable[[], None],
    ) -> None:
        self._account = account
        self._local = local
        self._store = store
        self._key = pickle_key
        self._clock_ms = clock_ms
        self._save_account = save_account

    def has_session(self, peer_curve25519: str) -> bool:
        return bool(self._store.olm_sessions(peer_curve25519))

    def create_outbound(self, peer: DeviceRecord, one_time_key: str) -> None:
        """Start a session with ``peer`` from a key already checked to be signed by it."""
        try:
            session = self._account.create_outbound_session(
                vodozemac.Curve25519PublicKey.from_base64(peer.curve25519),
                vodozemac.Curve25519PublicKey.from_base64(one_time_key),
            )
        except (ValueError, TypeError) as exc:
            raise MalformedPayload(f"claimed key unusable ({vodozemac_detail(exc)})") from None
        self._save(peer.curve25519, session, created=True)

    def encrypt(self, peer: DeviceRecord, type_: str, content: dict[str, Any]) -> dict[str, Any]:
        """The ``sc.encrypted`` to-device content carrying ``content`` to ``peer``."""
        records = self._store.olm_sessions(peer.curve25519)
        if not records:
            raise NoOlmSession("no Olm session with the peer device")
        session = self._open(records[0])
        plaintext = canonical_json(
            {
                "type": type_,
                "content": content,
                "sender": self._local.user_id,
                "sender_device": self._local.device_id,
                "sender_keys": {"ed25519": self._local.ed25519},
                "recipient": peer.user_id,
                "recipient_device": peer.device_id,
                "recipient_keys": {"ed25519": peer.ed25519},
            }
        )
        msg_type, body = session.encrypt(plaintext).to_parts()
        self._save(peer.curve25519, session, created=False, created_ms=records[0].created_ms)
        return {
            "algorithm": OLM_V1,
            "sender_key": self._local.curve25519,
            "recipient_key": peer.curve25519,
            "type": msg_type,
            "body": b64(body),
        }

    def decrypt(self, sender: DeviceRecord, envelope: dict[str, Any]) -> OlmPlaintext:
        """Decrypt an ``sc.encrypted`` to-device content from the known device ``sender``."""
        if get_str(envelope, "algorithm") != OLM_V1:
            raise MalformedPayload("not an Olm payload")
        if get_key(envelope, "sender_key") != sender.curve25519:
            raise Misdirected("sender key is not the sender device's key")
        if get_key(envelope, "recipient_key") != self._local.curve25519:
            raise Misdirected("payload is for another device")
        msg_type = get_int(envelope, "type")
        body = unb64(get_b64(envelope, "body"))
        if msg_type not in (PRE_KEY, NORMAL):
            raise MalformedPayload("unknown Olm message type")
        try:
            message = vodozemac.AnyOlmMessage.from_parts(msg_type, body)
        except (ValueError, TypeError) as exc:
            raise MalformedPayload(f"Olm message undecodable ({vodozemac_detail(exc)})") from None
        # As for Megolm: accept only the canonical encoding, so no altered byte decrypts.
        if message.to_parts()[1] != body:
            raise DecryptionFailed("Olm message is not canonically encoded")
        if msg_type == PRE_KEY:
            _check_pre_key_keys(body, sender.curve25519)
        raw = self._decrypt(sender.curve25519, msg_type, message)
        return self._check_plaintext(sender, raw)

    # --- internals -------------------------------------------------------------------------

    def _decrypt(self, peer: str, msg_type: int, message: vodozemac.AnyOlmMessage) -> bytes:
        records = self._store.olm_sessions(peer)
        pre_key = message.to_pre_key() if msg_type == PRE_KEY else None
        for record in records:
            session = self._open(record)
            if pre_key is not None and not session.session_matches(pre_key):
                continue
            try:
                plaintext = session.decrypt(message)
            except (ValueError, TypeError):
                if pre_key is not None:
                    # The pre-key message belongs to a session we already have and its
                    # message key is spent: a replay. Never fall through to creating a
                    # second inbound session from it (a fallback key would allow that).
                    raise ReplayedMessage(
                        "Olm pre-key message already used (or altered)"
                    ) from None
                continue  # a failed decrypt leaves a vodozemac session unchanged
            self._save(peer, session, created=False, created_ms=record.created_ms)
            return plaintext
        if pre_key is None:
            raise DecryptionFailed("no Olm session decrypts the message")
        try:
            session, plaintext = self._account.create_inbound_session(
                vodozemac.Curve25519PublicKey.from_base64(peer), pre_key,
            )
        except (ValueError, TypeError) as exc:
            raise DecryptionFailed(
                f"Olm pre-key message rejected ({vodozemac_detail(exc)})"
            ) from None
        # The one-time key is now used up: persist the account before anything else.
        self._save_account()
        self._save(peer, session, created=True)
        for stale in self._store.olm_sessions(peer)[MAX_SESSIONS_PER_PEER:]:
            self._store.drop_olm_session(peer, stale.session_id)
        return plaintext

    def _check_plaintext(self, sender: DeviceRecord, raw: bytes) -> OlmPlaintext:
        try:
            payload = parse_object(raw)
        except MalformedPayload:
            raise MalformedPayload("decrypted Olm payload is not a JSON object") from None
        bindings = (
            (get_str(payload, "sender"), sender.user_id),
            (get_str(payload, "sender_device"), sender.device_id),
            (get_str(get_object(payload, "sender_keys"), "ed25519"), sender.ed25519),
            (get_str(payload, "recipient"), self._local.user_id),
            (get_str(payload, "recipient_device"), self._local.device_id),
            (get_str(get_object(payload, "recipient_keys"), "ed25519"), self._local.ed25519),
        )
        if any(found != expected for found, expected in bindings):
            raise Misdirected("Olm plaintext names another sender or recipient")
        return OlmPlaintext(get_str(payload, "type"), get_object(payload, "content"))

    def _open(self, record: OlmSessionRecord) -> vodozemac.Session:
        try:
            return vodozemac.Session.from_pickle(record.pickle, self._key)
        except (ValueError, TypeError, binascii.Error) as exc:
            raise StoreError(f"Olm session pickle ({vodozemac_detail(exc)})") from None

    def _save(
        self, peer: str, session: vodozemac.Session, *, created: bool, created_ms: int = 0,
    ) -> None:
        now = self._clock_ms()
        self._store.save_olm_session(
            OlmSessionRecord(
                peer_curve25519=peer,
                session_id=session.session_id,
                pickle=session.pickle(self._key),
                created_ms=now if created else created_ms,
                last_used_ms=now,
            )
        )


def _check_pre_key_keys(body: bytes, sender_curve25519: str) -> None:
    """Refuse re-spelled keys in a pre-key message's clear header.

    The one-time, base and identity keys travel outside the inner message's MAC, and X25519
    ignores the top bit of a public key (RFC 7748, section 5): flipping it leaves the key
    agreement, and so the decryption, unchanged. Only the spelling an honest encoder
    produces (top bit clear; our known key for the sender) is accepted.
    """
    fields: dict[int, bytes] = {}
    pos = 1  # after the version byte
    try:
        while pos < len(body):
            tag = body[pos]
            length, pos = _varint(body, pos + 1)
            fields[tag >> 3] = body[pos:pos + length]
            pos += length
    except IndexError:
        raise MalformedPayload("Olm pre-key message truncated") from None
    keys = [fields.get(n, b"") for n in (1, 2, 3)]  # one-time key, base key, identity key
    if any(len(key) != 32 or key[31] & 0x80 for key in keys):
        raise DecryptionFailed("Olm pre-key message carries a non-canonical key")
    if keys[2] != unb64(sender_curve25519):
        raise Misdirected("Olm pre-key message names another sender identity key")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise IndexError("varint too long")
