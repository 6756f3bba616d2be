"""Offline grace wired into the real session: successful server contacts reset the clock
(stored in the cache), failed polls run the check, and the check locks the session and then
wipes the workstation (the real Wiper: files and keys gone). Clocks are injected; the
server is really stopped. Also: the session's periodic cache checkpoint and its use of
Policy.cache_memory_security."""

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

import app.services.session as session_module
from app.core.errors import ConnectionFailed
from app.core.wipe import OfflineAction
from app.services.offline_guard import LAST_CONTACT, OfflineGuard
from app.services.session import SessionState
from app.storage.secrets import SecretRepository
from tests.integration.test_sign_in import sign_in
from tests.support.clients import create_user

HOUR = 3600.0


class Clocks:
    def __init__(self) -> None:
        self.wall, self.mono = time.time(), 0.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def with_clocks(ws, clocks) -> OfflineGuard:
    """The session's guard, as SessionService builds it, but on the test's clocks."""
    s = ws.session
    s.offline_guard = OfflineGuard.from_policy(
        s.policy, lock=s.lock, wipe=s._offline_wipe,
        clock=lambda: clocks.wall, monotonic=lambda: clocks.mono)
    return s.offline_guard


async def signed_in(server, workstation, name, **kwargs):
    creds = create_user(server, name)
    ws = workstation(name, **kwargs)
    await sign_in(ws, creds)
    assert ws.session.snapshot.state is SessionState.SIGNED_IN
    return ws


async def test_contacts_reset_and_failures_lock(open_server, open_workstation):
    clocks = Clocks()
    ws = open_workstation("dr.contact")
    guard = with_clocks(ws, clocks)
    await sign_in(ws, create_user(open_server, "dr.contact"))
    # Signing in was a contact, and it is in the cache.
    stored = SecretRepository(ws.session.cache).get(LAST_CONTACT)
    assert stored == str(int(clocks.wall * 1000)).encode()

    clocks.advance(7 * HOUR)
    await ws.session.poll_status()  # the server answers: the clock starts again
    clocks.advance(7 * HOUR)
    assert guard.check() is OfflineAction.OK

    open_server.stop()
    with pytest.raises(ConnectionFailed):
        await ws.session.poll_status()
    clocks.advance(1 * HOUR + 1)  # 8 h since the last answer
    assert guard.check() is OfflineAction.LOCK
    assert ws.session.snapshot.state is SessionState.LOCKED
    assert any(p.is_file() for p in ws.paths.data.rglob("*"))  # locked, not wiped
    await ws.session.aclose()


async def test_a_push_frame_is_a_contact(open_server, open_workstation):
    clocks = Clocks()
    ws = open_workstation("dr.push", poll_s=3600)
    guard = with_clocks(ws, clocks)
    await sign_in(ws, create_user(open_server, "dr.push"))
    clocks.advance(9 * HOUR)
    assert guard.decide() is OfflineAction.LOCK
    ws.session.start_push()  # the server greets every new socket with a "hello" frame
    deadline = time.monotonic() + 5
    while guard.last_contact_s != clocks.wall and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert guard.check() is OfflineAction.OK
    assert ws.session.snapshot.state is SessionState.SIGNED_IN
    await ws.session.aclose()


async def test_failed_polls_past_the_limit_wipe_the_workstation(open_server, open_workstation):
    clocks = Clocks()
    ws = open_workstation("dr.lost", poll_s=5)
    with_clocks(ws, clocks)
    await sign_in(ws, create_user(open_server, "dr.lost"))
    device = ws.session.device
    keystore = ws.keystore_for(device.username, device.device_id)
    assert keystore.has_cache_key()

    open_server.stop()
    clocks.advance(72 * HOUR)
    ws.session.start_polling()  # the next poll (5 s, the policy's minimum) fails
    deadline = time.monotonic() + 5 + 3
    while ws.session.snapshot.state is not SessionState.WIPED and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert ws.session.snapshot.state is SessionState.WIPED
    assert [p for p in ws.paths.data.rglob("*") if p.is_file()] == []
    assert not keystore.has_cache_key()
    await ws.session.aclose()


async def test_signed_in_session_checkpoints_the_cache(open_server, open_workstation,
                                                       monkeypatch):
    monkeypatch.setattr(session_module, "CHECKPOINT_INTERVAL_S", 0.05)
    ws = await signed_in(open_server, open_workstation, "dr.longshift")
    device = ws.session.device
    keystore = ws.keystore_for(device.username, device.device_id)
    start = keystore.generation()
    await asyncio.sleep(0.3)
    assert keystore.generation() >= start + 3
    assert ws.session.cache.generation == keystore.generation()
    await ws.session.sign_out()
    after = keystore.generation()
    await asyncio.sleep(0.2)
    assert keystore.generation() == after  # stopped with the session
    await ws.session.aclose()


MEMSEC_SCRIPT = """
import sys, tempfile, pathlib
from types import SimpleNamespace
from app.config import Paths, Policy
from app.security.keystore import MemoryKeyStore
from app.services.session import SessionService
flag = sys.argv[1] == "1"
s = SessionService(Policy(cache_memory_security=flag),
                   Paths.under(pathlib.Path(tempfile.mkdtemp())),
                   lambda user, device: MemoryKeyStore(user, device))
cache, _ = s._open_cache(SimpleNamespace(user_id="u1"),
                         SimpleNamespace(device_id="DEV1", username="u"))
print(cache.conn.execute("PRAGMA cipher_memory_security").fetchone()[0])
cache.close()
"""


@pytest.mark.parametrize("flag", ["0", "1"])
def test_the_policy_decides_sqlcipher_memory_security(flag):
    # A process of its own: SQLCipher's setting is process-wide and cannot be turned off.
    out = subprocess.run([sys.executable, "-c", MEMSEC_SCRIPT, flag], capture_output=True,
                         text=True, timeout=60, check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == flag
