"""End-to-end happy path over real TLS: enroll (approval required), approve, login,
authenticated call, refresh, logout."""

from __future__ import annotations

import pytest

from app.core.errors import ServerError
from tests.support.clients import approve, create_user, enroll, login


async def test_enroll_approve_login_session_refresh_logout(server):
    alice = create_user(server, "alice")
    dev = await enroll(server, alice.username, alice.password, alice.totp_secret,
                       display_name="Ward 3")
    try:
        assert dev.session is None  # approval required by default
        status = await dev.transport.get_json("/v1/devices/self/status")
        assert (status["state"], status["order"]) == ("pending", "none")
        with pytest.raises(ServerError) as err:
            await login(server, dev, alice.password, alice.totp_secret)
        assert (err.value.status, err.value.code) == (403, "device_pending")

        approve(server, dev.device_id)
        result = await login(server, dev, alice.password, alice.totp_secret)
        assert (result["user_id"], result["role"]) == (alice.user_id, "physician")
        info = await dev.transport.get_json("/v1/auth/session")
        assert info["user_id"] == alice.user_id == dev.user_id
        assert info["device_id"] == dev.device_id
        own = (await dev.transport.get_json("/v1/devices"))["devices"]
        assert [(d["display_name"], d["state"], d["current"]) for d in own] == [
            ("Ward 3", "active", True)]
        assert own[0]["last_seen_ms"] is not None

        old_access = dev.transport.token
        new = await dev.transport.post_json("/v1/auth/refresh",
                                            {"refresh_token": dev.refresh_token})
        assert new["access_token"] != old_access
        assert new["session_id"] == result["session"]["session_id"]
        dev.use_session(new)
        await dev.transport.get_json("/v1/auth/session")
        dev.transport.token = old_access  # replaced by the refresh
        with pytest.raises(ServerError) as err:
            await dev.transport.get_json("/v1/auth/session")
        assert (err.value.status, err.value.code) == (401, "unauthenticated")
        dev.use_session(new)

        await dev.transport.request("POST", "/v1/auth/logout")
        with pytest.raises(ServerError) as err:
            await dev.transport.get_json("/v1/auth/session")
        assert (err.value.status, err.value.code) == (401, "unauthenticated")
    finally:
        await dev.aclose()
