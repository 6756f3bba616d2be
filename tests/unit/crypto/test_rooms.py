"""Room messages through three in-process devices and a relay that only moves JSON."""

from __future__ import annotations

import pytest

from app.crypto.errors import ReplayedMessage, RoomKeyNotShared, WrongRoom
from app.crypto.megolm import DecryptedRoomEvent, MissingRoomKey, RotationPolicy
from tests.unit.crypto.world import Clock, Relay, body, make_peer, wire

ROOM, OTHER_ROOM = "!consult-1", "!consult-2"


@pytest.fixture
def world():
    relay = Relay()
    clock = Clock()
    # Rotation at the limit with nothing shared ahead: test_rotation_ahead.py has that.
    rotation = RotationPolicy(max_messages=3, max_age_ms=60_000, ahead_messages=0, ahead_ms=0)
    alice = relay.enroll(make_peer("alice", clock=clock, rotation=rotation))
    bob = relay.enroll(make_peer("bob", clock=clock))
    carol = relay.enroll(make_peer("carol", clock=clock))
    for peer in (alice, bob, carol):
        relay.sync_devices(peer, "alice", "bob", "carol")
    return relay, clock, alice, bob, carol


def test_round_trip_to_every_member_and_back_to_the_sender(world):
    relay, _, alice, bob, carol = world
    event = relay.say(alice, ROOM, ["alice", "bob", "carol"], "BP 120/80 in bed 4")
    for reader in (alice, bob, carol):
        result = reader.machine.decrypt_room_event(ROOM, "$e1", event)
        assert isinstance(result, DecryptedRoomEvent)
        assert body(result) == "BP 120/80 in bed 4"
        assert (result.sender_user, result.sender_device) == ("alice", alice.device_id)
        assert result.type == "sc.message" and not result.forwarded


def test_the_plaintext_never_appears_in_what_the_relay_carries(world):
    relay, _, alice, bob, _ = world
    event = relay.say(alice, ROOM, ["alice", "bob"], "patient Jane Roe, MRN 0042")
    carried = repr(event) + repr([m.content for _, m in relay.sent])
    assert "Jane" not in carried and "0042" not in carried
    result = bob.machine.decrypt_room_event(ROOM, "$e1", event)
    assert "Jane" not in repr(result)  # the decrypted content is PHI-wrapped


def test_replayed_index_under_another_event_id_is_rejected(world):
    relay, _, alice, bob, _ = world
    event = relay.say(alice, ROOM, ["alice", "bob"], "give 5 mg")
    assert body(bob.machine.decrypt_room_event(ROOM, "$e1", event)) == "give 5 mg"
    # the same event seen again (a re-sync) is fine ...
    assert body(bob.machine.decrypt_room_event(ROOM, "$e1", event)) == "give 5 mg"
    # ... the same ciphertext posted as a new event is not
    with pytest.raises(ReplayedMessage):
        bob.machine.decrypt_room_event(ROOM, "$e2", event)


def test_ciphertext_moved_to_another_room_is_rejected(world):
    relay, _, alice, bob, _ = world
    relay.say(alice, OTHER_ROOM, ["alice", "bob"], "other consult")
    event = relay.say(alice, ROOM, ["alice", "bob"], "for room one only")
    with pytest.raises(WrongRoom):
        bob.machine.decrypt_room_event(OTHER_ROOM, "$moved", event)


def test_moved_ciphertext_is_caught_by_the_plaintext_room_id_too(world):
    """Even when the reader holds the session under the target room (a key shared into the
    wrong room), the room id inside the encryption decides."""
    relay, _, alice, bob, _ = world
    event = relay.say(alice, ROOM, ["alice", "bob"], "for room one only")
    record = bob.store.inbound_group(ROOM, alice.identity.curve25519, event["session_id"])
    from dataclasses import replace
    bob.store.save_inbound_group(replace(record, room_id=OTHER_ROOM))
    with pytest.raises(WrongRoom):
        bob.machine.decrypt_room_event(OTHER_ROOM, "$moved", event)


def test_event_before_its_key_is_kept_as_missing_then_decrypts(world):
    relay, _, alice, bob, _ = world
    relay.share(alice, ROOM, ["alice", "bob"])  # key is queued for bob, not delivered yet
    event = wire(alice.machine.encrypt_room_event(ROOM, ["alice", "bob"], "sc.message",
                                                  {"body": "late key"}))
    missing = bob.machine.decrypt_room_event(ROOM, "$e1", event)
    assert isinstance(missing, MissingRoomKey)
    assert missing.session_id == event["session_id"]
    [received] = relay.deliver(bob)
    assert (received.room_id, received.session_id) == (ROOM, missing.session_id)
    assert body(bob.machine.decrypt_room_event(ROOM, "$e1", event)) == "late key"


