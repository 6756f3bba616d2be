"""Call signaling over the relay (docs/protocol.md, "Signaling"; docs/calls.md).

Out: ``POST /v1/rooms/{room_id}/signal`` to one member device. In: push-socket frames of type
``signal`` (``app.net.events.push_frames``), parsed here into :class:`IncomingSignal`; the
``sender``/``sender_device`` are the relay's word on who sent it (the authenticated device),
and the payload stays opaque here -- the call layer verifies its signature.

Also the TURN credentials (``GET /v1/turn/credentials``, coturn's REST scheme).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from app.net.auth_api import response_field
from app.net.transport import Transport

KINDS = frozenset({"invite", "offer", "answer", "candidate", "ringing", "reject", "hangup"})
ID_PATTERN = re.compile(r"^[A-Za-z0-9._~:-]{8,128}$")


@dataclass(frozen=True, slots=True)
class IncomingSignal:
    room_id: str
    call_id: str
    kind: str
    sender: str
    sender_device: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    uris: tuple[str, ...]
    username: str
    credential: str
    ttl_s: int


async def send_signal(transport: Transport, room_id: str, *, to_user_id: str,
                      to_device_id: str, call_id: str, kind: str,
                      payload: dict[str, Any]) -> bool:
    """Relay one signal; True if pushed at once, False if the relay holds it briefly."""
    if kind not in KINDS:
        raise ValueError(f"unknown signal kind {kind!r}")
    if not ID_PATTERN.match(call_id):
        raise ValueError("call id is not a protocol id")
    data = await transport.post_json(f"/v1/rooms/{quote(room_id, safe='')}/signal", {
        "to_user_id": to_user_id, "to_device_id": to_device_id, "call_id": call_id,
        "kind": kind, "payload": payload,
    })
    return bool(response_field(data, "delivered", bool))


def parse_signal(frame: Any) -> IncomingSignal | None:
    """A push frame as a signal, or None if it is not a (well-formed) signal frame."""
    if not isinstance(frame, dict) or frame.get("type") != "signal":
        return None
    fields = ("room_id", "call_id", "kind", "sender", "sender_device")
    if not all(isinstance(frame.get(name), str) for name in fields):
        return None
    if frame["kind"] not in KINDS or not isinstance(frame.get("payload"), dict):
        return None
    return IncomingSignal(frame["room_id"], frame["call_id"], frame["kind"], frame["sender"],
                          frame["sender_device"], frame["payload"])


async def turn_credentials(transport: Transport) -> TurnCredentials:
    """Short-lived TURN credentials; ServerError 503 ``turn_unavailable`` without TURN."""
    data = await transport.get_json("/v1/turn/credentials")
    uris = response_field(data, "uris", list)
    if not all(isinstance(u, str) for u in uris):
        response_field({}, "uris", list)  # raises ProtocolError
    return TurnCredentials(tuple(uris), response_field(data, "username", str),
                           response_field(data, "credential", str),
                           int(response_field(data, "ttl", int)))
