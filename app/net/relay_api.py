"""The relay: rooms, membership, room events, sync, to-device messages and the key directory
(docs/protocol.md). Requests are built here and answers validated into ``app.core.chat``
types, so nothing above this module handles raw JSON from the server. Contents stay opaque.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from app.core.chat import (
    UNREADABLE_EVENT,
    DirectoryUser,
    KeyCounts,
    Member,
    PostResult,
    Room,
    RoomEvent,
    SyncBatch,
    ToDeviceEvent,
)
from app.net.auth_api import ProtocolError, response_field
from app.net.transport import Transport


def _seg(value: str) -> str:
    """A path segment: ids are URL-safe already, but never let one add a path step."""
    return quote(value, safe="")


def _opt_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"response field {name!r} is not an integer")
    return value


def _int(data: Any, name: str) -> int:
    value = response_field(data, name, int)
    return int(value)


def _opt_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"response field {name!r} is not a string")
    return value


# -- rooms ---------------------------------------------------------------------------------

def parse_room(data: Any) -> Room:
    return Room(
        room_id=response_field(data, "room_id", str),
        creator=response_field(data, "creator", str),
        created_ms=_int(data, "created_ms"),
        membership_version=_int(data, "membership_version"),
        role=response_field(data, "role", str),
        state=response_field(data, "state", str),
        expires_ms=_opt_int(data, "expires_ms"),
    )


def parse_member(data: Any) -> Member:
    return Member(
        user_id=response_field(data, "user_id", str),
        role=response_field(data, "role", str),
        state=response_field(data, "state", str),
        since_ms=_int(data, "since_ms"),
        expires_ms=_opt_int(data, "expires_ms"),
    )


async def create_room(transport: Transport) -> str:
    data = await transport.post_json("/v1/rooms", {})
    return response_field(data, "room_id", str)


async def list_rooms(transport: Transport) -> list[Room]:
    data = await transport.get_json("/v1/rooms")
    return [parse_room(r) for r in response_field(data, "rooms", list)]


async def members(transport: Transport, room_id: str) -> tuple[int, list[Member]]:
    """(membership_version, members invited or joined)."""
    data = await transport.get_json(f"/v1/rooms/{_seg(room_id)}/members")
    return (_int(data, "membership_version"),
            [parse_member(m) for m in response_field(data, "members", list)])


async def invite(transport: Transport, room_id: str, *, username: str | None = None,
                 user_id: str | None = None, role: str = "member",
                 expires_ms: int | None = None) -> int:
    """Invite by name or id; returns the new membership version."""
    body: dict[str, Any] = {"role": role}
    if username is not None:
        body["username"] = username
    if user_id is not None:
        body["user_id"] = user_id
    if expires_ms is not None:
        body["expires_ms"] = expires_ms
    data = await transport.post_json(f"/v1/rooms/{_seg(room_id)}/invite", body)
    return _int(data, "membership_version")


async def join(transport: Transport, room_id: str) -> int:
    data = await transport.post_json(f"/v1/rooms/{_seg(room_id)}/join", {})
    return _int(data, "membership_version")


async def leave(transport: Transport, room_id: str) -> int:
    data = await transport.post_json(f"/v1/rooms/{_seg(room_id)}/leave", {})
    return _int(data, "membership_version")


async def remove_member(transport: Transport, room_id: str, user_id: str) -> int:
    response = await transport.request(
        "DELETE", f"/v1/rooms/{_seg(room_id)}/members/{_seg(user_id)}")
    return _int(response.json(), "membership_version")


# -- events and sync -------------------------------------------------------------------------

async def post_event(transport: Transport, room_id: str, event_id: str, type_: str,
                     content: dict[str, Any]) -> PostResult:
    """Post with a client-chosen ``event_id``: a retry of the same body is stored once."""
    data = await transport.post_json(
        f"/v1/rooms/{_seg(room_id)}/events",
        {"event_id": event_id, "type": type_, "content": content})
    return PostResult(response_field(data, "event_id", str), _int(data, "pos"),
                      response_field(data, "duplicate", bool))


def parse_event(data: Any) -> RoomEvent:
    if not isinstance(data, dict):
        raise ProtocolError("sync event is not an object")
    return RoomEvent(
        pos=_int(data, "pos"),
        room_id=response_field(data, "room_id", str),
        event_id=response_field(data, "event_id", str),
        type=response_field(data, "type", str),
        sender=response_field(data, "sender", str),
        sender_device=_opt_str(data, "sender_device"),
        origin_ms=_int(data, "origin_ms"),
        content=response_field(data, "content", dict),
    )


def parse_to_device(data: Any) -> ToDeviceEvent:
    return ToDeviceEvent(
        pos=_int(data, "pos"),
        sender=response_field(data, "sender", str),
        sender_device=response_field(data, "sender_device", str),
        type=response_field(data, "type", str),
        content=response_field(data, "content", dict),
    )


def _unreadable_event(data: Any) -> RoomEvent | None:
    """A timeline entry that does not parse, as far as it can be named: the service keeps
    it as rejected. One bad entry must not stall the stream (the batch's token still moves
    past it); an entry with no room or event id cannot even be named and is left out."""
    if not isinstance(data, dict):
        return None
    room_id, event_id = data.get("room_id"), data.get("event_id")
    if not isinstance(room_id, str) or not isinstance(event_id, str):
        return None
    pos, origin = data.get("pos"), data.get("origin_ms")
    sender = data.get("sender")
    return RoomEvent(pos if isinstance(pos, int) else 0, room_id, event_id, UNREADABLE_EVENT,
                     sender if isinstance(sender, str) else "",
                     None, origin if isinstance(origin, int) else 0, {})


def parse_sync(data: Any) -> SyncBatch:
    events: list[RoomEvent] = []
    for entry in response_field(data, "events", list):
        try:
            events.append(parse_event(entry))
        except ProtocolError:
            unreadable = _unreadable_event(entry)
            if unreadable is not None:
                events.append(unreadable)
    to_device: list[ToDeviceEvent] = []
    for entry in response_field(data, "to_device", list):
        # A broken to-device entry is useless to anyone: it is acknowledged with the batch.
        with contextlib.suppress(ProtocolError):
            to_device.append(parse_to_device(entry))
    return SyncBatch(
        next_token=response_field(data, "next", str),
        limited=response_field(data, "limited", bool),
        events=events,
        to_device=to_device,
    )


async def sync(transport: Transport, since: str | None, *, limit: int = 100) -> SyncBatch:
    """Everything after ``since``. Presenting a token acknowledges the to-device messages
    before it (the relay deletes them), so pass a token only once what it covers is stored."""
    query: dict[str, Any] = {"limit": limit}
    if since:
        query["since"] = since
    return parse_sync(await transport.get_json("/v1/sync?" + urlencode(query)))


async def send_to_device(transport: Transport, txn_id: str, type_: str,
                         messages: Sequence[tuple[str, str, dict[str, Any]]]) -> int:
    """Deliver (user, device, content) messages; a retry with the same ``txn_id`` and body
    is queued once. Returns how many were queued (unknown devices are skipped)."""
    data = await transport.post_json("/v1/to_device", {
        "txn_id": txn_id, "type": type_,
        "messages": [{"user_id": u, "device_id": d, "content": c} for u, d, c in messages],
    })
    return _int(data, "queued")


# -- key directory ---------------------------------------------------------------------------

def _counts(data: Any) -> KeyCounts:
    return KeyCounts(_int(data, "one_time_key_count"),
                     response_field(data, "has_fallback_key", bool))


async def upload_keys(transport: Transport, body: dict[str, Any]) -> KeyCounts:
    """``body`` is what ``CryptoMachine.keys_for_upload`` made."""
    return _counts(await transport.post_json("/v1/keys/upload", body))


async def key_counts(transport: Transport) -> KeyCounts:
    return _counts(await transport.get_json("/v1/keys/count"))


async def claim_keys(transport: Transport, device_ids: Iterable[str]) -> dict[str, Any]:
    """The claim answer as the machine reads it (``{"keys": {...}, "missing": [...]}``);
    its signatures are checked by the machine, not here."""
    data = await transport.post_json("/v1/keys/claim", {"device_ids": list(device_ids)})
    response_field(data, "keys", dict)
    response_field(data, "missing", list)
    return data


async def user_devices(transport: Transport, user_id: str) -> DirectoryUser:
    data = await transport.get_json(f"/v1/users/{_seg(user_id)}/devices")
    devices = response_field(data, "devices", list)
    if not all(isinstance(d, dict) for d in devices):
        raise ProtocolError("device entries must be objects")
    return DirectoryUser(response_field(data, "user_id", str),
                         response_field(data, "username", str),
                         _int(data, "device_list_version"), devices)


async def user_role(transport: Transport, user_id: str) -> str:
    """The user's clinical role as the key directory states it (the server assigns roles)."""
    data = await transport.get_json(f"/v1/users/{_seg(user_id)}/devices")
    return response_field(data, "role", str)


async def user_by_name(transport: Transport, username: str) -> tuple[str, int]:
    """(user_id, device_list_version)."""
    data = await transport.get_json(f"/v1/users/by-name/{_seg(username)}")
    return response_field(data, "user_id", str), _int(data, "device_list_version")


async def device_versions(transport: Transport, user_ids: Iterable[str]) -> dict[str, int]:
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    data = await transport.post_json("/v1/users/device-versions", {"user_ids": ids})
    versions = response_field(data, "versions", dict)
    out: dict[str, int] = {}
    for user_id, version in versions.items():
        if not isinstance(version, int) or isinstance(version, bool):
            raise ProtocolError("device list version is not an integer")
        out[str(user_id)] = version
    return out
