"""Helpers for the relay tests: logged-in devices, a room with members, a push socket."""

from __future__ import annotations

import asyncio
import json
import ssl
import weakref
from typing import Any

import pytest
import websockets

from app.core.errors import ServerError
from tests.support.clients import LoggedInDevice, new_user_device
from tests.support.server import RunningServer


async def devices(server: RunningServer, *names: str, role: str = "physician"
                  ) -> list[LoggedInDevice]:
    out = []
    for name in names:
        _, dev = await new_user_device(server, name, role=role)
        out.append(dev)
    return out


async def make_room(owner: LoggedInDevice, *members: LoggedInDevice, role: str = "member",
                    **create: Any) -> str:
    room = await owner.transport.post_json("/v1/rooms", create)
    room_id = room["room_id"]
    for dev in members:
        await owner.transport.post_json(f"/v1/rooms/{room_id}/invite",
                                        {"user_id": dev.user_id, "role": role})
        await dev.transport.post_json(f"/v1/rooms/{room_id}/join", {})
    return room_id


async def refused(coro) -> ServerError:
    """The ServerError a request ends in (fails the test if it succeeds)."""
    try:
        await coro
    except ServerError as exc:
        return exc
    raise AssertionError("request was expected to be refused")


def encrypted(n: int | str) -> dict[str, Any]:
    """Stand-in for a Megolm envelope: opaque to the server."""
    return {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": f"AwgAEp{n}", "session_id": "s1"}


async def post(dev: LoggedInDevice, room_id: str, event_id: str, content: Any = None,
               type_: str = "m.room.encrypted") -> dict[str, Any]:
    return await dev.transport.post_json(
        f"/v1/rooms/{room_id}/events",
        {"event_id": event_id, "type": type_, "content": content or encrypted(event_id)})


async def sync(dev: LoggedInDevice, since: str | None = None, limit: int | None = None
               ) -> dict[str, Any]:
    query = []
    if since is not None:
        query.append(f"since={since}")
    if limit is not None:
        query.append(f"limit={limit}")
    return await dev.transport.get_json("/v1/sync" + ("?" + "&".join(query) if query else ""))


def ws_headers(dev: LoggedInDevice, path: str = "/v1/ws") -> dict[str, str]:
    headers = {"Authorization": f"Bearer {dev.transport.token}"}
    headers.update(dev.transport.signer.proof_headers("GET", path, b"", dev.transport.token))
    return headers


async def connect_ws(server: RunningServer, dev: LoggedInDevice, **kw: Any):
    ctx = ssl.create_default_context(cadata=server.ca_pem)
    return await websockets.connect(
        f"wss://127.0.0.1:{server.port}/v1/ws", ssl=ctx, additional_headers=ws_headers(dev),
        open_timeout=10, **kw)


_unread: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def next_push(ws, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next pushed object of ``kind``, skipping others. A frame may carry several
    objects, one per line."""
    pending = _unread.setdefault(ws, [])
    async with asyncio.timeout(timeout):
        while True:
            while pending:
                frame = pending.pop(0)
                if frame.get("type") == kind:
                    return frame
            pending.extend(json.loads(line) for line in (await ws.recv()).split("\n"))


async def no_push(ws, kind: str, wait: float = 0.5) -> None:
    try:
        frame = await next_push(ws, kind, wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected {kind} push: {frame}")


@pytest.fixture
async def crowd():
    """``await crowd(server, "alice", "bob", role=...)``: logged-in devices on any server,
    closed at teardown (an unclosed TLS client would hold the server's graceful shutdown)."""
    made: list[LoggedInDevice] = []

    async def make(server: RunningServer, *names: str, role: str = "physician"
                   ) -> list[LoggedInDevice]:
        devs = await devices(server, *names, role=role)
        made.extend(devs)
        return devs

    yield make
    for dev in made:
        await dev.aclose()


@pytest.fixture
async def people(open_server, crowd):
    """``await people("alice", "bob", role=...)`` on the ``open_server``."""

    async def make(*names: str, role: str = "physician") -> list[LoggedInDevice]:
        return await crowd(open_server, *names, role=role)

    return make
