"""The push WebSocket over real TLS: who gets what, authentication, orders, device lists."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from server_stub import admin
from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS
from tests.server import relay_support
from tests.server.relay_support import (
    connect_ws,
    make_room,
    next_push,
    no_push,
    post,
    sync,
    ws_headers,
)
from tests.support.clients import server_db

people = relay_support.people  # fixture
crowd = relay_support.crowd  # fixture


@pytest.fixture
def fast_watch(make_server):
    return make_server(require_device_approval=False, login_backoff_base_ms=0,
                       relay_watch_interval_s=0.1)


async def test_event_pushed_to_members_only(open_server, people):
    alice, bob, carol = await people("alice", "bob", "carol")
    room_id = await make_room(alice, bob)
    bob_ws = await connect_ws(open_server, bob)
    carol_ws = await connect_ws(open_server, carol)
    try:
        hello = await next_push(bob_ws, "hello")
        await next_push(carol_ws, "hello")
        posted = await post(alice, room_id, "evt-push-00001")
        pushed = await next_push(bob_ws, "event")
        assert pushed["event"]["event_id"] == "evt-push-00001"
        assert pushed["event"]["pos"] == posted["pos"] > hello["pos"]
        assert pushed["event"]["content"] == relay_support.encrypted("evt-push-00001")
        await no_push(carol_ws, "event")
        # A retry is not pushed again (already delivered once).
        await post(alice, room_id, "evt-push-00001")
        await no_push(bob_ws, "event", 0.3)
    finally:
        await bob_ws.close()
        await carol_ws.close()


async def test_invitee_and_removed_member_are_told(open_server, people):
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice)
    ws = await connect_ws(open_server, bob)
    try:
        await alice.transport.post_json(f"/v1/rooms/{room_id}/invite", {"user_id": bob.user_id})
        assert (await next_push(ws, "event"))["event"]["content"]["membership"] == "invite"
        await bob.transport.post_json(f"/v1/rooms/{room_id}/join", {})
        assert (await next_push(ws, "event"))["event"]["content"]["membership"] == "join"
        await alice.transport.request("DELETE", f"/v1/rooms/{room_id}/members/{bob.user_id}")
        assert (await next_push(ws, "event"))["event"]["content"]["membership"] == "remove"
        await post(alice, room_id, "evt-after-remove")
        await no_push(ws, "event")
    finally:
        await ws.close()


async def test_to_device_notice_then_sync(open_server, people):
    alice, bob = await people("alice", "bob")
    ws = await connect_ws(open_server, bob)
    try:
        await alice.transport.post_json("/v1/to_device", {
            "txn_id": "txn-push-00001", "type": "m.room.encrypted", "messages": [
                {"user_id": bob.user_id, "device_id": bob.device_id, "content": {"c": "olm"}}]})
        await next_push(ws, "to_device")
        assert [m["content"] for m in (await sync(bob))["to_device"]] == [{"c": "olm"}]
    finally:
        await ws.close()


async def test_ping_pong_and_bad_frames(open_server, people):
    (alice,) = await people("alice")
    ws = await connect_ws(open_server, alice)
    try:
        await next_push(ws, "hello")
        await ws.send(json.dumps({"type": "ping"}))
        await next_push(ws, "pong")
        await ws.send("{not json")
        assert (await next_push(ws, "error"))["code"] == "malformed"
        await ws.send(json.dumps({"type": "ping", "pad": "x" * 5000}))
        assert (await next_push(ws, "error"))["code"] == "malformed"
    finally:
        await ws.close()


async def test_unauthenticated_or_replayed_upgrade_refused(open_server, people):
    import ssl

    (alice,) = await people("alice")
    ctx = ssl.create_default_context(cadata=open_server.ca_pem)
    url = f"wss://127.0.0.1:{open_server.port}/v1/ws"
    with pytest.raises(websockets.exceptions.InvalidStatus) as err:
        await websockets.connect(url, ssl=ctx, open_timeout=5)
    assert err.value.response.status_code == 403
    headers = ws_headers(alice)
    ws = await websockets.connect(url, ssl=ctx, additional_headers=headers, open_timeout=5)
    await ws.close()
    with pytest.raises(websockets.exceptions.InvalidStatus):  # same proof again: replay
        await websockets.connect(url, ssl=ctx, additional_headers=headers, open_timeout=5)
    wrong_path = ws_headers(alice, "/v1/other")
    with pytest.raises(websockets.exceptions.InvalidStatus):
        await websockets.connect(url, ssl=ctx, additional_headers=wrong_path, open_timeout=5)


async def test_logout_order_pushed_and_revoked_device_disconnected(fast_watch, crowd):
    alice, bob = await crowd(fast_watch, "alice", "bob")
    await make_room(alice, bob)
    alice_ws = await connect_ws(fast_watch, alice)
    bob_ws = await connect_ws(fast_watch, bob)
    try:
        await next_push(alice_ws, "hello")
        await asyncio.sleep(0.3)  # let the watch take its first snapshot of device lists
        order_id = admin.logout_device(server_db(fast_watch), alice.device_id)
        order = await next_push(alice_ws, "order")
        assert (order["order"], order["order_id"]) == ("logout", order_id)
        await no_push(alice_ws, "order", 0.4)  # sent once, not every round
        admin.revoke_device(server_db(fast_watch), bob.device_id, wipe=False)
        async with asyncio.timeout(5):
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                while True:
                    await bob_ws.recv()
        assert closed.value.rcvd.code == 4403
        assert closed.value.rcvd.reason == "device_revoked"
    finally:
        await alice_ws.close()
        await bob_ws.close()


async def test_device_list_change_pushed_to_room_members(fast_watch, crowd):
    alice, bob = await crowd(fast_watch, "alice", "bob")
    await make_room(alice, bob)
    ws = await connect_ws(fast_watch, alice)
    try:
        await next_push(ws, "hello")
        await asyncio.sleep(0.3)
        admin.revoke_device(server_db(fast_watch), bob.device_id, wipe=True)
        change = await next_push(ws, "device_list")
        assert change["user_id"] == bob.user_id and change["version"] >= 1
    finally:
        await ws.close()


async def test_send_over_socket_is_stored_pushed_and_deduplicated(open_server, people):
    alice, bob, mallory = await people("alice", "bob", "mallory")
    room_id = await make_room(alice, bob)
    alice_ws = await connect_ws(open_server, alice)
    bob_ws = await connect_ws(open_server, bob)
    mallory_ws = await connect_ws(open_server, mallory)
    frame = {"type": "send", "room_id": room_id, "event_id": "evt-ws-000001",
             "event_type": "m.room.encrypted", "content": relay_support.encrypted(1)}
    try:
        await alice_ws.send(json.dumps(frame))
        sent = await next_push(alice_ws, "sent")
        assert (sent["event_id"], sent["duplicate"]) == ("evt-ws-000001", False)
        pushed = await next_push(bob_ws, "event")
        assert pushed["event"]["pos"] == sent["pos"]
        assert pushed["event"]["content"] == relay_support.encrypted(1)
        await alice_ws.send(json.dumps(frame))  # a retry after a reconnect
        assert (await next_push(alice_ws, "sent"))["duplicate"] is True
        await mallory_ws.send(json.dumps(frame))
        refusal = await next_push(mallory_ws, "error")
        assert (refusal["code"], refusal["event_id"]) == ("not_member", "evt-ws-000001")
        for bad in ({**frame, "content": "text"}, {**frame, "event_id": "x"},
                    {**frame, "extra": 1}, {k: v for k, v in frame.items() if k != "room_id"}):
            await alice_ws.send(json.dumps(bad))
            assert (await next_push(alice_ws, "error"))["code"] == "malformed"
        big = {**frame, "event_id": "evt-ws-big-01",
               "content": {"c": "A" * open_server.settings.max_event_bytes}}
        await alice_ws.send(json.dumps(big))
        assert (await next_push(alice_ws, "error"))["code"] == "too_large"
        assert [e["event_id"] for e in (await sync(bob))["events"]
                if e["type"] == "m.room.encrypted"] == ["evt-ws-000001"]
    finally:
        for ws in (alice_ws, bob_ws, mallory_ws):
            await ws.close()


async def test_backlog_is_batched_in_order(open_server, people):
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    ws = await connect_ws(open_server, bob)
    try:
        await next_push(ws, "hello")
        await asyncio.gather(*(post(alice, room_id, f"evt-batch-{i:04d}") for i in range(30)))
        got = [(await next_push(ws, "event"))["event"]["pos"] for _ in range(30)]
        assert got == sorted(got) and len(set(got)) == 30
    finally:
        await ws.close()


async def test_pushes_are_written_straight_to_the_sockets(open_server, people):
    """The shipped server (uvicorn's sans-I/O WebSocket protocol) gets the hub's direct
    writer: a push to an idle socket costs no task switch. If a uvicorn upgrade took it
    away, pushes would still arrive (queued), and this test would say so."""
    from server_stub.api.routes.relay_support import hub_of

    alice, bob, carol = await people("alice", "bob", "carol")
    room_id = await make_room(alice, bob, carol)
    sockets = [await connect_ws(open_server, dev) for dev in (alice, bob, carol)]
    hub = hub_of(open_server.app)
    try:
        for ws in sockets:
            await next_push(ws, "hello")
        before = hub.stats.written_direct
        frame = {"type": "send", "room_id": room_id, "event_id": "evt-direct-0001",
                 "event_type": "m.room.encrypted", "content": relay_support.encrypted(1)}
        await sockets[0].send(json.dumps(frame))
        pushed = [(await next_push(ws, "event"))["event"] for ws in sockets]
        sent = await next_push(sockets[0], "sent")  # behind the sender's own push
        assert [e["pos"] for e in pushed] == [sent["pos"]] * 3
        # Three pushes and the sender's reply, all written at once. (The server's thread
        # counts each write just after making it: give it a moment.)
        for _ in range(100):
            if hub.stats.written_direct - before >= 4:
                break
            await asyncio.sleep(0.01)
        assert hub.stats.written_direct - before == 4
    finally:
        for ws in sockets:
            await ws.close()


async def test_storage_failure_is_answered_and_the_socket_goes_on(open_server, people,
                                                                   monkeypatch):
    from server_stub.api.routes import ws as ws_route

    (alice,) = await people("alice")
    room_id = await make_room(alice)
    real = ws_route.store_events
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(ws_route, "store_events", flaky)
    ws = await connect_ws(open_server, alice)
    frame = {"type": "send", "room_id": room_id, "event_id": "evt-flaky-0001",
             "event_type": "m.room.encrypted", "content": relay_support.encrypted(1)}
    try:
        await ws.send(json.dumps(frame))
        assert (await next_push(ws, "error"))["code"] == "internal"
        await ws.send(json.dumps(frame))  # the client's retry
        assert (await next_push(ws, "sent"))["duplicate"] is False
    finally:
        await ws.close()


async def test_send_waits_for_another_writer_instead_of_failing(open_server, people):
    """The socket stores on the event loop's connection, which never waits for a lock;
    with another writer holding it, the burst goes to the thread pool and waits there."""
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    ws = await connect_ws(open_server, alice)
    bob_ws = await connect_ws(open_server, bob)
    holder = Database(server_db(open_server).path, MIGRATIONS).connection()
    frame = {"type": "send", "room_id": room_id, "event_id": "evt-locked-0001",
             "event_type": "m.room.encrypted", "content": relay_support.encrypted(1)}
    try:
        await next_push(ws, "hello")
        await next_push(bob_ws, "hello")
        holder.execute("BEGIN IMMEDIATE")  # e.g. the admin CLI mid-transaction
        try:
            await ws.send(json.dumps(frame))
            await no_push(ws, "sent", 0.4)
            await no_push(ws, "error", 0.01)
        finally:
            holder.execute("COMMIT")
        sent = await next_push(ws, "sent")
        assert sent["event_id"] == "evt-locked-0001" and sent["duplicate"] is False
        assert (await next_push(bob_ws, "event"))["event"]["event_id"] == "evt-locked-0001"
        # And the next one is stored on the loop again, in order after it.
        frame["event_id"] = "evt-locked-0002"
        await ws.send(json.dumps(frame))
        assert (await next_push(ws, "sent"))["pos"] > sent["pos"]
    finally:
        holder.close()
        await ws.close()
        await bob_ws.close()


async def test_send_on_a_lapsed_grant_records_the_lapse_before_the_refusal(open_server,
                                                                          people):
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice)
    expires = int(time.time() * 1000) + 1500
    await alice.transport.post_json(f"/v1/rooms/{room_id}/invite",
                                    {"user_id": bob.user_id, "expires_ms": expires})
    await bob.transport.post_json(f"/v1/rooms/{room_id}/join", {})
    ws = await connect_ws(open_server, bob)
    alice_ws = await connect_ws(open_server, alice)
    try:
        await next_push(ws, "hello")
        await next_push(alice_ws, "hello")
        await asyncio.sleep(max(0.0, expires / 1000 - time.time()) + 0.05)
        await ws.send(json.dumps({
            "type": "send", "room_id": room_id, "event_id": "evt-too-late-01",
            "event_type": "m.room.encrypted", "content": relay_support.encrypted(1)}))
        # The lapse reaches bob (its subject) before his refusal does.
        kinds = []
        async with asyncio.timeout(5):
            while "error" not in kinds:
                for line in (await ws.recv()).split("\n"):
                    obj = json.loads(line)
                    kinds.append(obj["type"])
                    if obj["type"] == "error":
                        assert obj["code"] == "grant_expired"
                    if obj["type"] == "event":
                        assert obj["event"]["content"]["membership"] == "expire"
        assert kinds.index("event") < kinds.index("error")
        lapse = await next_push(alice_ws, "event")
        assert lapse["event"]["content"]["user_id"] == bob.user_id
    finally:
        await ws.close()
        await alice_ws.close()
