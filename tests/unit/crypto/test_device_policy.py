"""The caller's device view decides who gets room keys, never the relay alone."""

from __future__ import annotations

import pytest

from app.crypto.devices import DeviceChange, TrustPolicy
from app.crypto.errors import DeviceKeysInvalid
from app.crypto.megolm import MissingRoomKey
from app.crypto.store import TrustLevel
from tests.unit.crypto.world import Relay, body, make_peer

ROOM = "!consult"


@pytest.fixture
def world():
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    return relay, alice, bob


def recipients(relay, sender):
    return {m.recipient_device for s, m in relay.sent if s == sender.device_id}


def test_devices_seen_at_first_contact_are_trusted_on_first_use(world):
    _, alice, bob = world
    record = alice.machine.devices("bob")[bob.device_id]
    assert record.trust is TrustLevel.TOFU
    assert record.ed25519 == bob.identity.ed25519


def test_new_device_of_a_contact_is_flagged_and_gets_no_keys_until_accepted(world):
    relay, alice, bob = world
    bob2 = relay.enroll(make_peer("bob"))
    warnings = relay.sync_devices(alice, "bob")
    assert [(w.device_id, w.change, w.ed25519) for w in warnings] == [
        (bob2.device_id, DeviceChange.NEW, bob2.identity.ed25519)
    ]
    share = relay.share(alice, ROOM, ["alice", "bob"])
    assert (("bob", bob2.device_id, TrustLevel.UNVERIFIED)) in share.withheld
    assert recipients(relay, alice) == {bob.device_id}

    alice.machine.accept_device("bob", bob2.device_id, bob2.identity.ed25519)
    share = relay.share(alice, ROOM, ["alice", "bob"])
    assert share.rotated  # the recipient set changed
    assert bob2.device_id in recipients(relay, alice)


def test_accepting_requires_the_fingerprint_the_user_saw(world):
    relay, alice, _ = world
    bob2 = relay.enroll(make_peer("bob"))
    relay.sync_devices(alice, "bob")
    with pytest.raises(DeviceKeysInvalid):
        alice.machine.accept_device("bob", bob2.device_id, alice.identity.ed25519)
    assert alice.machine.devices("bob")[bob2.device_id].trust is TrustLevel.UNVERIFIED


def test_device_added_by_a_malicious_relay_gets_nothing(world):
    """The relay enrolls a device of its own under bob's name (it can sign that entry with
    its own key): alice is warned and sends it no key; it cannot read the room."""
    relay, alice, bob = world
    planted = relay.enroll(make_peer("bob"))
    warnings = relay.sync_devices(alice, "bob")
    assert {(w.device_id, w.change) for w in warnings} == {(planted.device_id, DeviceChange.NEW)}
    relay.sync_devices(planted, "alice")
    event = relay.say(alice, ROOM, ["alice", "bob"], "for bob's own devices")
    assert planted.device_id not in recipients(relay, alice)
    assert isinstance(planted.machine.decrypt_room_event(ROOM, "$e", event), MissingRoomKey)
    assert body(bob.machine.decrypt_room_event(ROOM, "$e", event)) == "for bob's own devices"


def test_member_added_by_a_malicious_relay_gets_nothing(world):
    """The relay says mallory joined; the caller's member list does not include her."""
    relay, alice, bob = world
    mallory = relay.enroll(make_peer("mallory"))
    relay.sync_devices(alice, "mallory")  # her devices are known, even trusted on first use
    relay.sync_devices(mallory, "alice")
    event = relay.say(alice, ROOM, ["alice", "bob"], "members only")
    assert mallory.device_id not in recipients(relay, alice)
    assert isinstance(mallory.machine.decrypt_room_event(ROOM, "$e", event), MissingRoomKey)
    assert body(bob.machine.decrypt_room_event(ROOM, "$e", event)) == "members only"


