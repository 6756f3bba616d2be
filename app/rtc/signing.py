"""Signed session descriptions: the relay cannot man-in-the-middle a call (DESIGN.md, security
property 2; docs/calls.md).

Every offer and answer carries a statement signed with the sending device's Ed25519 identity
key. The statement binds the DTLS certificate fingerprint(s) in the SDP, the call, both ends
(user and device), the link generation (a rebuilt connection is a new generation), a fresh
timestamp and a hash of the whole SDP. The receiver checks the signature against the key *its
own* verified E2EE directory view holds for the sender's device -- never a key that came with
the message -- and refuses the description with a typed error on any mismatch. DTLS then
proves the peer holds the private key of the certificate whose fingerprint was signed, so a
relay that substitutes its own certificate (or its own SDP) is caught before media can flow.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.core.errors import SafeConsultError
from app.crypto.identity import verify_ed25519

Sign = Callable[[bytes], str]
KeyFor = Callable[[str, str], "str | None"]

DOMAIN = "safeconsult.call.sdp.v1"
MAX_SKEW_MS = 120_000
_FINGERPRINT = re.compile(r"^a=fingerprint:(\S+)\s+([0-9A-Fa-f:]+)\s*$", re.MULTILINE)


class CallRefused(SafeConsultError):
    """A session description was refused: no media is exchanged with that peer."""

    reason = "refused"
    user_message = (
        "The call was refused: the other device's identity could not be confirmed. "
        "Nothing was sent. If this repeats, contact IT."
    )


class UnknownPeerDevice(CallRefused):
    """The sender's device is not in our verified/trusted directory view (or is blocked)."""

    reason = "unknown_device"


class SignatureInvalid(CallRefused):
    """The description's signature does not verify with the key we know for that device."""

    reason = "bad_signature"


class FingerprintMismatch(CallRefused):
    """The DTLS fingerprint (or SDP) in the message is not the one the sender signed."""

    reason = "fingerprint_mismatch"


class StaleDescription(CallRefused):
    """Signed too long ago (or in the future), or for another call, device or generation."""

    reason = "stale"


class MalformedDescription(CallRefused):
    """The signed envelope is missing fields or has the wrong types."""

    reason = "malformed"


@dataclass(frozen=True, slots=True)
class Party:
    user_id: str
    device_id: str


@dataclass(frozen=True, slots=True)
class SignedDescription:
    """What travels in an offer/answer signal payload (``to_payload``)."""

    call_id: str
    kind: str  # "offer" | "answer"
    sdp_type: str
    sdp: str
    sender: Party
    recipient: Party
    generation: int
    ts_ms: int
    fingerprints: tuple[str, ...]
    signature: str

    def to_payload(self) -> dict[str, Any]:
        return {
            "v": 1, "sdp_type": self.sdp_type, "sdp": self.sdp, "generation": self.generation,
            "ts_ms": self.ts_ms, "fingerprints": list(self.fingerprints),
            "signature": self.signature,
        }


def fingerprints(sdp: str) -> tuple[str, ...]:
    """The SDP's DTLS fingerprints, normalised (``sha-256 AB:CD:..``), sorted, unique."""
    found = {f"{alg.lower()} {value.upper()}" for alg, value in _FINGERPRINT.findall(sdp)}
    return tuple(sorted(found))


