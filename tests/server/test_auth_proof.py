"""Request proof and token binding over real TLS (docs/protocol.md, "Request proof")."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.core.errors import ServerError
from app.crypto.identity import DeviceIdentity
from app.crypto.proof import ProofSigner
from server_stub import admin
from tests.support.clients import (
    create_user,
    enroll,
    enrollment_body,
    new_transport,
    new_user_device,
    order_ack_body,
    server_db,
    signed_request,
)


async def _refused(coro) -> ServerError:
    with pytest.raises(ServerError) as err:
        await coro
    return err.value


async def test_token_with_another_devices_proof_is_refused(open_server):
    _, alice = await new_user_device(open_server, "alice")
    _, mallory = await new_user_device(open_server, "mallory")
    try:
        stolen = alice.transport.token
        mallory.transport.token = stolen  # mallory signs with her own device key
        err = await _refused(mallory.transport.get_json("/v1/auth/session"))
        assert (err.status, err.code) == (401, "proof_invalid")
        # A copy of alice's device id without her key does not help either.
        response = await signed_request(
            mallory, "GET", "/v1/auth/session", token=stolen,
            proof_headers={**mallory.transport.signer.proof_headers(
                "GET", "/v1/auth/session", b"", stolen), "X-SC-Device": alice.device_id})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "proof_invalid"
    finally:
        await alice.aclose()
        await mallory.aclose()


async def test_replayed_proof_is_refused(open_server):
    _, dev = await new_user_device(open_server, "alice")
    try:
        headers = dev.transport.signer.proof_headers("GET", "/v1/auth/session", b"",
                                                     dev.transport.token)
        first = await signed_request(dev, "GET", "/v1/auth/session", proof_headers=headers)
        assert first.status_code == 200
        again = await signed_request(dev, "GET", "/v1/auth/session", proof_headers=headers)
        assert again.status_code == 401
        assert again.json()["error"]["code"] == "proof_replayed"
    finally:
        await dev.aclose()


@pytest.mark.parametrize("skew_s", [-120, 120])
async def test_stale_or_future_timestamp_is_refused(open_server, skew_s):
    _, dev = await new_user_device(open_server, "alice")
    try:
        dev.transport.signer = ProofSigner(
            dev.identity, clock_ms=lambda: int((time.time() + skew_s) * 1000))
        err = await _refused(dev.transport.get_json("/v1/auth/session"))
        assert (err.status, err.code) == (401, "proof_invalid")
    finally:
        await dev.aclose()


async def test_proof_binds_method_path_body_and_token(open_server):
    _, dev = await new_user_device(open_server, "alice")
    try:
        token = dev.transport.token
        sign = dev.transport.signer.proof_headers
        cases = [
            ("GET", "/v1/auth/session", b"", sign("POST", "/v1/auth/session", b"", token)),
            ("GET", "/v1/auth/session", b"", sign("GET", "/v1/devices", b"", token)),
            ("POST", "/v1/keys/claim", b'{"device_ids":["AAAAAAAAAAAAAAAAAAAAAA"]}',
             sign("POST", "/v1/keys/claim", b'{"device_ids":["BBBBBBBBBBBBBBBBBBBBBB"]}', token)),
            ("GET", "/v1/auth/session", b"", sign("GET", "/v1/auth/session", b"", "")),
        ]
        for method, path, body, headers in cases:
            response = await signed_request(dev, method, path, body, proof_headers=headers)
            assert response.status_code == 401, (method, path)
            assert response.json()["error"]["code"] == "proof_invalid"
        for bad in ["", "v1", "v2.1.2.3", "v1.abc.AAAAAAAAAAAAAAAAAAAAAA.sig",
                    "v1.1.short.sig", "v1." + "9" * 40 + ".AAAAAAAAAAAAAAAAAAAAAA.x",
                    "x" * 2000]:
            headers = {**sign("GET", "/v1/auth/session", b"", token), "X-SC-Proof": bad}
            response = await signed_request(dev, "GET", "/v1/auth/session", proof_headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "proof_invalid"
        no_proof = await dev.transport._client.get(
            "/v1/auth/session", headers={"Authorization": f"Bearer {token}"})
        assert no_proof.status_code == 401
        assert no_proof.json()["error"]["code"] == "proof_invalid"
    finally:
        await dev.aclose()


async def test_missing_or_malformed_bearer_token(open_server):
    _, dev = await new_user_device(open_server, "alice")
    try:
        for token in ["", "short", "x" * 200]:
            dev.transport.token = token
            err = await _refused(dev.transport.get_json("/v1/auth/session"))
            assert (err.status, err.code) == (401, "unauthenticated")
    finally:
        await dev.aclose()


async def test_unknown_device_is_told_to_enroll(open_server):
    _, dev = await new_user_device(open_server, "alice")
    try:
        stranger = DeviceIdentity.generate()
        dev.transport.signer = ProofSigner(stranger)
        err = await _refused(dev.transport.get_json("/v1/devices/self/status"))
        assert (err.status, err.code) == (401, "device_unknown")
    finally:
        await dev.aclose()


async def test_refresh_rotates_and_reuse_revokes_the_session(open_server):
    _, dev = await new_user_device(open_server, "alice")
    try:
        first_refresh = dev.refresh_token
        rotated = await dev.transport.post_json("/v1/auth/refresh",
                                                {"refresh_token": first_refresh})
        dev.use_session(rotated)
        await dev.transport.get_json("/v1/auth/session")
        # Someone replays the old refresh token: the whole session ends.
        err = await _refused(dev.transport.post_json("/v1/auth/refresh",
                                                     {"refresh_token": first_refresh}))
        assert (err.status, err.code) == (401, "refresh_reused")
        err = await _refused(dev.transport.get_json("/v1/auth/session"))
        assert (err.status, err.code) == (401, "unauthenticated")
        err = await _refused(dev.transport.post_json("/v1/auth/refresh",
                                                     {"refresh_token": rotated["refresh_token"]}))
        assert err.status == 401
    finally:
        await dev.aclose()


async def test_refresh_token_is_bound_to_its_device(open_server):
    _, alice = await new_user_device(open_server, "alice")
    _, bob = await new_user_device(open_server, "bob")
    try:
        err = await _refused(bob.transport.post_json(
            "/v1/auth/refresh", {"refresh_token": alice.refresh_token}))
        assert (err.status, err.code) == (401, "unauthenticated")
        await alice.transport.post_json("/v1/auth/refresh",
                                        {"refresh_token": alice.refresh_token})
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_access_token_expiry_then_refresh(make_server):
    server = make_server(require_device_approval=False, access_token_ttl_s=1)
    _, dev = await new_user_device(server, "alice")
    try:
        await asyncio.sleep(1.2)
        err = await _refused(dev.transport.get_json("/v1/auth/session"))
        assert (err.status, err.code) == (401, "token_expired")
        dev.use_session(await dev.transport.post_json(
            "/v1/auth/refresh", {"refresh_token": dev.refresh_token}))
        await dev.transport.get_json("/v1/auth/session")
    finally:
        await dev.aclose()


async def test_absolute_session_lifetime_caps_refresh(make_server):
    server = make_server(require_device_approval=False, session_absolute_s=1)
    _, dev = await new_user_device(server, "alice")
    try:
        assert dev.session["session_expires_ms"] - dev.session["access_expires_ms"] >= 0
        await asyncio.sleep(1.2)
        err = await _refused(dev.transport.post_json(
            "/v1/auth/refresh", {"refresh_token": dev.refresh_token}))
        assert (err.status, err.code) == (401, "unauthenticated")
    finally:
        await dev.aclose()


async def test_revoked_device_is_refused_and_told_to_wipe_then_acks(open_server):
    _, dev = await new_user_device(open_server, "alice")
    db = server_db(open_server)
    try:
        order_id = admin.revoke_device(db, dev.device_id, wipe=True)
        err = await _refused(dev.transport.get_json("/v1/auth/session"))
        assert (err.status, err.code) == (403, "device_revoked")
        status = await dev.transport.get_json("/v1/devices/self/status")
        assert status == {"device_id": dev.device_id, "state": "revoked", "order": "wipe",
                          "order_id": order_id}
        # A forged or mismatched acknowledgement does not count.
        bad = order_ack_body(dev.identity, "wipe", order_id)
        bad["signature"] = order_ack_body(dev.identity, "wipe", "X" * 22)["signature"]
        err = await _refused(dev.transport.post_json("/v1/devices/self/ack", bad))
        assert (err.status, err.code) == (400, "ack_invalid")
        err = await _refused(dev.transport.post_json(
            "/v1/devices/self/ack", order_ack_body(dev.identity, "wipe", "X" * 22)))
        assert (err.status, err.code) == (409, "no_such_order")
        done = await dev.transport.post_json("/v1/devices/self/ack",
                                             order_ack_body(dev.identity, "wipe", order_id))
        assert done["state"] == "wiped" and done["order"] == "none"
        row = db.connection().execute(
            "SELECT detail FROM audit_log WHERE action = 'device.wipe_ack'").fetchone()
        assert order_id in row[0]
        live = db.connection().execute(
            "SELECT COUNT(*) FROM sessions WHERE device_id = ? AND revoked_ms IS NULL",
            (dev.device_id,)).fetchone()[0]
        assert live == 0
    finally:
        await dev.aclose()


async def test_logout_order_ends_sessions_and_is_acknowledged(open_server):
    _, dev = await new_user_device(open_server, "alice")
    db = server_db(open_server)
    try:
        order_id = admin.logout_device(db, dev.device_id)
        err = await _refused(dev.transport.get_json("/v1/auth/session"))
        assert (err.status, err.code) == (401, "unauthenticated")
        status = await dev.transport.get_json("/v1/devices/self/status")
        assert (status["state"], status["order"], status["order_id"]) == (
            "active", "logout", order_id)
        done = await dev.transport.post_json("/v1/devices/self/ack",
                                             order_ack_body(dev.identity, "logout", order_id))
        assert (done["state"], done["order"]) == ("active", "none")
    finally:
        await dev.aclose()


async def test_enrollment_bad_cases(open_server):
    creds = create_user(open_server, "alice")
    dev = await enroll(open_server, creds.username, creds.password, creds.totp_secret)
    try:
        # Same device again: conflict, before any password check.
        body = enrollment_body(dev.identity, "alice", creds.password, "123456")
        dev.transport.token = ""
        err = await _refused(dev.transport.post_json("/v1/devices/enroll", body))
        assert (err.status, err.code) == (409, "device_exists")

        other = DeviceIdentity.generate()
        dev.transport.signer = ProofSigner(other)
        body = enrollment_body(other, "alice", creds.password, "123456")
        body["curve25519"] = DeviceIdentity.generate().curve25519  # not what was signed
        err = await _refused(dev.transport.post_json("/v1/devices/enroll", body))
        assert (err.status, err.code) == (400, "enrollment_invalid")
        body = enrollment_body(other, "alice", creds.password, "123456")
        body["ts_ms"] -= 3_600_000
        err = await _refused(dev.transport.post_json("/v1/devices/enroll", body))
        assert (err.status, err.code) == (400, "enrollment_invalid")
        # Proof by a different key than the one being enrolled.
        dev.transport.signer = ProofSigner(DeviceIdentity.generate())
        body = enrollment_body(other, "alice", creds.password, "123456")
        err = await _refused(dev.transport.post_json("/v1/devices/enroll", body))
        assert (err.status, err.code) == (401, "proof_invalid")
    finally:
        await dev.aclose()


async def test_concurrent_refreshes_with_one_token_end_the_session(open_server):
    """Rotation is atomic: of two refreshes racing with one token, one wins and the other
    is a reuse, which ends the session (clients must serialise their refreshes)."""
    _, dev = await new_user_device(open_server, "alice")
    try:
        results = await asyncio.gather(*[
            dev.transport.post_json("/v1/auth/refresh", {"refresh_token": dev.refresh_token})
            for _ in range(2)], return_exceptions=True)
        wins = [r for r in results if isinstance(r, dict)]
        losses = [r for r in results if isinstance(r, ServerError)]
        assert len(wins) == 1 and [e.code for e in losses] == ["refresh_reused"]
        dev.use_session(wins[0])
        err = await _refused(dev.transport.get_json("/v1/auth/session"))
        assert (err.status, err.code) == (401, "unauthenticated")
    finally:
        await dev.aclose()


def _enroll_variants(body: dict) -> list[dict]:
    return [
        {**body, "ed25519": body["ed25519"] + "="},
        {**body, "ed25519": body["ed25519"][:-1]},
        {**body, "curve25519": "A" * 44},
        {**body, "device_id": body["device_id"] + "x"},
        {**body, "display_name": "bad\nname"},
        {**body, "display_name": ""},
        {**body, "username": "Alice"},
        {**body, "totp_code": "12345"},
        {**body, "ts_ms": -1},
        {**body, "signature": body["signature"][:-4]},
        {k: v for k, v in body.items() if k != "password"},
        {**body, "unexpected": True},
    ]


async def test_malformed_enrollment_bodies_are_422(open_server):
    identity = DeviceIdentity.generate()
    creds = create_user(open_server, "alice")
    transport = new_transport(open_server, identity)
    try:
        body = enrollment_body(identity, "alice", creds.password, "123456")
        for variant in _enroll_variants(body):
            err = await _refused(transport.post_json("/v1/devices/enroll", variant))
            assert (err.status, err.code) == (422, "malformed"), variant
        rows = server_db(open_server).connection().execute(
            "SELECT COUNT(*) FROM devices").fetchone()[0]
        assert rows == 0
    finally:
        await transport.aclose()
