"""Device verification by short authentication string (SAS), over to-device messages.

Flow (starter S, accepter A; all contents carry ``transaction_id``):
  S -> start;  A -> accept (commitment to A's ephemeral key);  S -> key;  A -> key;
  both show emoji/decimals; each user confirms; each side -> mac (of its own Ed25519 key).
The commitment stops the accepter from choosing its key after seeing the starter's. The MAC
binds the codes the users compared to the device keys: a relay that swapped the ephemeral
keys makes the codes differ and the MACs fail (:class:`SasMismatch`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import vodozemac

from app.crypto.errors import MalformedPayload, SasMismatch, VerificationError, vodozemac_detail
from app.crypto.identity import b64
from app.crypto.messages import (
    VERIFICATION_ACCEPT,
    VERIFICATION_CANCEL,
    VERIFICATION_KEY,
    VERIFICATION_MAC,
    VERIFICATION_START,
    OutgoingToDevice,
    canonical_json,
    get_b64,
    get_key,
    get_object,
    get_str,
)
from app.crypto.sas_emoji import SAS_EMOJI

SAS_METHOD = "sc.sas.v1"
SAS_INFO = "SC_SAS_V1"
MAC_INFO = "SC_SAS_MAC_V1"
# Why a verification ended: ``user`` (someone cancelled), ``mismatch`` (a user said the codes
# differ), ``timeout``, and the protocol's own failures.
CANCEL_CODES = frozenset({"user", "mismatch", "timeout", "protocol", "unexpected_message",
                          "commitment_mismatch", "key_mismatch", "remote"})


class SasState(StrEnum):
    STARTED = "started"  # starter: waiting for accept
    ACCEPTED = "accepted"  # accepter: waiting for the starter's key
    KEY_SENT = "key_sent"  # starter: waiting for the accepter's key
    SHOWING = "showing"  # both keys known: codes can be shown
    CONFIRMED = "confirmed"  # our user confirmed, our MAC sent; waiting for theirs
    DONE = "done"  # verified
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Party:
    user_id: str
    device_id: str
    ed25519: str  # as the local device knows it (own key, or the peer's directory record)


class SasVerification:
    """One verification transaction between the local device and one peer device."""

    def __init__(self, local: Party, peer: Party, transaction_id: str, *, starter: bool) -> None:
        self.local, self.peer = local, peer
        self.transaction_id = transaction_id
        self.starter = starter
        self.state = SasState.STARTED if starter else SasState.ACCEPTED
        self.cancel_code: str | None = None
        self.remote_code: str | None = None  # the peer's cancel code, when it cancelled
        self._sas: vodozemac.Sas | None = vodozemac.Sas()
        self._our_key = self._sas.public_key.to_base64()
        self._their_key: str | None = None
        self._established: vodozemac.EstablishedSas | None = None
        self._start_content: dict[str, Any] = {}
        self._commitment: str | None = None
        self._their_mac_ok = False

    # --- opening -----------------------------------------------------------------------

    @classmethod
    def start(cls, local: Party, peer: Party) -> tuple[SasVerification, OutgoingToDevice]:
        txn = b64(secrets.token_bytes(16))
        sas = cls(local, peer, txn, starter=True)
        sas._start_content = {
            "transaction_id": txn,
            "from_user": local.user_id,
            "from_device": local.device_id,
            "method": SAS_METHOD,
        }
        return sas, sas._out(VERIFICATION_START, dict(sas._start_content))

    @classmethod
    def accept(
        cls, local: Party, peer: Party, start: dict[str, Any],
    ) -> tuple[SasVerification, OutgoingToDevice]:
        txn = get_str(start, "transaction_id", max_len=64)
        if get_str(start, "method") != SAS_METHOD:
            raise VerificationError("unsupported verification method")
        if (get_str(start, "from_user"), get_str(start, "from_device")) != (
            peer.user_id, peer.device_id,
        ):
            raise VerificationError("start names another device than its sender")
        sas = cls(local, peer, txn, starter=False)
        sas._start_content = dict(start)
        commitment = _commitment(sas._our_key, sas._start_content)
        return sas, sas._out(VERIFICATION_ACCEPT, {"transaction_id": txn, "commitment": commitment})

    # --- progress ----------------------------------------------------------------------

    def receive(self, type_: str, content: dict[str, Any]) -> list[OutgoingToDevice]:
        """Handle one message of this transaction; returns what to send back."""
        if get_str(content, "transaction_id", max_len=64) != self.transaction_id:
            raise VerificationError("message for another verification")
        if self.state in (SasState.DONE, SasState.CANCELLED):
            if type_ == VERIFICATION_CANCEL:
                # The peer gave up after we finished (its own MAC check may have failed):
                # our result stands on our own check; nothing to answer.
                return []
            raise VerificationError("verification already finished")
        if type_ == VERIFICATION_CANCEL:
            self.state, self.cancel_code = SasState.CANCELLED, "remote"
            code = content.get("code")
            # The peer's reason, for the user ("they said the codes differ"); a known code
            # or nothing, never free text from the wire.
            self.remote_code = code if code in CANCEL_CODES else None
            return []
        try:
            return self._dispatch(type_, content)
        except (VerificationError, MalformedPayload):
            self.state = SasState.CANCELLED
            self.cancel_code = self.cancel_code or "protocol"
            raise

    def confirm(self) -> list[OutgoingToDevice]:
        """The user saw matching codes: send our MAC (and finish if theirs already verified)."""
        if self.state is not SasState.SHOWING:
            raise VerificationError("nothing to confirm yet")
        key_id = f"ed25519:{self.local.device_id}"
        info = self._mac_info(self.local, self.peer)
        mac = {
            "transaction_id": self.transaction_id,
            "mac": {key_id: self._est().calculate_mac(self.local.ed25519, info + key_id)},
            "keys": self._est().calculate_mac(key_id, info + "KEY_IDS"),
        }
        self.state = SasState.DONE if self._their_mac_ok else SasState.CONFIRMED
        return [self._out(VERIFICATION_MAC, mac)]

    def cancel(self, code: str = "user") -> OutgoingToDevice:
        self.state, self.cancel_code = SasState.CANCELLED, code
        return self.cancellation()

    def cancellation(self) -> OutgoingToDevice:
        """The cancel message to send after a failure (or a user's cancel)."""
        return self._out(
            VERIFICATION_CANCEL,
            {"transaction_id": self.transaction_id, "code": self.cancel_code or "user"},
        )

    @property
    def emoji(self) -> list[tuple[str, str]]:
        """Seven (emoji, name) pairs, identical on both devices when no one is in between."""
        return [SAS_EMOJI[i] for i in self._bytes().emoji_indices]

    @property
    def decimals(self) -> tuple[int, int, int]:
        first, second, third = self._bytes().decimals
        return (int(first), int(second), int(third))

    @property
    def verified(self) -> bool:
        return self.state is SasState.DONE

    # --- internals ---------------------------------------------------------------------

    def _dispatch(self, type_: str, content: dict[str, Any]) -> list[OutgoingToDevice]:
        if type_ == VERIFICATION_ACCEPT and self.state is SasState.STARTED:
            self._commitment = get_b64(content, "commitment", size=32)
            self.state = SasState.KEY_SENT
            return [self._key_message()]
        if type_ == VERIFICATION_KEY and self.state is SasState.ACCEPTED:
            self._establish(get_key(content, "key"))
            return [self._key_message()]
        if type_ == VERIFICATION_KEY and self.state is SasState.KEY_SENT:
            their_key = get_key(content, "key")
            assert self._commitment is not None
            expected = _commitment(their_key, self._start_content)
            if not hmac.compare_digest(expected, self._commitment):
                self.cancel_code = "commitment_mismatch"
                raise SasMismatch("accepter's key does not match its commitment")
            self._establish(their_key)
            return []
        if type_ == VERIFICATION_MAC and self.state in (SasState.SHOWING, SasState.CONFIRMED):
            self._check_mac(content)
            if self.state is SasState.CONFIRMED:
                self.state = SasState.DONE
            return []
        self.cancel_code = "unexpected_message"
        raise VerificationError("verification message out of order")

    def _establish(self, their_key: str) -> None:
        assert self._sas is not None
        try:
            self._established = self._sas.diffie_hellman(
                vodozemac.Curve25519PublicKey.from_base64(their_key)
            )
        except (ValueError, TypeError) as exc:
            raise MalformedPayload(f"SAS key unusable ({vodozemac_detail(exc)})") from None
        self._sas = None  # single use
        self._their_key = their_key
        self.state = SasState.SHOWING

    def _check_mac(self, content: dict[str, Any]) -> None:
        key_id = f"ed25519:{self.peer.device_id}"
        macs = get_object(content, "mac")
        if set(macs) != {key_id}:
            self.cancel_code = "key_mismatch"
            raise SasMismatch("MAC covers other keys than the peer device's")
        info = self._mac_info(self.peer, self.local)
        try:
            self._est().verify_mac(key_id, info + "KEY_IDS", get_str(content, "keys"))
            # The peer's key *as we know it*: a device whose key was swapped fails here.
            self._est().verify_mac(self.peer.ed25519, info + key_id, get_str(macs, key_id))
        except (ValueError, TypeError):
            self.cancel_code = "key_mismatch"
            raise SasMismatch("device key MAC did not verify") from None
        self._their_mac_ok = True

    def _key_message(self) -> OutgoingToDevice:
        return self._out(
            VERIFICATION_KEY, {"transaction_id": self.transaction_id, "key": self._our_key},
        )

    def _bytes(self) -> Any:
        starter, accepter = (self.local, self.peer) if self.starter else (self.peer, self.local)
        s_key, a_key = (
            (self._our_key, self._their_key) if self.starter else (self._their_key, self._our_key)
        )
        info = "|".join(
            [SAS_INFO, starter.user_id, starter.device_id, str(s_key),
             accepter.user_id, accepter.device_id, str(a_key), self.transaction_id]
        )
        return self._est().bytes(info)

    def _mac_info(self, sender: Party, recipient: Party) -> str:
        return "|".join(
            [MAC_INFO, sender.user_id, sender.device_id, recipient.user_id,
             recipient.device_id, self.transaction_id, ""]
        )

    def _est(self) -> vodozemac.EstablishedSas:
        if self._established is None:
            raise VerificationError("keys not exchanged yet")
        return self._established

    def _out(self, type_: str, content: dict[str, Any]) -> OutgoingToDevice:
        return OutgoingToDevice(self.peer.user_id, self.peer.device_id, type_, content)


def _commitment(public_key: str, start_content: dict[str, Any]) -> str:
    return b64(hashlib.sha256(public_key.encode() + canonical_json(start_content)).digest())
