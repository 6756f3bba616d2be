"""Enrollment, approval and login through the real server, with the real client services:
SessionService -> auth_api -> Transport (pinned TLS, request proofs) -> server_stub."""

import shutil
import subprocess
import sys
import time

import pytest

from app.core.errors import SafeConsultError
from app.security.testing import InMemoryTestKeyring
from app.services.session import SessionState, SignInRefused
from tests.support.clients import create_user, next_totp_code, server_db

SQLITE_HEADER = b"SQLite format 3\x00"


def admin(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server_stub", "admin", "--data-dir", str(server.data_dir), *args],
        capture_output=True, text=True, timeout=60,
    )


def device_state(server, device_id: str) -> str:
    row = server_db(server).connection().execute(
        "SELECT state FROM devices WHERE device_id = ?", (device_id,)).fetchone()
    return row[0]


async def sign_in(ws, creds, password=None):
    code = await next_totp_code(ws.server, creds.username, creds.totp_secret)
    return await ws.session.sign_in(creds.username, password or creds.password, code)


def readable_files(root):
    """Files under ``root`` that are plaintext SQLite or contain ``needle``."""
    return [p for p in root.rglob("*") if p.is_file() and p.read_bytes()[:16] == SQLITE_HEADER]


async def test_enroll_wait_for_approval_then_sign_in(server, workstation):
    creds = create_user(server, "dr.okafor", role="physician")
    ws = workstation()
    with pytest.raises(SignInRefused) as refused:
        await sign_in(ws, creds)
    assert refused.value.code == "device_pending"
    assert "approval" in refused.value.user_message
    snap = ws.session.snapshot
    assert snap.state is SessionState.PENDING_APPROVAL
    assert len(snap.fingerprint.split()) == 11  # 43 base64 chars in groups of four

    # Still pending: refused the same way, and nothing was opened.
    with pytest.raises(SignInRefused) as again:
        await sign_in(ws, creds)
    assert again.value.code == "device_pending"
    assert ws.session.cache is None

    result = admin(server, "device", "approve", snap.device_id)
    assert result.returncode == 0, result.stderr

    user = await sign_in(ws, creds)
    assert user.username == "dr.okafor" and user.role == "physician"
    assert ws.session.snapshot.state is SessionState.SIGNED_IN
    assert ws.session.cache is not None
    assert device_state(server, snap.device_id) == "active"
    # The cache and the identity file are on disk, neither readable without the keyring.
    assert any(ws.paths.data.rglob("*.db")) or any(ws.paths.data.rglob("*"))
    assert readable_files(ws.paths.data) == []
    await ws.session.sign_out()
    assert ws.session.snapshot.state is SessionState.SIGNED_OUT
    await ws.session.aclose()


async def test_wrong_password_and_unknown_user_read_the_same(server, workstation):
    creds = create_user(server, "nurse.li", role="nurse")
    ws = workstation()
    with pytest.raises(SignInRefused) as wrong:
        await sign_in(ws, creds, password="not-the-password")
    code = await next_totp_code(server, creds.username, creds.totp_secret)
    with pytest.raises(SignInRefused) as unknown:
        await ws.session.sign_in("nobody.here", "whatever-password", code)
    assert wrong.value.code == unknown.value.code == "invalid_credentials"
    assert wrong.value.user_message == unknown.value.user_message
    await ws.session.aclose()


async def test_malformed_input_is_refused_before_the_network(server, workstation):
    ws = workstation()
    for args in [("", "pw", "123456"), ("someone", "", "123456"), ("someone", "pw", "12ab56")]:
        with pytest.raises(SignInRefused) as refused:
            await ws.session.sign_in(*args)
        assert refused.value.code == "malformed"
    await ws.session.aclose()


async def _signed_in(server, workstation, name, **kwargs):
    """Enrolled on a server without approval: signed in with the enrollment's own code."""
    creds = create_user(server, name)
    ws = workstation(name, **kwargs)
    await sign_in(ws, creds)
    assert ws.session.snapshot.state is SessionState.SIGNED_IN
    return creds, ws


async def test_revoked_device_is_refused_and_wipes_itself(open_server, open_workstation):
    creds, ws = await _signed_in(open_server, open_workstation, "dr.revoked")
    device_id = ws.session.snapshot.device_id
    await ws.session.sign_out()
    assert admin(open_server, "device", "revoke", device_id).returncode == 0

    with pytest.raises(SignInRefused) as refused:
        await sign_in(ws, creds)
    assert refused.value.code == "device_revoked"
    assert ws.session.snapshot.state is SessionState.WIPED
    assert [p for p in ws.paths.data.rglob("*") if p.is_file()] == []
    await ws.session.aclose()


async def test_a_copied_data_directory_does_not_open_elsewhere(
    open_server, open_workstation, tmp_path,
):
    creds, ws = await _signed_in(open_server, open_workstation, "dr.copied")
    await ws.session.sign_out()
    await ws.session.aclose()
    # Another machine: the same files, a different OS keyring.
    shutil.copytree(ws.paths.data, tmp_path / "thief" / "data")
    thief = open_workstation("thief", keyring=InMemoryTestKeyring())
    with pytest.raises(SafeConsultError) as refused:
        await sign_in(thief, creds)
    assert "could not be opened" in refused.value.user_message
    assert thief.session.cache is None
    await thief.session.aclose()


