"""A room key that never arrived can be asked for; only entitled devices get an answer."""

from __future__ import annotations

import pytest

from app.crypto.megolm import MissingRoomKey
from app.crypto.messages import ROOM_KEY_REQUEST
from app.crypto.room_keys import KeyRequestAnswer, RoomKeyReceived
from tests.unit.crypto.world import Relay, body, make_peer, wire

ROOM = "!consult"


@pytest.fixture
def world():
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    carol = relay.enroll(make_peer("carol"))
    for peer in (alice, bob, carol):
        relay.sync_devices(peer, "alice", "bob", "carol")
    return relay, alice, bob, carol


def lose_keys_for(peer):
    peer.inbox.clear()


def test_lost_room_key_is_recovered_from_its_creator(world):
    relay, alice, bob, _ = world
    relay.share(alice, ROOM, ["alice", "bob"])
    lose_keys_for(bob)  # the relay lost bob's copy
    event = wire(alice.machine.encrypt_room_event(ROOM, ["alice", "bob"], "sc.message",
                                                  {"body": "recovered"}))
    missing = bob.machine.decrypt_room_event(ROOM, "$e1", event)
    assert isinstance(missing, MissingRoomKey)
    requests = bob.machine.request_room_key(missing)
    assert [(m.recipient_user, m.type) for m in requests] == [("alice", ROOM_KEY_REQUEST)]
    relay.send(bob, requests)
    [answer] = relay.deliver(alice)
    assert isinstance(answer, KeyRequestAnswer) and answer.outcome == "forwarded"
    relay.send(alice, answer.outgoing)
    [received] = relay.deliver(bob)
    assert isinstance(received, RoomKeyReceived) and not received.forwarded
    result = bob.machine.decrypt_room_event(ROOM, "$e1", event)
    assert body(result) == "recovered" and not result.forwarded


def test_device_the_session_was_not_made_for_gets_no_answer(world):
    relay, alice, _, carol = world
    event = relay.say(alice, ROOM, ["alice", "bob"], "not for carol")
    missing = carol.machine.decrypt_room_event(ROOM, "$e1", event)
    relay.send(carol, carol.machine.request_room_key(missing))
    [answer] = relay.deliver(alice)
    assert answer.outcome == "not_entitled" and answer.outgoing == []


def test_removed_member_cannot_get_the_new_session_by_asking(world):
    relay, alice, bob, carol = world
    relay.say(alice, ROOM, ["alice", "bob", "carol"], "all")
    after = relay.say(alice, ROOM, ["alice", "bob"], "carol left")
    missing = carol.machine.decrypt_room_event(ROOM, "$e2", after)
    relay.send(carol, carol.machine.request_room_key(missing))
    [answer] = relay.deliver(alice)
    assert answer.outcome == "not_entitled"
    assert body(bob.machine.decrypt_room_event(ROOM, "$e2", after)) == "carol left"


def test_old_sessions_are_not_re_sent_to_other_users(world):
    """Only the current session is re-sent to others: after a rotation the old one is not."""
    relay, alice, bob, _ = world
    relay.share(alice, ROOM, ["alice", "bob"])
    lose_keys_for(bob)
    old = wire(alice.machine.encrypt_room_event(ROOM, ["alice", "bob"], "sc.message", {}))
    relay.say(alice, ROOM, ["alice", "bob", "carol"], "rotated")
    missing = bob.machine.decrypt_room_event(ROOM, "$old", old)
    relay.send(bob, bob.machine.request_room_key(missing))
    [answer] = relay.deliver(alice)
    assert answer.outcome == "not_entitled"


def test_our_own_trusted_device_gets_history_by_asking(world):
    relay, alice, bob, _ = world
    event = relay.say(alice, ROOM, ["alice", "bob"], "history")
    bob.machine.decrypt_room_event(ROOM, "$e1", event)
    bob2 = relay.enroll(make_peer("bob"))
    relay.sync_devices(bob2, "alice", "bob")
    relay.sync_devices(bob, "bob")
    bob.machine.accept_device("bob", bob2.device_id, bob2.identity.ed25519)
    bob2.machine.accept_device("bob", bob.device_id, bob.identity.ed25519)
    missing = bob2.machine.decrypt_room_event(ROOM, "$e1", event)
    requests = bob2.machine.request_room_key(missing)
    assert {m.recipient_device for m in requests} == {alice.device_id, bob.device_id}
    relay.send(bob2, requests)
    [answer] = relay.deliver(bob)
    assert answer.outcome == "no_session"  # bob has never talked to bob2 yet
    relay.connect(bob, "bob")
    relay.send(bob2, [m for m in requests if m.recipient_device == bob.device_id])
    [answer] = relay.deliver(bob)
    assert answer.outcome == "forwarded"
    relay.send(bob, answer.outgoing)
    relay.deliver(bob2)
    assert body(bob2.machine.decrypt_room_event(ROOM, "$e1", event)) == "history"


def test_our_own_flagged_device_gets_nothing(world):
    relay, alice, bob, _ = world
    event = relay.say(alice, ROOM, ["alice", "bob"], "history")
    planted = relay.enroll(make_peer("bob"))  # a device bob never accepted
    relay.sync_devices(planted, "bob")
    relay.sync_devices(bob, "bob")
    relay.connect(bob, "bob")
    missing = planted.machine.decrypt_room_event(ROOM, "$e1", event)
    relay.send(planted, [m for m in planted.machine.request_room_key(missing)
                         if m.recipient_device == bob.device_id])
    planted.machine.accept_device("bob", bob.device_id, bob.identity.ed25519)
    relay.send(planted, planted.machine.request_room_key(missing))
    answers = relay.deliver(bob)
    assert len(answers) == 2
    assert all(a.outcome == "not_entitled" and a.outgoing == [] for a in answers)


def test_request_for_a_key_we_do_not_hold(world):
    relay, alice, bob, _ = world
    missing = MissingRoomKey(ROOM, "$x", alice.identity.curve25519, "A" * 43)
    relay.send(bob, bob.machine.request_room_key(missing))
    [answer] = relay.deliver(alice)
    assert answer.outcome == "unknown_session"


def test_garbage_request_is_malformed(world):
    from app.crypto.errors import MalformedPayload
    _, alice, bob, _ = world
    with pytest.raises(MalformedPayload):
        alice.machine.receive_to_device("bob", bob.device_id, ROOM_KEY_REQUEST,
                                        {"room_id": ROOM, "sender_key": "nope"})
