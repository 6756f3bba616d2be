"""Login over real TLS: credentials, TOTP rules, throttling, enumeration resistance."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time

import pyotp
import pytest

from app.core.errors import ServerError
from app.crypto.identity import DeviceIdentity
from server_stub import admin
from tests.support.clients import (
    create_user,
    enroll,
    enroll_and_login,
    enrollment_body,
    last_totp_step,
    new_transport,
    next_totp_code,
    server_db,
    signed_request,
)


async def _login(device, username, password, code):
    device.transport.token = ""
    return await device.transport.post_json(
        "/v1/auth/login", {"username": username, "password": password, "totp_code": code})


async def _refused(coro) -> ServerError:
    with pytest.raises(ServerError) as err:
        await coro
    return err.value


async def test_wrong_password_and_unknown_user_get_the_same_answer(open_server):
    alice = create_user(open_server, "alice")
    dev = await enroll(open_server, alice.username, alice.password, alice.totp_secret)
    try:
        code = await next_totp_code(open_server, "alice", alice.totp_secret)
        wrong = await _refused(_login(dev, "alice", "not-the-password", code))
        unknown = await _refused(_login(dev, "nobody", alice.password, code))
        assert (wrong.status, wrong.code) == (unknown.status, unknown.code) == (
            401, "invalid_credentials")
        assert str(wrong) == str(unknown)
    finally:
        await dev.aclose()


async def test_unknown_user_takes_as_long_as_wrong_password(make_server):
    server = make_server(require_device_approval=False, login_backoff_base_ms=0,
                         login_max_failures=1000, login_ip_max_failures=1000)
    alice = create_user(server, "alice")
    dev = await enroll(server, alice.username, alice.password, alice.totp_secret)

    async def timed(username: str) -> float:
        start = time.perf_counter()
        await _refused(_login(dev, username, "wrong-password-1", "000000"))
        return time.perf_counter() - start

    try:
        await timed("alice")  # warm the dummy hash and connections
        known = [await timed("alice") for _ in range(7)]
        unknown = [await timed(f"ghost{i}") for i in range(7)]
        ratio = statistics.median(unknown) / statistics.median(known)
        # argon2 dominates both paths; without the dummy hash the unknown path is ~50x faster
        assert 0.4 < ratio < 2.5, (known, unknown)
    finally:
        await dev.aclose()


async def test_wrong_replayed_and_expired_totp_are_refused(open_server):
    bob = create_user(open_server, "bob")
    dev = await enroll(open_server, bob.username, bob.password, bob.totp_secret)
    try:
        totp = pyotp.TOTP(bob.totp_secret)
        expired = totp.at(time.time() - 120)
        err = await _refused(_login(dev, "bob", bob.password, expired))
        assert err.code == "invalid_credentials"
        bad = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
        err = await _refused(_login(dev, "bob", bob.password, bad))
        assert err.code == "invalid_credentials"
        # The enrollment's code: already spent, so refused although it is still current.
        used = totp.at(last_totp_step(open_server, "bob") * 30)
        err = await _refused(_login(dev, "bob", bob.password, used))
        assert err.code == "invalid_credentials"
        code = await next_totp_code(open_server, "bob", bob.totp_secret)
        ok = await _login(dev, "bob", bob.password, code)
        assert ok["user_id"] == bob.user_id
        err = await _refused(_login(dev, "bob", bob.password, code))  # replayed
        assert err.code == "invalid_credentials"
    finally:
        await dev.aclose()


async def test_code_from_debian_oathtool_logs_in(open_server):
    carol = create_user(open_server, "carol")
    code = subprocess.run(["oathtool", "--totp", "-b", carol.totp_secret],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert len(code) == 6
    identity = DeviceIdentity.generate()
    transport = new_transport(open_server, identity)
    try:
        # Enrollment on an open server is a login: it checks the code and opens a session.
        result = await transport.post_json(
            "/v1/devices/enroll", enrollment_body(identity, "carol", carol.password, code))
        assert result["user_id"] == carol.user_id and result["session"]["access_token"]
    finally:
        await transport.aclose()


async def test_fifty_parallel_submissions_of_one_code_give_one_session(make_server):
    server = make_server(require_device_approval=False, login_backoff_base_ms=0,
                         login_max_failures=1000, login_ip_max_failures=1000)
    dan = create_user(server, "dan")
    dev = await enroll(server, dan.username, dan.password, dan.totp_secret)
    try:
        code = await next_totp_code(server, "dan", dan.totp_secret)
        body = {"username": "dan", "password": dan.password, "totp_code": code}
        results = await asyncio.gather(
            *[dev.transport.post_json("/v1/auth/login", body) for _ in range(50)],
            return_exceptions=True)
        wins = [r for r in results if isinstance(r, dict)]
        losses = [r for r in results if isinstance(r, ServerError)]
        assert len(wins) == 1 and len(losses) == 49
        assert {e.code for e in losses} == {"invalid_credentials"}
        sessions = server_db(server).connection().execute(
            "SELECT COUNT(*) FROM sessions WHERE user_id = ?", (dan.user_id,)).fetchone()[0]
        assert sessions == 2  # the enrollment's and the one winner's
    finally:
        await dev.aclose()


async def test_lockout_after_consecutive_failures_then_even_right_credentials_wait(make_server):
    server = make_server(require_device_approval=False, login_backoff_base_ms=0,
                         login_max_failures=4, login_lockout_s=300)
    eve = create_user(server, "eve")
    dev = await enroll(server, eve.username, eve.password, eve.totp_secret)
    try:
        for _ in range(4):
            err = await _refused(_login(dev, "eve", "wrong-password!", "123456"))
            assert err.code == "invalid_credentials"
        code = await next_totp_code(server, "eve", eve.totp_secret)
        err = await _refused(_login(dev, "eve", eve.password, code))
        assert (err.status, err.code) == (429, "account_locked")
        # Unknown names lock the same way: locking does not reveal whether a user exists.
        for _ in range(4):
            await _refused(_login(dev, "ghost", "wrong-password!", "123456"))
        err = await _refused(_login(dev, "ghost", "wrong-password!", "123456"))
        assert (err.status, err.code) == (429, "account_locked")
        actions = [r[0] for r in server_db(server).connection().execute(
            "SELECT action FROM audit_log WHERE action = 'login.lockout'")]
        assert len(actions) == 2
        # The administrator can lift the lock.
        admin.enable_user(server_db(server), "eve")
        ok = await _login(dev, "eve", eve.password, code)
        assert ok["username"] == "eve"
    finally:
        await dev.aclose()


async def test_backoff_after_repeated_failures_says_when_to_retry(make_server):
    server = make_server(require_device_approval=False, login_backoff_base_ms=4000)
    fay = create_user(server, "fay")
    dev = await enroll(server, fay.username, fay.password, fay.totp_secret)
    try:
        await _refused(_login(dev, "fay", "wrong-password!", "123456"))
        await _refused(_login(dev, "fay", "wrong-password!", "123456"))
        body = json.dumps({"username": "fay", "password": fay.password,
                           "totp_code": "123456"}).encode()
        response = await signed_request(dev, "POST", "/v1/auth/login", body, token="")
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(response.headers["Retry-After"]) <= 4
    finally:
        await dev.aclose()


async def test_source_address_limit(make_server):
    server = make_server(require_device_approval=False, login_backoff_base_ms=0,
                         login_ip_max_failures=3)
    gus = create_user(server, "gus")
    dev = await enroll(server, gus.username, gus.password, gus.totp_secret)
    try:
        for i in range(3):
            await _refused(_login(dev, f"someone{i}", "wrong-password!", "123456"))
        err = await _refused(_login(dev, "gus", gus.password, "123456"))
        assert (err.status, err.code) == (429, "rate_limited")
    finally:
        await dev.aclose()


async def test_pending_revoked_and_disabled(server):
    hal = create_user(server, "hal")
    pending = await enroll(server, hal.username, hal.password, hal.totp_secret)
    try:
        err = await _refused(_login(pending, "hal", hal.password, "000000"))
        assert (err.status, err.code) == (403, "device_pending")
        admin.revoke_device(server_db(server), pending.device_id, wipe=False)
        err = await _refused(_login(pending, "hal", hal.password, "000000"))
        assert (err.status, err.code) == (403, "device_revoked")
    finally:
        await pending.aclose()
    ivy = create_user(server, "ivy")  # a fresh user: no wait for an unused TOTP step
    dev = await enroll_and_login(server, ivy.username, ivy.password, ivy.totp_secret)
    try:
        await dev.transport.get_json("/v1/auth/session")
        admin.disable_user(server_db(server), "ivy")
        err = await _refused(dev.transport.get_json("/v1/auth/session"))
        assert err.status == 401  # its session was ended with the account
        err = await _refused(dev.transport.post_json(
            "/v1/auth/refresh", {"refresh_token": dev.refresh_token}))
        assert err.status == 401
    finally:
        await dev.aclose()


async def test_idle_throttle_rows_are_forgotten(open_server):
    db = server_db(open_server)
    with db.transaction() as conn:
        conn.execute("INSERT INTO login_throttle (username, failures, next_attempt_ms,"
                     " locked_until_ms, updated_ms) VALUES ('old-typo', 3, 0, 0, 1000)")
    alice = create_user(open_server, "alice")
    dev = await enroll(open_server, alice.username, alice.password, alice.totp_secret)
    try:
        await _refused(_login(dev, "alice", "wrong-password!", "000000"))
        names = {r[0] for r in db.connection().execute("SELECT username FROM login_throttle")}
        assert names == {"alice"}
    finally:
        await dev.aclose()


async def test_totp_seeds_are_sealed_in_the_database(open_server):
    alice = create_user(open_server, "alice")
    bob = create_user(open_server, "bob")
    db = server_db(open_server)
    for path in open_server.data_dir.glob("server.sqlite3*"):  # the WAL too
        data = path.read_bytes()
        assert alice.totp_secret.encode() not in data and bob.totp_secret.encode() not in data
    # A sealed seed copied onto another account does not open there: refused, not a crash.
    with db.transaction() as conn:
        conn.execute("UPDATE users SET totp_sealed = (SELECT totp_sealed FROM users"
                     " WHERE username = 'alice') WHERE username = 'bob'")
    dev = await enroll(open_server, alice.username, alice.password, alice.totp_secret)
    try:
        code = await next_totp_code(open_server, "alice", alice.totp_secret)
        err = await _refused(_login(dev, "bob", bob.password, code))
        assert (err.status, err.code) == (401, "invalid_credentials")
    finally:
        await dev.aclose()
