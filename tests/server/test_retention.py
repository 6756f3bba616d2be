"""Retention on a running server: the sweep with a chosen clock, and the periodic task."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

from server_stub.api.routes.relay_tasks import run_retention
from server_stub.crud.retention import DAY_MS
from tests.server import relay_support
from tests.server.relay_support import connect_ws, make_room, next_push, post, sync
from tests.support.clients import server_db

crowd = relay_support.crowd  # fixture


async def _blob(dev, room_id: str) -> str:
    data = os.urandom(5000)
    blob = await dev.transport.post_json("/v1/blobs", {
        "room_id": room_id, "total_size": len(data), "chunk_size": 5000, "chunk_count": 1,
        "sha256": hashlib.sha256(data).hexdigest()})
    await dev.transport.request("PUT", f"/v1/blobs/{blob['blob_id']}/chunks/0", content=data)
    await dev.transport.post_json(f"/v1/blobs/{blob['blob_id']}/finalize", {})
    return blob["blob_id"]


async def test_sweep_with_a_future_clock_purges_old_ciphertext(make_server, crowd):
    server = make_server(require_device_approval=False, login_backoff_base_ms=0,
                         retention_days=7)
    alice, bob = await crowd(server, "alice", "bob")
    room_id = await make_room(alice, bob)
    await post(alice, room_id, "evt-old-000001")
    blob_id = await _blob(alice, room_id)
    await alice.transport.post_json("/v1/to_device", {
        "txn_id": "txn-old-000001", "type": "m.x", "messages": [
            {"user_id": bob.user_id, "device_id": bob.device_id, "content": {"c": 1}}]})
    now = int(time.time() * 1000)
    kept = run_retention(server.app, now=now + 6 * DAY_MS)
    assert (kept.events, kept.blobs, kept.to_device) == (0, 0, 0)
    report = run_retention(server.app, now=now + 8 * DAY_MS)
    assert report.events >= 1 and report.blobs == 1 and report.to_device == 1
    assert not (server.settings.blob_dir / blob_id).exists()
    conn = server_db(server).connection()
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    # The consult itself and its membership survive; the blob is gone for members too.
    assert [r["room_id"] for r in (await bob.transport.get_json("/v1/rooms"))["rooms"]] == [
        room_id]
    err = await relay_support.refused(bob.transport.get_json(f"/v1/blobs/{blob_id}"))
    assert err.status == 403
    assert (await sync(bob))["to_device"] == []


async def test_periodic_sweep_records_lapsed_grants_unprompted(make_server, crowd):
    server = make_server(require_device_approval=False, login_backoff_base_ms=0,
                         relay_sweep_interval_s=0.2)
    alice, bob = await crowd(server, "alice", "bob")
    room_id = await make_room(alice)
    await alice.transport.post_json(f"/v1/rooms/{room_id}/invite", {
        "user_id": bob.user_id, "expires_ms": int(time.time() * 1000) + 800})
    await bob.transport.post_json(f"/v1/rooms/{room_id}/join", {})
    ws = await connect_ws(server, alice)
    try:
        # Nobody touches the room: the sweep alone notices the lapse and tells the owner.
        async with asyncio.timeout(5):
            while True:
                pushed = await next_push(ws, "event")
                if pushed["event"]["content"]["membership"] == "expire":
                    break
        assert pushed["event"]["content"]["user_id"] == bob.user_id
    finally:
        await ws.close()
    members = await alice.transport.get_json(f"/v1/rooms/{room_id}/members")
    assert [m["user_id"] for m in members["members"]] == [alice.user_id]