async def test_remote_wipe_reaches_a_polling_client(open_server, open_workstation):
    _, ws = await _signed_in(open_server, open_workstation, "dr.lost", poll_s=5)
    device_id = ws.session.snapshot.device_id
    ws.session.start_polling()
    ordered = time.monotonic()
    assert admin(open_server, "device", "wipe", device_id).returncode == 0
    deadline = ordered + 5 + 2
    import asyncio

    while ws.session.snapshot.state is not SessionState.WIPED and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    took = time.monotonic() - ordered
    assert ws.session.snapshot.state is SessionState.WIPED, f"not wiped after {took:.1f}s"
    assert [p for p in ws.paths.data.rglob("*") if p.is_file()] == []
    # The signed acknowledgement reached the server.
    for _ in range(40):
        if device_state(open_server, device_id) == "wiped":
            break
        await asyncio.sleep(0.05)
    assert device_state(open_server, device_id) == "wiped"
    await ws.session.aclose()


async def test_logout_order_signs_the_client_out(open_server, open_workstation):
    creds, ws = await _signed_in(open_server, open_workstation, "dr.logout")
    assert admin(open_server, "device", "logout", ws.session.snapshot.device_id).returncode == 0
    await ws.session.poll_status()
    assert ws.session.snapshot.state is SessionState.SIGNED_OUT
    # Data stays (logout is not wipe), and signing in again works.
    assert any(p.is_file() for p in ws.paths.data.rglob("*"))
    await sign_in(ws, creds)
    assert ws.session.snapshot.state is SessionState.SIGNED_IN
    await ws.session.aclose()


async def test_remote_wipe_by_push_arrives_within_a_second(open_server, open_workstation):
    import asyncio

    _, ws = await _signed_in(open_server, open_workstation, "dr.pushed", poll_s=3600)
    device_id = ws.session.snapshot.device_id
    ws.session.start_push()
    await asyncio.sleep(0.5)  # let the socket connect
    ordered = time.monotonic()
    assert admin(open_server, "device", "wipe", device_id).returncode == 0
    cli_done = time.monotonic()
    while ws.session.snapshot.state is not SessionState.WIPED:
        if time.monotonic() - ordered > 5:
            break
        await asyncio.sleep(0.02)
    done = time.monotonic()
    assert ws.session.snapshot.state is SessionState.WIPED
    # The order is committed when the admin CLI returns; from there the push must land
    # within a second.
    assert done - cli_done <= 1.0, f"push wipe took {done - cli_done:.2f}s after the order"
    assert [p for p in ws.paths.data.rglob("*") if p.is_file()] == []
    await ws.session.aclose()


async def test_expired_access_tokens_are_refreshed_once_for_concurrent_calls(tmp_path):
    import asyncio

    from app.net import auth_api
    from tests.integration.conftest import Workstation
    from tests.support.server import start_server

    server = start_server(tmp_path / "srv", require_device_approval=False,
                          access_token_ttl_s=1)
    try:
        creds = create_user(server, "dr.longshift")
        ws = Workstation(server, tmp_path / "ws")
        await sign_in(ws, creds)
        first_refresh = ws.session.tokens.refresh_token
        await asyncio.sleep(1.2)
        # Five calls hit the expired token at once: one refresh serves them all (a second
        # refresh with the rotated token would end the session as a suspected theft).
        users = await asyncio.gather(*(auth_api.session_info(ws.session.transport)
                                       for _ in range(5)))
        assert {u.username for u in users} == {"dr.longshift"}
        assert ws.session.tokens.refresh_token != first_refresh
        await asyncio.sleep(1.2)
        assert (await auth_api.session_info(ws.session.transport)).username == "dr.longshift"
        await ws.session.aclose()
    finally:
        server.stop()


async def test_lock_keeps_the_session_and_unlock_needs_the_password(open_server, open_workstation):
    from app.config import Policy
    from app.services.session import SessionService

    creds = create_user(open_server, "dr.idle")
    ws = open_workstation("idle")
    ws.session = SessionService(
        Policy(server_url=open_server.url, pinned_ca_pem=open_server.ca_pem,
               max_unlock_failures=3), ws.paths, ws.keystore_for)
    await sign_in(ws, creds)
    ws.session.lock()
    assert ws.session.snapshot.state is SessionState.LOCKED
    assert ws.session.snapshot.user.username == "dr.idle"
    with pytest.raises(SignInRefused) as wrong:
        await ws.session.unlock("not-my-password")
    assert wrong.value.code == "unlock_failed"
    assert ws.session.snapshot.state is SessionState.LOCKED
    # Locked, the device still obeys the server (a logout order would land).
    await ws.session.poll_status()
    await ws.session.unlock(creds.password)
    assert ws.session.snapshot.state is SessionState.SIGNED_IN
    assert ws.session.unlock_failures == 0
    # Lock, the refused unlock and the unlock are each one audit entry on the server.
    await ws.session.audit.flush()
    rows = server_db(open_server).connection().execute(
        "SELECT action, outcome FROM audit_log WHERE device_id = ? AND action LIKE 'client.%' "
        "ORDER BY seq", (ws.session.snapshot.device_id,)).fetchall()
    assert [tuple(r) for r in rows] == [("client.session.lock", "ok"),
                                        ("client.session.unlock", "refused"),
                                        ("client.session.unlock", "ok")]

    ws.session.lock()
    for attempt in range(3):
        with pytest.raises(SignInRefused) as refused:
            await ws.session.unlock(f"guess-{attempt}")
    assert refused.value.code == "unlock_failed_final"
    assert ws.session.snapshot.state is SessionState.SIGNED_OUT
    assert ws.session.cache is None
    await ws.session.aclose()
