"""Call signaling over real TLS: relayed between members' devices only, never stored."""

from __future__ import annotations

import asyncio

import pytest

from tests.server import relay_support
from tests.server.relay_support import connect_ws, make_room, next_push, no_push, refused
from tests.support.clients import server_db

people = relay_support.people  # fixture
crowd = relay_support.crowd  # fixture

OFFER = {"sdp": "v=0 o=- 4611731400430051336 2 IN IP4 127.0.0.1", "sig": "c2lnbmF0dXJl"}


def _signal(to, kind="offer", payload=None, call_id="call-000000001"):
    return {"to_user_id": to.user_id, "to_device_id": to.device_id, "call_id": call_id,
            "kind": kind, "payload": payload or OFFER}


async def test_offer_answer_candidate_relayed_between_members(open_server, people):
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    alice_ws = await connect_ws(open_server, alice)
    bob_ws = await connect_ws(open_server, bob)
    try:
        sent = await alice.transport.post_json(f"/v1/rooms/{room_id}/signal", _signal(bob))
        assert sent == {"delivered": True}
        got = await next_push(bob_ws, "signal")
        assert got["payload"] == OFFER and got["kind"] == "offer"
        assert (got["sender"], got["sender_device"], got["room_id"]) == (
            alice.user_id, alice.device_id, room_id)
        await bob.transport.post_json(f"/v1/rooms/{room_id}/signal",
                                      _signal(alice, "answer", {"sdp": "answer"}))
        assert (await next_push(alice_ws, "signal"))["payload"] == {"sdp": "answer"}
        for i in range(3):
            await alice.transport.post_json(
                f"/v1/rooms/{room_id}/signal", _signal(bob, "candidate", {"c": i}))
        assert [(await next_push(bob_ws, "signal"))["payload"]["c"] for _ in range(3)] == [0, 1, 2]
    finally:
        await alice_ws.close()
        await bob_ws.close()
    # Nothing of the call reached the database.
    conn = server_db(open_server).connection()
    for table, column in (("events", "content"), ("to_device", "content")):
        hits = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} LIKE '%IN IP4%'")
        assert hits.fetchone()[0] == 0


async def test_signaling_refused_unless_both_are_members(open_server, people):
    alice, bob, carol, mallory = await people("alice", "bob", "carol", "mallory")
    room_id = await make_room(alice, bob)
    mallory_ws = await connect_ws(open_server, mallory)
    carol_ws = await connect_ws(open_server, carol)
    try:
        err = await refused(alice.transport.post_json(f"/v1/rooms/{room_id}/signal",
                                                      _signal(carol)))
        assert (err.status, err.code) == (403, "peer_not_member")
        err = await refused(mallory.transport.post_json(f"/v1/rooms/{room_id}/signal",
                                                        _signal(alice)))
        assert (err.status, err.code) == (403, "not_member")
        # A member's user id with somebody else's device: refused, not delivered to that device.
        body = dict(_signal(bob), to_device_id=mallory.device_id)
        err = await refused(alice.transport.post_json(f"/v1/rooms/{room_id}/signal", body))
        assert err.code == "peer_not_member"
        await no_push(mallory_ws, "signal")
        await no_push(carol_ws, "signal", 0.1)
    finally:
        await mallory_ws.close()
        await carol_ws.close()


async def test_offline_callee_gets_signal_within_ttl_only(make_server, crowd):
    server = make_server(require_device_approval=False, login_backoff_base_ms=0,
                         signal_ttl_s=1)
    alice, bob = await crowd(server, "alice", "bob")
    room_id = await make_room(alice, bob)
    held = await alice.transport.post_json(f"/v1/rooms/{room_id}/signal",
                                           _signal(bob, call_id="call-held-0001"))
    assert held == {"delivered": False}
    ws = await connect_ws(server, bob)
    try:
        assert (await next_push(ws, "signal"))["call_id"] == "call-held-0001"
    finally:
        await ws.close()
    await alice.transport.post_json(f"/v1/rooms/{room_id}/signal",
                                    _signal(bob, call_id="call-late-0001"))
    await asyncio.sleep(1.2)
    ws = await connect_ws(server, bob)
    try:
        await no_push(ws, "signal")
    finally:
        await ws.close()


@pytest.mark.parametrize("change", [
    {"kind": "teleport"}, {"call_id": "x"}, {"payload": "sdp"}, {"to_device_id": ""},
    {"extra": True},
])
async def test_malformed_signal(open_server, people, change):
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    err = await refused(alice.transport.post_json(f"/v1/rooms/{room_id}/signal",
                                                  {**_signal(bob), **change}))
    assert err.status in (400, 422) and err.code == "malformed"


async def test_oversize_signal(open_server, people):
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    big = {"sdp": "a" * open_server.settings.max_event_bytes}
    err = await refused(alice.transport.post_json(f"/v1/rooms/{room_id}/signal",
                                                  _signal(bob, payload=big)))
    assert (err.status, err.code) == (413, "too_large")