def test_encrypt_without_a_shared_key_is_refused(world):
    _, _, alice, _, _ = world
    with pytest.raises(RoomKeyNotShared):
        alice.machine.encrypt_room_event(ROOM, ["alice"], "sc.message", {"body": "x"})


def test_removed_member_cannot_read_after_rotation(world):
    relay, _, alice, bob, carol = world
    first = relay.say(alice, ROOM, ["alice", "bob", "carol"], "before")
    assert body(carol.machine.decrypt_room_event(ROOM, "$e1", first)) == "before"
    relay.sent.clear()
    share = relay.share(alice, ROOM, ["alice", "bob"])  # carol left
    assert share.rotated
    assert {m.recipient_user for _, m in relay.sent} == {"bob"}
    for peer in relay.peers.values():
        relay.deliver(peer)
    second = wire(alice.machine.encrypt_room_event(ROOM, ["alice", "bob"], "sc.message",
                                                   {"body": "after"}))
    assert second["session_id"] != first["session_id"]
    assert isinstance(carol.machine.decrypt_room_event(ROOM, "$e2", second), MissingRoomKey)
    assert body(bob.machine.decrypt_room_event(ROOM, "$e2", second)) == "after"


def test_unchanged_membership_reuses_the_session_until_the_message_limit(world):
    relay, _, alice, bob, _ = world
    ids = []
    for n in range(4):  # limit is 3 messages per session
        event = relay.say(alice, ROOM, ["alice", "bob"], f"m{n}")
        ids.append(event["session_id"])
        assert body(bob.machine.decrypt_room_event(ROOM, f"$e{n}", event)) == f"m{n}"
    assert ids[0] == ids[1] == ids[2] != ids[3]


def test_session_rotates_after_its_maximum_age(world):
    relay, clock, alice, bob, _ = world
    first = relay.say(alice, ROOM, ["alice", "bob"], "t0")
    clock.now += 60_000
    with pytest.raises(RoomKeyNotShared):  # expired: must share (and so rotate) first
        alice.machine.encrypt_room_event(ROOM, ["alice", "bob"], "sc.message", {"body": "stale"})
    second = relay.say(alice, ROOM, ["alice", "bob"], "t1")
    assert second["session_id"] != first["session_id"]
    assert body(bob.machine.decrypt_room_event(ROOM, "$e2", second)) == "t1"


def test_new_device_joining_gets_only_messages_after_it_joined(world):
    relay, _, alice, _, _ = world
    before = relay.say(alice, ROOM, ["alice", "bob"], "before")
    bob2 = relay.enroll(make_peer("bob"))
    relay.sync_devices(bob2, "alice", "bob")
    relay.sync_devices(alice, "bob")
    alice.machine.accept_device("bob", bob2.device_id, bob2.identity.ed25519)
    after = relay.say(alice, ROOM, ["alice", "bob"], "after")
    assert isinstance(bob2.machine.decrypt_room_event(ROOM, "$e1", before), MissingRoomKey)
    assert body(bob2.machine.decrypt_room_event(ROOM, "$e2", after)) == "after"


def test_forwarded_key_lets_our_new_device_read_history(world):
    relay, _, alice, bob, _ = world
    old = relay.say(alice, ROOM, ["alice", "bob"], "history")
    bob.machine.decrypt_room_event(ROOM, "$e1", old)
    bob2 = relay.enroll(make_peer("bob"))
    relay.sync_devices(bob2, "alice", "bob")
    relay.sync_devices(bob, "bob")
    bob.machine.accept_device("bob", bob2.device_id, bob2.identity.ed25519)
    bob2.machine.accept_device("bob", bob.device_id, bob.identity.ed25519)
    relay.connect(bob, "bob")
    forward = bob.machine.forward_room_key(
        ROOM, alice.identity.curve25519, old["session_id"], "bob", bob2.device_id,
    )
    relay.send(bob, [forward])
    [received] = relay.deliver(bob2)
    assert received.forwarded and received.sender_user == "alice"
    result = bob2.machine.decrypt_room_event(ROOM, "$e1", old)
    assert body(result) == "history" and result.forwarded
    assert result.sender_device == alice.device_id


