"""Room events, sync and to-device over real TLS: dedup, catch-up exactly once, bounds."""

from __future__ import annotations

import json

import pytest

from tests.server import relay_support
from tests.server.relay_support import encrypted, make_room, post, refused, sync
from tests.support.clients import server_db

people = relay_support.people  # fixture
crowd = relay_support.crowd  # fixture


def _payload_ids(batch) -> list[str]:
    return [e["event_id"] for e in batch["events"] if e["type"] == "m.room.encrypted"]


async def test_retry_is_stored_once_and_reuse_with_other_content_refused(open_server, people):
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    first = await post(alice, room_id, "evt-retry-0001", encrypted(1))
    again = await post(alice, room_id, "evt-retry-0001", encrypted(1))
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert first["pos"] == again["pos"]
    err = await refused(post(alice, room_id, "evt-retry-0001", encrypted(2)))
    assert (err.status, err.code) == (409, "event_id_conflict")
    # Another sender cannot claim the id either.
    err = await refused(post(bob, room_id, "evt-retry-0001", encrypted(1)))
    assert err.code == "event_id_conflict"
    assert _payload_ids(await sync(bob)) == ["evt-retry-0001"]


async def test_offline_member_catches_up_exactly_once_in_pages(open_server, people):
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    token = (await sync(bob))["next"]
    sent = [f"evt-page-{i:04d}" for i in range(9)]
    for event_id in sent:
        await post(alice, room_id, event_id)
    got, rounds = [], 0
    while True:
        batch = await sync(bob, token, limit=4)
        got += _payload_ids(batch)
        token = batch["next"]
        rounds += 1
        if not batch["limited"]:
            break
    assert got == sent and rounds == 3
    positions = [e["pos"] for e in (await sync(bob))["events"]]
    assert positions == sorted(positions)
    assert (await sync(bob, token))["events"] == []
    # Content comes back exactly as posted: the server stores, never interprets.
    first = next(e for e in (await sync(bob))["events"] if e["event_id"] == sent[0])
    assert first["content"] == encrypted(sent[0])
    assert first["sender"] == alice.user_id and first["sender_device"] == alice.device_id


@pytest.mark.parametrize("body", [
    {"event_id": "short", "type": "m.room.encrypted", "content": {}},
    {"event_id": "evt/../../x1", "type": "m.room.encrypted", "content": {}},
    {"event_id": "evt-ok-00001", "type": "bad type!", "content": {}},
    {"event_id": "evt-ok-00001", "type": "m.room.encrypted", "content": "not an object"},
    {"event_id": "evt-ok-00001", "type": "m.room.encrypted"},
    {"event_id": "evt-ok-00001", "type": "m.room.encrypted", "content": {}, "extra": 1},
    {"event_id": 12345678, "type": "m.room.encrypted", "content": {}},
    {"event_id": "evt-ok-00001", "type": "sc.room.member", "content": {"user_id": "x"}},
])
async def test_malformed_event_refused(open_server, people, body):
    (alice,) = await people("alice")
    room_id = await make_room(alice)
    err = await refused(alice.transport.post_json(f"/v1/rooms/{room_id}/events", body))
    assert err.status in (400, 422) and err.code == "malformed", err


async def test_oversize_event_and_body_refused(open_server, people):
    (alice,) = await people("alice")
    room_id = await make_room(alice)
    limit = open_server.settings.max_event_bytes
    err = await refused(post(alice, room_id, "evt-big-00001", {"ciphertext": "A" * limit}))
    assert (err.status, err.code) == (413, "too_large")
    err = await refused(post(alice, room_id, "evt-huge-0001",
                             {"ciphertext": "A" * (open_server.settings.max_body_bytes + 1)}))
    assert (err.status, err.code) == (413, "too_large")
    err = await refused(alice.transport.request(
        "POST", f"/v1/rooms/{room_id}/events", content=b"{not json",
        headers={"Content-Type": "application/json"}))
    assert (err.status, err.code) == (400, "malformed")


@pytest.mark.parametrize("query", ["since=abc", "since=1_2_3", "since=-1_0", "limit=0",
                                   "limit=100000", "limit=x"])
async def test_malformed_sync_query(open_server, people, query):
    (alice,) = await people("alice")
    err = await refused(alice.transport.get_json(f"/v1/sync?{query}"))
    assert err.status in (400, 422) and err.code == "malformed"


async def test_to_device_delivered_once_then_deleted(open_server, people):
    alice, bob, carol = await people("alice", "bob", "carol")
    body = {"txn_id": "txn-000000001", "type": "m.room.encrypted", "messages": [
        {"user_id": bob.user_id, "device_id": bob.device_id, "content": {"ciphertext": "olm1"}},
        {"user_id": carol.user_id, "device_id": bob.device_id, "content": {"ciphertext": "x"}},
    ]}
    result = await alice.transport.post_json("/v1/to_device", body)
    # The device does not belong to carol: skipped, reported, not queued.
    assert result["queued"] == 1 and result["skipped"] == [
        {"user_id": carol.user_id, "device_id": bob.device_id}]
    retry = await alice.transport.post_json("/v1/to_device", body)
    assert retry["duplicate"] is True
    body2 = dict(body, messages=body["messages"][:1])
    err = await refused(alice.transport.post_json("/v1/to_device", body2))
    assert (err.status, err.code) == (409, "txn_conflict")
    first = await sync(bob)
    assert [m["content"] for m in first["to_device"]] == [{"ciphertext": "olm1"}]
    assert first["to_device"][0]["sender_device"] == alice.device_id
    # Not acknowledged yet: a sync from the old token gets it again.
    assert len((await sync(bob))["to_device"]) == 1
    assert (await sync(bob, first["next"]))["to_device"] == []
    rows = server_db(open_server).connection().execute(
        "SELECT COUNT(*) FROM to_device").fetchone()[0]
    assert rows == 0
    assert (await sync(carol))["to_device"] == []


@pytest.mark.parametrize("body", [
    {"txn_id": "txn-000000001", "type": "m.x", "messages": []},
    {"txn_id": "t", "type": "m.x", "messages": [{"user_id": "u", "device_id": "d",
                                                  "content": {}}]},
    {"txn_id": "txn-000000001", "type": "m.x", "messages": [{"user_id": "u", "content": {}}]},
    {"txn_id": "txn-000000001", "type": "m.x", "messages": "all"},
    {"txn_id": "txn-000000001", "type": "m.x",
     "messages": [{"user_id": "u", "device_id": "d", "content": {}}] * 1001},
])
async def test_malformed_to_device(open_server, people, body):
    (alice,) = await people("alice")
    err = await refused(alice.transport.post_json("/v1/to_device", body))
    assert err.status in (400, 422) and err.code == "malformed"


async def test_server_stores_ciphertext_only(open_server, people):
    """What the server holds is what clients sent, byte for byte as JSON: the envelope."""
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    envelope = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnDq0Zt"}
    await post(alice, room_id, "evt-store-0001", envelope)
    stored = server_db(open_server).connection().execute(
        "SELECT content FROM events WHERE event_id = 'evt-store-0001'").fetchone()[0]
    assert json.loads(stored) == envelope
