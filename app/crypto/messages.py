"""Wire formats of the E2EE layer: names, strict field readers and signed-byte layouts.

Everything the machine reads from the relay goes through the readers here, so a truncated,
garbled or mistyped payload becomes one typed :class:`MalformedPayload` instead of a
``KeyError`` deep inside the machine. docs/e2ee.md is the normative description.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from app.crypto.errors import MalformedPayload
from app.crypto.identity import b64, unb64

# Envelope type the server sees for every encrypted room event and to-device message.
ENCRYPTED = "sc.encrypted"
OLM_V1 = "sc.olm.v1"
MEGOLM_V1 = "sc.megolm.v1"

# Types inside Olm plaintext (to-device).
ROOM_KEY = "sc.room_key"
FORWARDED_ROOM_KEY = "sc.forwarded_room_key"
# Plain to-device: asks for a missing room key (names only ids the relay already routes).
ROOM_KEY_REQUEST = "sc.room_key_request"

# SAS verification to-device types (sent in the clear: SAS authenticates itself).
VERIFICATION_START = "sc.verification.start"
VERIFICATION_ACCEPT = "sc.verification.accept"
VERIFICATION_KEY = "sc.verification.key"
VERIFICATION_MAC = "sc.verification.mac"
VERIFICATION_CANCEL = "sc.verification.cancel"
VERIFICATION_TYPES = frozenset(
    {VERIFICATION_START, VERIFICATION_ACCEPT, VERIFICATION_KEY, VERIFICATION_MAC,
     VERIFICATION_CANCEL}
)

# Upper bound on one decoded payload: a chat event is small; anything larger is hostile.
MAX_PAYLOAD_CHARS = 256 * 1024


@dataclass(frozen=True, slots=True)
class OutgoingToDevice:
    """A to-device message for the transport to deliver: ``content`` is JSON-ready."""

    recipient_user: str
    recipient_device: str
    type: str
    content: dict[str, Any] = field(hash=False)


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: one byte string per value, so signatures agree."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
    ).encode()


def parse_object(data: str | bytes) -> dict[str, Any]:
    """Parse a JSON object or raise :class:`MalformedPayload`."""
    if len(data) > MAX_PAYLOAD_CHARS:
        raise MalformedPayload("payload too large")
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedPayload("payload is not JSON") from None
    return require_object(value, "payload")


def require_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{name} is not a JSON object")
    return value


def get_str(obj: dict[str, Any], key: str, *, max_len: int = 4096) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise MalformedPayload(f"field {key!r} missing or not a string")
    return value


def get_int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    # bool is an int in Python; JSON true is not a number here.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise MalformedPayload(f"field {key!r} missing or not an integer")
    return value


def get_object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return require_object(obj.get(key), f"field {key!r}")


def get_b64(obj: dict[str, Any], key: str, *, size: int | None = None) -> str:
    """A base64 field, checked to decode (and to be ``size`` bytes when given)."""
    text = get_str(obj, key, max_len=MAX_PAYLOAD_CHARS)
    try:
        raw = unb64(text)
    except (binascii.Error, ValueError):
        raise MalformedPayload(f"field {key!r} is not base64") from None
    # Only the canonical spelling is accepted: otherwise the unused low bits of the last
    # character could be flipped without changing the bytes, and a "modified" ciphertext
    # would still decrypt.
    if b64(raw) != text:
        raise MalformedPayload(f"field {key!r} is not canonical unpadded base64")
    if size is not None and len(raw) != size:
        raise MalformedPayload(f"field {key!r} has the wrong length")
    return text


def get_key(obj: dict[str, Any], key: str) -> str:
    """A 32-byte public key in unpadded base64."""
    return get_b64(obj, key, size=32)


# --- signed byte layouts shared with the server (server_stub/core/security.py) ----------


def enrollment_message(
    device_id: str, username: str, ed25519: str, curve25519: str, ts_ms: int,
) -> bytes:
    """The bytes a device signs at enrollment: its self-signature in the key directory."""
    return "\n".join(
        ["SC-ENROLL-v1", device_id, username, ed25519, curve25519, str(ts_ms)]
    ).encode()


def one_time_key_message(device_id: str, key_id: str, key: str) -> bytes:
    """The bytes a device signs for each published one-time or fallback key."""
    return "\n".join(["SC-OTK-v1", device_id, key_id, key]).encode()
