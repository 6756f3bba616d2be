"""The relay watch: idle rounds skip the scan of every socket, and every change the watch
must react to -- from this process, another process or the clock -- still makes it scan."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
import websockets

from server_stub import admin
from server_stub.api.routes.relay_support import hub_of
from server_stub.api.routes.relay_tasks import WatchState, watch_once
from server_stub.core.config import ServerSettings
from server_stub.core.db import Database
from server_stub.core.pubsub import CLOSE, Subscriber
from server_stub.core.schema import MIGRATIONS
from server_stub.core.security import hash_password, now_ms
from server_stub.crud import devices as devices_crud
from server_stub.crud import rooms, sessions
from server_stub.crud import users as users_crud
from server_stub.main import create_app
from tests.server import relay_support
from tests.server.relay_support import connect_ws, make_room, next_push

crowd = relay_support.crowd  # fixture


def _seed_device(db: Database, settings: ServerSettings, name: str) -> tuple[str, str, str]:
    """(user id, device id, session id) of an active device with a session."""
    with db.transaction() as conn:
        user = users_crud.create_user(conn, username=name, role="physician",
                                      password_hash=hash_password("unused-password"),
                                      totp_sealed="none")
        device_id = f"dev-{name}"
        devices_crud.create_device(
            conn, device_id=device_id, user_id=user.id, ed25519=f"ed-{name}",
            curve25519=f"cu-{name}", display_name=name, enroll_ts_ms=now_ms(),
            enroll_signature="sig", active=True)
        issued = sessions.create_session(conn, settings, user_id=user.id, device_id=device_id)
    return user.id, device_id, issued.session_id


def _queued(sub: Subscriber) -> list:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


@pytest.fixture
def watched(tmp_path):
    settings = ServerSettings(data_dir=tmp_path / "server", require_device_approval=False)
    app = create_app(settings)
    # The admin CLI's view: its own connections to the same file.
    other = Database(settings.db_path, MIGRATIONS)
    return app, settings, other


async def test_idle_rounds_skip_the_scan_and_relevant_writes_do_not(watched):
    app, settings, other = watched
    alice = _seed_device(app.state.db, settings, "alice")
    bob = _seed_device(app.state.db, settings, "bob")
    hub = hub_of(app)
    sub_a = hub.subscribe(*alice)
    state = WatchState()
    try:
        await watch_once(app, state)
        assert state.scans == 1
        for _ in range(3):
            await watch_once(app, state)
        assert state.scans == 1  # nothing changed: no scan

        # Writes the watch does not care about leave it idle.
        with other.transaction() as conn:
            devices_crud.touch_last_seen(conn, alice[1], min_interval_ms=0)
            rooms.create_room(conn, creator_user_id=alice[0], creator_device_id=alice[1],
                              now_ms=now_ms())
        await watch_once(app, state)
        # (creating a room adds its creator as a member: that one counts)
        assert state.scans == 2
        scans_after_room = state.scans
        with other.transaction() as conn:
            devices_crud.touch_last_seen(conn, alice[1], min_interval_ms=0)
        await watch_once(app, state)
        assert state.scans == scans_after_room

        # A socket joining makes the next round scan.
        sub_b = hub.subscribe(*bob)
        await watch_once(app, state)
        assert state.scans == scans_after_room + 1

        # An order written through another connection is found and pushed, once.
        order_id = admin.logout_device(other, alice[1])
        await watch_once(app, state)
        assert state.scans == scans_after_room + 2
        pushed = _queued(sub_a)
        assert any(f'"order_id": "{order_id}"' in item for item in pushed if item is not CLOSE)
        await watch_once(app, state)
        assert not [item for item in _queued(sub_a) if item is not CLOSE]

        # A revocation closes the socket.
        admin.revoke_device(other, bob[1], wipe=False)
        await watch_once(app, state)
        assert sub_b.closed and (sub_b.close_code, sub_b.close_reason) == (4403,
                                                                           "device_revoked")
    finally:
        state.close()


async def test_session_end_without_any_write_is_noticed(watched):
    app, settings, other = watched
    alice = _seed_device(app.state.db, settings, "alice")
    end = now_ms() + 400
    with other.transaction() as conn:
        conn.execute("UPDATE sessions SET absolute_expires_ms = ? WHERE id = ?", (end, alice[2]))
    hub = hub_of(app)
    sub = hub.subscribe(*alice)
    state = WatchState()
    try:
        await watch_once(app, state)
        assert state.due_ms == end and not sub.closed
        await watch_once(app, state)
        assert state.scans == 1  # not yet due
        await asyncio.sleep(max(0.0, (end - now_ms()) / 1000) + 0.05)
        await watch_once(app, state)  # the clock passed the end: no write announced it
        assert state.scans == 2
        assert sub.closed and (sub.close_code, sub.close_reason) == (4401, "unauthenticated")
    finally:
        state.close()


async def test_a_failing_change_check_means_scan_not_skip(watched):
    """If the loop thread cannot read the counter, the round scans (in the pool) instead."""
    app, settings, _ = watched
    alice = _seed_device(app.state.db, settings, "alice")
    hub_of(app).subscribe(*alice)
    state = WatchState()
    try:
        await watch_once(app, state)
        await watch_once(app, state)
        assert state.scans == 1 and state.reader is not None
        state.reader.close()  # every query on it now raises sqlite3.ProgrammingError
        await watch_once(app, state)
        assert state.scans == 2
        await watch_once(app, state)  # a fresh reader: idle again
        assert state.scans == 2
    finally:
        state.close()


@pytest.fixture
def fast_watch(make_server):
    return make_server(require_device_approval=False, login_backoff_base_ms=0,
                       relay_watch_interval_s=0.1)


async def test_order_from_the_admin_cli_process_is_pushed_within_a_second(fast_watch, crowd):
    alice, bob = await crowd(fast_watch, "alice", "bob")
    await make_room(alice, bob)
    ws = await connect_ws(fast_watch, alice)
    try:
        await next_push(ws, "hello")
        await asyncio.sleep(0.3)  # the watch has scanned and gone idle
        cli = subprocess.run(
            [sys.executable, "-m", "server_stub", "admin", "--data-dir",
             str(fast_watch.data_dir), "device", "logout", alice.device_id],
            capture_output=True, text=True, timeout=60, check=False)
        assert cli.returncode == 0, cli.stderr
        written = time.monotonic()
        order = await next_push(ws, "order", timeout=5)
        assert order["order"] == "logout" and order["order_id"] in cli.stdout
        assert time.monotonic() - written < 1.0
    finally:
        await ws.close()


async def test_socket_closed_when_its_session_reaches_its_absolute_end(make_server, crowd):
    server = make_server(require_device_approval=False, login_backoff_base_ms=0,
                         relay_watch_interval_s=0.1, session_absolute_s=3)
    (alice,) = await crowd(server, "alice")
    ws = await connect_ws(server, alice)
    try:
        await next_push(ws, "hello")
        async with asyncio.timeout(10):
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                while True:
                    await ws.recv()
        assert closed.value.rcvd.code == 4401
    finally:
        await ws.close()
