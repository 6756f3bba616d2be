"""``authenticate_websocket``: the proof covers the upgrade GET, the token rides in the
Authorization header, and the same rules as for HTTP apply."""

from __future__ import annotations

import json
import ssl

import pytest
import websockets
from fastapi import WebSocket

from server_stub.api.deps import authenticate_websocket, reject_websocket
from server_stub.api.errors import ApiError
from tests.support.clients import new_user_device

PATH = "/v1/test-auth-echo"


async def _echo_identity(websocket: WebSocket) -> None:
    try:
        auth = await authenticate_websocket(websocket)
    except ApiError as err:
        await reject_websocket(websocket, err)
        return
    await websocket.accept()
    await websocket.send_text(json.dumps(auth.__dict__))
    await websocket.close()


@pytest.fixture
def ws_server(open_server):
    open_server.app.add_api_websocket_route(PATH, _echo_identity)
    return open_server


def _headers(device, token: str, path: str = PATH) -> dict[str, str]:
    headers = device.transport.signer.proof_headers("GET", path, b"", token)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def _connect(server, headers):
    ctx = ssl.create_default_context(cadata=server.ca_pem)
    return await websockets.connect(f"wss://127.0.0.1:{server.port}{PATH}", ssl=ctx,
                                    additional_headers=headers, open_timeout=5)


async def test_valid_upgrade_yields_the_callers_context(ws_server):
    creds, dev = await new_user_device(ws_server, "alice", role="nurse")
    try:
        ws = await _connect(ws_server, _headers(dev, dev.transport.token))
        context = json.loads(await ws.recv())
        await ws.close()
        assert context["user_id"] == creds.user_id and context["device_id"] == dev.device_id
        assert context["role"] == "nurse" and context["session_id"] == dev.session["session_id"]
    finally:
        await dev.aclose()


async def test_refused_upgrades(ws_server):
    _, alice = await new_user_device(ws_server, "alice")
    _, bob = await new_user_device(ws_server, "bob")
    try:
        cases = {
            "no token": _headers(alice, ""),
            "token of another device": _headers(bob, alice.transport.token),
            "proof for another path": _headers(alice, alice.transport.token, "/v1/ws"),
            "no proof": {"Authorization": f"Bearer {alice.transport.token}"},
        }
        for name, headers in cases.items():
            with pytest.raises(websockets.exceptions.InvalidStatus) as err:
                await _connect(ws_server, headers)
            assert err.value.response.status_code == 403, name
    finally:
        await alice.aclose()
        await bob.aclose()