def test_forward_from_someone_elses_device_is_refused(world):
    relay, _, alice, bob, carol = world
    old = relay.say(alice, ROOM, ["alice", "bob", "carol"], "history")
    # carol hand-crafts a forward to bob; bob takes forwards from his own devices only
    relay.connect(carol, "bob")
    from app.crypto import megolm
    from app.crypto.errors import DeviceKeysInvalid
    from app.crypto.messages import ENCRYPTED, FORWARDED_ROOM_KEY, OutgoingToDevice
    record = carol.store.inbound_group(ROOM, alice.identity.curve25519, old["session_id"])
    content = {
        "algorithm": "sc.megolm.v1", "room_id": ROOM, "session_id": old["session_id"],
        "session_key": megolm.export_at_first_index(record, carol.pickle_key),
        "sender_key": alice.identity.curve25519, "sender_user": "alice",
        "sender_device": alice.device_id, "sender_ed25519": alice.identity.ed25519,
    }
    bob_record = carol.machine.devices("bob")[bob.device_id]
    envelope = carol.machine._olm.encrypt(bob_record, FORWARDED_ROOM_KEY, content)
    relay.send(carol, [OutgoingToDevice("bob", bob.device_id, ENCRYPTED, envelope)])
    with pytest.raises(DeviceKeysInvalid):
        relay.deliver(bob)


def test_decrypted_events_carry_the_current_trust_in_the_sender(world):
    from app.crypto.store import TrustLevel
    relay, _, alice, bob, _ = world
    event = relay.say(alice, ROOM, ["alice", "bob"], "trust me")
    assert bob.machine.decrypt_room_event(ROOM, "$e", event).sender_trust is TrustLevel.TOFU
    assert alice.machine.decrypt_room_event(ROOM, "$e", event).sender_trust is TrustLevel.VERIFIED
    bob.machine.block_device("alice", alice.device_id)
    assert bob.machine.decrypt_room_event(ROOM, "$e", event).sender_trust is TrustLevel.BLOCKED
    relay.directory["alice"] = []
    relay.sync_devices(bob, "alice")  # alice's device left bob's view
    assert bob.machine.decrypt_room_event(ROOM, "$e", event).sender_trust is None


def test_events_decrypt_in_any_order(world):
    relay, _, alice, bob, _ = world
    events = [relay.say(alice, ROOM, ["alice", "bob"], f"m{n}") for n in range(3)]
    for n in (2, 0, 1):
        assert body(bob.machine.decrypt_room_event(ROOM, f"$e{n}", events[n])) == f"m{n}"


def test_send_after_a_member_left_without_sharing_again_is_refused(world):
    relay, _, alice, _, carol = world
    relay.say(alice, ROOM, ["alice", "bob", "carol"], "all three")
    with pytest.raises(RoomKeyNotShared):  # carol left; the caller forgot share_room_key
        alice.machine.encrypt_room_event(ROOM, ["alice", "bob"], "sc.message", {"body": "x"})
    relay.sync_devices(alice, "carol")
    alice.machine.block_device("carol", carol.device_id)
    with pytest.raises(RoomKeyNotShared):  # a device blocked since the last share
        alice.machine.encrypt_room_event(ROOM, ["alice", "bob", "carol"], "sc.message", {})


def test_member_reposting_anothers_ciphertext_as_its_own_is_a_replay(world):
    """carol re-sends alice's room key to bob as if it were her own session, then re-posts
    alice's ciphertext under her sender key: bob has seen that (session, index) already."""
    from app.crypto import megolm
    from app.crypto.messages import ENCRYPTED, ROOM_KEY, OutgoingToDevice
    relay, _, alice, bob, carol = world
    relay.share(alice, ROOM, ["alice", "bob", "carol"])
    # the signed session key exactly as carol received it over Olm
    stolen = megolm.room_key_content(alice.store.outbound_group(ROOM), alice.pickle_key)
    event = relay.say(alice, ROOM, ["alice", "bob", "carol"], "alice said this")
    assert body(bob.machine.decrypt_room_event(ROOM, "$e1", event)) == "alice said this"
    relay.connect(carol, "bob")
    bob_record = carol.machine.devices("bob")[bob.device_id]
    envelope = carol.machine._olm.encrypt(bob_record, ROOM_KEY, stolen)
    relay.send(carol, [OutgoingToDevice("bob", bob.device_id, ENCRYPTED, envelope)])
    relay.deliver(bob)  # accepted: it only ever authenticates carol's own messages
    reposted = {**event, "sender_key": carol.identity.curve25519}
    with pytest.raises(ReplayedMessage):
        bob.machine.decrypt_room_event(ROOM, "$e2", reposted)
