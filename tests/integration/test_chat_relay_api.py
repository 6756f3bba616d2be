"""app.net.relay_api against the real relay (requests as built, answers as validated), and
its parsing of answers a relay should not send."""

from __future__ import annotations

import pytest

from app.core.chat import UNREADABLE_EVENT
from app.core.errors import ServerError
from app.crypto.machine import CryptoMachine
from app.crypto.store import MemoryCryptoStore
from app.net import relay_api
from app.net.auth_api import ProtocolError
from tests.support.clients import new_user_device

KEY = bytes(32)


async def test_every_call_against_the_relay(open_server):
    alice_creds, alice = await new_user_device(open_server, "relay.alice")
    bob_creds, bob = await new_user_device(open_server, "relay.bob")
    try:
        a, b = alice.transport, bob.transport
        room_id = await relay_api.create_room(a)
        bob_id, version = await relay_api.user_by_name(a, "relay.bob")
        assert bob_id == bob_creds.user_id and version >= 1
        await relay_api.invite(a, room_id, username="relay.bob")
        (listed,) = await relay_api.list_rooms(b)
        assert (listed.room_id, listed.state, listed.role) == (room_id, "invited", "member")
        await relay_api.join(b, room_id)
        _, members = await relay_api.members(a, room_id)
        assert {(m.user_id, m.state) for m in members} == {
            (alice_creds.user_id, "joined"), (bob_creds.user_id, "joined")}

        first = await relay_api.post_event(a, room_id, "ev_00000001", "sc.encrypted", {"x": 1})
        again = await relay_api.post_event(a, room_id, "ev_00000001", "sc.encrypted", {"x": 1})
        assert (first.duplicate, again.duplicate, again.pos) == (False, True, first.pos)
        with pytest.raises(ServerError) as conflict:
            await relay_api.post_event(a, room_id, "ev_00000001", "sc.encrypted", {"x": 2})
        assert conflict.value.code == "event_id_conflict"

        assert await relay_api.send_to_device(a, "txn_00000001", "sc.test",
                                              [(bob_creds.user_id, bob.device_id, {"n": 1})]) == 1
        await relay_api.send_to_device(a, "txn_00000001", "sc.test",
                                       [(bob_creds.user_id, bob.device_id, {"n": 1})])
        batch = await relay_api.sync(b, None)
        assert [e.event_id for e in batch.events if e.type == "sc.encrypted"] == ["ev_00000001"]
        assert [(m.type, m.content) for m in batch.to_device] == [("sc.test", {"n": 1})]
        later = await relay_api.sync(b, batch.next_token)
        assert later.events == [] and later.to_device == []  # acknowledged, stored once

        machine = CryptoMachine(bob.identity, bob_creds.user_id, "relay.bob",
                                MemoryCryptoStore(), KEY)
        counts = await relay_api.upload_keys(b, machine.keys_for_upload(3))
        assert (counts.one_time_key_count, counts.has_fallback_key) == (3, True)
        assert await relay_api.key_counts(b) == counts
        claim = await relay_api.claim_keys(a, [bob.device_id])
        assert list(claim["keys"]) == [bob.device_id] and claim["missing"] == []
        directory = await relay_api.user_devices(a, bob_creds.user_id)
        assert [d["device_id"] for d in directory.devices] == [bob.device_id]
        versions = await relay_api.device_versions(a, [bob_creds.user_id, "A" * 22])
        assert versions == {bob_creds.user_id: directory.device_list_version}

        await relay_api.remove_member(a, room_id, bob_creds.user_id)
        assert await relay_api.list_rooms(b) == []
        await relay_api.leave(a, room_id)
        assert await relay_api.list_rooms(a) == []
    finally:
        await alice.aclose()
        await bob.aclose()


def _event(**over):
    event = {"pos": 1, "room_id": "r", "event_id": "e", "type": "sc.encrypted",
             "sender": "u", "sender_device": "d", "origin_ms": 5, "content": {}}
    event.update(over)
    return event


def test_unparseable_entries_do_not_stall_a_batch():
    batch = relay_api.parse_sync({
        "next": "9_3", "limited": False,
        "events": [_event(), _event(event_id="e2", content=[1, 2]), _event(event_id="e3",
                   pos="x"), {"pos": 4}, "junk"],
        "to_device": [{"pos": 1, "sender": "u", "sender_device": "d", "type": "t",
                       "content": {}}, {"pos": "bad"}],
    })
    assert batch.next_token == "9_3"
    assert [(e.event_id, e.type) for e in batch.events] == [
        ("e", "sc.encrypted"), ("e2", UNREADABLE_EVENT), ("e3", UNREADABLE_EVENT)]
    assert len(batch.to_device) == 1


@pytest.mark.parametrize("answer", [
    None, [], {"limited": False, "events": [], "to_device": []},
    {"next": 5, "limited": False, "events": [], "to_device": []},
    {"next": "1_1", "limited": "no", "events": [], "to_device": []},
    {"next": "1_1", "limited": False, "events": {}, "to_device": []},
])
def test_a_malformed_sync_answer_is_a_protocol_error(answer):
    with pytest.raises(ProtocolError):
        relay_api.parse_sync(answer)


def test_room_and_member_fields_are_checked():
    good = {"room_id": "r", "creator": "u", "created_ms": 1, "membership_version": 2,
            "role": "owner", "state": "joined", "expires_ms": None}
    assert relay_api.parse_room(good).membership_version == 2
    for name, value in [("created_ms", True), ("expires_ms", "soon"), ("room_id", 3)]:
        with pytest.raises(ProtocolError):
            relay_api.parse_room({**good, name: value})
