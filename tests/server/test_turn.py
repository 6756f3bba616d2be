"""TURN credentials in coturn's REST scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from app.core.errors import ServerError
from tests.support.clients import new_user_device


async def test_no_secret_means_turn_unavailable(open_server):
    _, dev = await new_user_device(open_server, "alice")
    try:
        with pytest.raises(ServerError) as err:
            await dev.transport.get_json("/v1/turn/credentials")
        assert (err.value.status, err.value.code) == (503, "turn_unavailable")
    finally:
        await dev.aclose()


async def test_credentials_follow_the_coturn_rest_scheme(make_server):
    server = make_server(require_device_approval=False, turn_secret="s3cret-shared",
                         turn_urls=("turn:127.0.0.1:3478?transport=udp",), turn_ttl_s=600)
    creds, dev = await new_user_device(server, "alice")
    try:
        result = await dev.transport.get_json("/v1/turn/credentials")
        expiry, user_id = result["username"].split(":")
        assert user_id == creds.user_id
        assert abs(int(expiry) - (time.time() + 600)) < 5
        expected = base64.b64encode(hmac.new(b"s3cret-shared", result["username"].encode(),
                                             hashlib.sha1).digest()).decode()
        assert result["credential"] == expected
        assert result["ttl"] == 600 and result["uris"] == ["turn:127.0.0.1:3478?transport=udp"]
    finally:
        await dev.aclose()


async def test_turn_needs_authentication(make_server):
    server = make_server(require_device_approval=False, turn_secret="x")
    _, dev = await new_user_device(server, "alice")
    try:
        dev.transport.token = ""
        with pytest.raises(ServerError) as err:
            await dev.transport.get_json("/v1/turn/credentials")
        assert err.value.status == 401
    finally:
        await dev.aclose()
