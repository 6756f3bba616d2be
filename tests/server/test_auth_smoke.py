"""End-to-end happy path over real TLS: enroll (approval required), approve, login,
authenticated call, refresh, logout."""

from __future__ import annotations

import pytest

from app.core.errors import ServerError
from tests.support.clients import create_user, enroll, enroll_and_login, login


async def test_enroll_approve_login_session_refresh_logout(server):
    alice = create_user(server, "alice")
    device = await enroll(server, alice.username, alice.password, alice.totp_secret)
    try:
        assert device.session is None  # approval required by default
        status = await device.transport.get_json("/v1/devices/self/status")
        assert status["state"] == "pending"
        with pytest.raises(ServerError) as err:
            await login(server, device, alice.password, alice.totp_secret)
        assert (err.value.status, err.value.code) == (403, "device_pending")
    finally:
        await device.aclose()

    dev = await enroll_and_login(server, alice.username, alice.password,
                                 alice.totp_secret, display_name="second")
    try:
        info = await dev.transport.get_json("/v1/auth/session")
        assert info["user_id"] == alice.user_id == dev.user_id
        assert info["device_id"] == dev.device_id
        own = (await dev.transport.get_json("/v1/devices"))["devices"]
        assert [(d["display_name"], d["current"]) for d in own] == [
            ("Test workstation", False), ("second", True)]
        assert own[1]["last_seen_ms"] is not None and own[0]["state"] == "pending"
        old_access = dev.transport.token
        new = await dev.transport.post_json("/v1/auth/refresh",
                                            {"refresh_token": dev.refresh_token})
        assert new["access_token"] != old_access
        dev.use_session(new)
        await dev.transport.get_json("/v1/auth/session")
        await dev.transport.request("POST", "/v1/auth/logout")
        with pytest.raises(ServerError) as err:
            await dev.transport.get_json("/v1/auth/session")
        assert (err.value.status, err.value.code) == (401, "unauthenticated")
    finally:
        await dev.aclose()