def test_changed_keys_on_a_known_device_id_are_flagged_and_withheld(world):
    relay, alice, bob = world
    impostor = make_peer("bob")
    impostor.identity.device_id = bob.device_id  # same id, the relay's own keys
    relay.directory["bob"] = [impostor.directory_entry()]
    warnings = relay.sync_devices(alice, "bob")
    assert [(w.device_id, w.change) for w in warnings] == [(bob.device_id, DeviceChange.CHANGED)]
    share = relay.share(alice, ROOM, ["alice", "bob"])
    assert recipients(relay, alice) == set()
    assert share.withheld == [("bob", bob.device_id, TrustLevel.UNVERIFIED)]


def test_entry_with_a_bad_self_signature_is_ignored_and_keeps_old_keys(world):
    relay, alice, bob = world
    entry = relay.directory["bob"][0]
    entry["curve25519"] = alice.identity.curve25519  # the relay swaps in another key
    warnings = relay.sync_devices(alice, "bob")
    assert [(w.device_id, w.change) for w in warnings] == [(bob.device_id, DeviceChange.INVALID)]
    assert alice.machine.devices("bob")[bob.device_id].curve25519 == bob.identity.curve25519


def test_unsigned_device_at_first_contact_is_not_trusted():
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    relay.directory["bob"][0]["enroll_signature"] = relay.directory["bob"][0][
        "enroll_signature"
    ][::-1]
    warnings = relay.sync_devices(alice, "bob")
    assert [w.change for w in warnings] == [DeviceChange.INVALID]
    assert bob.device_id not in alice.machine.devices("bob")


def test_removed_device_is_reported_and_dropped_at_the_next_rotation(world):
    relay, alice, bob = world
    bob2 = relay.enroll(make_peer("bob"))
    relay.sync_devices(alice, "bob")
    alice.machine.accept_device("bob", bob2.device_id, bob2.identity.ed25519)
    relay.sync_devices(bob2, "alice")
    first = relay.say(alice, ROOM, ["alice", "bob"], "two devices")
    relay.directory["bob"] = [e for e in relay.directory["bob"] if e["device_id"] == bob.device_id]
    warnings = relay.sync_devices(alice, "bob")
    assert [(w.device_id, w.change) for w in warnings] == [(bob2.device_id, DeviceChange.REMOVED)]
    second = relay.say(alice, ROOM, ["alice", "bob"], "one device")
    assert second["session_id"] != first["session_id"]
    assert isinstance(bob2.machine.decrypt_room_event(ROOM, "$e2", second), MissingRoomKey)


def test_blocked_device_gets_nothing_even_under_tofu(world):
    relay, alice, bob = world
    alice.machine.block_device("bob", bob.device_id)
    share = relay.share(alice, ROOM, ["alice", "bob"])
    assert share.withheld == [("bob", bob.device_id, TrustLevel.BLOCKED)]
    assert recipients(relay, alice) == set()


def test_verified_only_policy_sends_to_verified_devices_only():
    relay = Relay()
    alice = relay.enroll(make_peer("alice", policy=TrustPolicy.VERIFIED_ONLY))
    bob = relay.enroll(make_peer("bob"))
    relay.sync_devices(alice, "bob")
    share = relay.share(alice, ROOM, ["alice", "bob"])
    assert share.withheld == [("bob", bob.device_id, TrustLevel.TOFU)]
    assert alice.machine.missing_sessions(["bob"]) == []
    alice.machine.accept_device("bob", bob.device_id, bob.identity.ed25519)
    assert relay.share(alice, ROOM, ["alice", "bob"]).messages == []  # accepted is not enough


def test_member_whose_devices_were_never_fetched_is_reported(world):
    _, alice, bob = world
    share = alice.machine.share_room_key(ROOM, ["alice", "bob", "zoe"])
    assert share.unknown_users == ["zoe"]
    assert share.missing_sessions == [("bob", bob.device_id)]  # no Olm session yet
    assert share.messages == []


def test_our_own_new_device_is_flagged_too(world):
    relay, alice, _ = world
    alice2 = relay.enroll(make_peer("alice"))
    warnings = relay.sync_devices(alice, "alice")
    assert [(w.user_id, w.device_id, w.change) for w in warnings] == [
        ("alice", alice2.device_id, DeviceChange.NEW)
    ]
    assert alice.device_id not in alice.machine.devices("alice")  # never judges itself