def statement(call_id: str, kind: str, sdp_type: str, sdp: str, sender: Party,
              recipient: Party, generation: int, ts_ms: int,
              prints: tuple[str, ...]) -> bytes:
    """The canonical bytes a device signs (and the receiver rebuilds) for one description."""
    body = {
        "domain": DOMAIN, "call_id": call_id, "kind": kind, "sdp_type": sdp_type,
        "sender": [sender.user_id, sender.device_id],
        "recipient": [recipient.user_id, recipient.device_id],
        "generation": generation, "ts_ms": ts_ms, "fingerprints": list(prints),
        "sdp_sha256": hashlib.sha256(sdp.encode()).hexdigest(),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign_description(sign: Sign, *, call_id: str, kind: str, sdp_type: str, sdp: str,
                     sender: Party, recipient: Party, generation: int,
                     now_ms: int | None = None) -> SignedDescription:
    prints = fingerprints(sdp)
    if not prints:
        raise MalformedDescription("our own description has no DTLS fingerprint")
    ts_ms = int(time.time() * 1000) if now_ms is None else now_ms
    message = statement(call_id, kind, sdp_type, sdp, sender, recipient, generation, ts_ms,
                        prints)
    return SignedDescription(call_id, kind, sdp_type, sdp, sender, recipient, generation,
                             ts_ms, prints, sign(message))


def _field(payload: dict[str, Any], name: str, kind: type) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MalformedDescription(f"signed description: field {name!r} missing or invalid")
    return value


def verify_description(payload: Any, *, key_for: KeyFor, call_id: str, kind: str,
                       sender: Party, recipient: Party, min_generation: int = 0,
                       now_ms: int | None = None,
                       max_skew_ms: int = MAX_SKEW_MS) -> SignedDescription:
    """Check a received offer/answer payload; return it, or raise a :class:`CallRefused`.

    ``sender`` is who the relay says sent it (the authenticated sending device); the
    signature must be that device's, with the key ``key_for`` returns from our own directory.
    """
    if not isinstance(payload, dict):
        raise MalformedDescription("signed description is not an object")
    sdp = _field(payload, "sdp", str)
    sdp_type = _field(payload, "sdp_type", str)
    generation = _field(payload, "generation", int)
    ts_ms = _field(payload, "ts_ms", int)
    signature = _field(payload, "signature", str)
    claimed = _field(payload, "fingerprints", list)
    if not all(isinstance(p, str) for p in claimed):
        raise MalformedDescription("signed description: fingerprints are not strings")
    if sdp_type != kind:
        raise MalformedDescription(f"a {kind} signal carries an SDP of type {sdp_type!r}")
    key = key_for(sender.user_id, sender.device_id)
    if not key:
        raise UnknownPeerDevice(
            f"device {sender.device_id} of {sender.user_id} is not a trusted device")
    # The SDP that arrived must carry exactly the fingerprints the statement names (checked
    # first for the clearer error); the signature then covers those fingerprints and the
    # hash of the whole SDP, so neither can be swapped alone or together.
    if fingerprints(sdp) != tuple(claimed) or not claimed:
        raise FingerprintMismatch(
            f"the DTLS fingerprint in the {kind} is not the one device {sender.device_id} signed")
    message = statement(call_id, kind, sdp_type, sdp, sender, recipient, generation, ts_ms,
                        tuple(claimed))
    try:
        valid = verify_ed25519(key, message, signature)
    except (ValueError, SafeConsultError):
        valid = False
    if not valid:
        raise SignatureInvalid(
            f"the {kind} is not signed by device {sender.device_id}'s identity key")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - ts_ms) > max_skew_ms:
        raise StaleDescription(f"the {kind} was signed {abs(now - ts_ms) // 1000} s away from now")
    if generation < min_generation:
        raise StaleDescription(f"the {kind} is for an older connection ({generation})")
    return SignedDescription(call_id, kind, sdp_type, sdp, sender, recipient, generation, ts_ms,
                             tuple(claimed), signature)


def verification_code(call_id: str, prints_a: tuple[str, ...],
                      prints_b: tuple[str, ...]) -> str:
    """A short code both ends compute alike from both sides' fingerprints (order-free).

    Read aloud at the start of a consult it confirms, beyond the signatures, that both ends
    see the same pair of DTLS certificates. Six digits in two groups.
    """
    sides = sorted(["|".join(prints_a), "|".join(prints_b)])
    digest = hashlib.sha256(f"{DOMAIN}\n{call_id}\n{sides[0]}\n{sides[1]}".encode()).digest()
    number = int.from_bytes(digest[:8], "big") % 1_000_000
    return f"{number // 1000:03d} {number % 1000:03d}"


def short_id(text: str) -> str:
    """A log-safe short form of an identifier."""
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()[:6]).decode()
