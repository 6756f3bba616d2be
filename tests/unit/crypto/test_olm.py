"""Olm to-device messages between in-process devices: binding, replay, redirection."""

from __future__ import annotations

import pytest

from app.crypto.errors import (
    DecryptionFailed,
    DeviceKeysInvalid,
    MalformedPayload,
    Misdirected,
    ReplayedMessage,
    UnknownSenderDevice,
)
from app.crypto.machine import DecryptedToDevice
from app.crypto.messages import ENCRYPTED
from tests.unit.crypto.world import Relay, make_peer, wire


@pytest.fixture
def world():
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    carol = relay.enroll(make_peer("carol"))
    for peer in (alice, bob, carol):
        relay.sync_devices(peer, "alice", "bob", "carol")
    return relay, alice, bob, carol


def connect(relay, sender, user_id):
    return relay.connect(sender, user_id)


def to_device(sender, recipient, type_="sc.call.key", content=None):
    record = sender.machine.devices(recipient.user_id)[recipient.device_id]
    envelope = sender.machine._olm.encrypt(record, type_, content or {"k": "v"})
    return (sender.user_id, sender.device_id, ENCRYPTED, wire(envelope))


def test_pre_key_then_normal_messages_both_ways(world):
    relay, alice, bob, _ = world
    assert connect(relay, alice, "bob") == []
    first = to_device(alice, bob, content={"n": 1})
    assert first[3]["type"] == 0  # pre-key message
    result = bob.machine.receive_to_device(*first)
    assert isinstance(result, DecryptedToDevice)
    assert result.content.reveal() == {"n": 1} and result.sender_device == alice.device_id
    reply = to_device(bob, alice, content={"n": 2})  # bob answers on the inbound session
    assert reply[3]["type"] == 1
    assert alice.machine.receive_to_device(*reply).content.reveal() == {"n": 2}
    third = to_device(alice, bob, content={"n": 3})
    assert third[3]["type"] == 1
    assert bob.machine.receive_to_device(*third).content.reveal() == {"n": 3}


def test_replayed_pre_key_message_is_rejected(world):
    relay, alice, bob, _ = world
    connect(relay, alice, "bob")
    message = to_device(alice, bob)
    bob.machine.receive_to_device(*message)
    with pytest.raises(ReplayedMessage):
        bob.machine.receive_to_device(*message)


def test_replayed_pre_key_message_on_a_fallback_key_is_rejected(world):
    """A fallback key is reusable, so vodozemac would happily open a second session from
    the same pre-key message: the machine must notice the session it already has."""
    relay, alice, bob, _ = world
    relay.otks[bob.device_id].clear()
    connect(relay, alice, "bob")
    message = to_device(alice, bob)
    bob.machine.receive_to_device(*message)
    with pytest.raises(ReplayedMessage):
        bob.machine.receive_to_device(*message)


def test_replayed_normal_message_is_rejected(world):
    relay, alice, bob, _ = world
    connect(relay, alice, "bob")
    bob.machine.receive_to_device(*to_device(alice, bob))
    alice.machine.receive_to_device(*to_device(bob, alice))
    message = to_device(alice, bob)
    assert message[3]["type"] == 1
    bob.machine.receive_to_device(*message)
    with pytest.raises(DecryptionFailed):
        bob.machine.receive_to_device(*message)


def test_message_for_bob_delivered_to_carol_is_refused_before_decryption(world):
    relay, alice, bob, carol = world
    connect(relay, alice, "bob")
    message = to_device(alice, bob)
    with pytest.raises(Misdirected):
        carol.machine.receive_to_device(*message)
    assert bob.machine.receive_to_device(*message)  # nothing was spent: bob still reads it


def test_relabelled_recipient_key_is_caught_inside_the_encryption(world):
    """A relay that rewrites the clear recipient key cannot make carol accept bob's
    message: her Olm layer fails, and even a decrypt would show the wrong recipient."""
    relay, alice, bob, carol = world
    connect(relay, alice, "bob")
    sender, device, type_, envelope = to_device(alice, bob)
    envelope["recipient_key"] = carol.identity.curve25519
    with pytest.raises(DecryptionFailed):
        carol.machine.receive_to_device(sender, device, type_, envelope)


def test_plaintext_naming_another_recipient_is_misdirected(world):
    """The plaintext's recipient fields are checked even when the Olm layer accepts."""
    relay, alice, bob, _ = world
    connect(relay, alice, "bob")
    # alice's view of bob wrongly carries carol's user id (a corrupted store, say)
    from dataclasses import replace
    record = alice.machine.devices("bob")[bob.device_id]
    envelope = alice.machine._olm.encrypt(replace(record, user_id="carol"), "t", {})
    with pytest.raises(Misdirected):
        bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED, wire(envelope))


def test_message_claiming_another_sender_is_refused(world):
    relay, alice, bob, carol = world
    connect(relay, alice, "bob")
    _, _, type_, envelope = to_device(alice, bob)
    with pytest.raises(UnknownSenderDevice):  # envelope says carol, keys say alice
        bob.machine.receive_to_device("carol", carol.device_id, type_, envelope)


def test_unknown_sender_is_refused_without_losing_the_message(world):
    relay, alice, _, _ = world
    dave = relay.enroll(make_peer("dave"))
    relay.sync_devices(dave, "alice")
    connect(relay, dave, "alice")
    message = to_device(dave, alice, content={"hello": "alice"})
    with pytest.raises(UnknownSenderDevice):
        alice.machine.receive_to_device(*message)
    relay.sync_devices(alice, "dave")  # the caller refreshes the list and retries
    assert alice.machine.receive_to_device(*message).content.reveal() == {"hello": "alice"}


def test_claimed_key_not_signed_by_the_device_is_refused(world):
    relay, alice, bob, _ = world
    missing = alice.machine.missing_sessions(["bob"])
    claim = relay.claim([d for _, d in missing])
    forged = make_peer("mallory")
    upload = forged.machine.keys_for_upload(1)["one_time_keys"][0]
    claim["keys"][bob.device_id].update(key=upload["key"], signature=upload["signature"])
    assert alice.machine.receive_key_claim(claim) == [bob.device_id]
    assert alice.machine.missing_sessions(["bob"]) == [("bob", bob.device_id)]


def test_claim_for_a_device_nobody_asked_about_is_ignored(world):
    relay, alice, _, _ = world
    mallory = relay.enroll(make_peer("mallory"))
    relay.sync_devices(alice, "mallory")
    claim = relay.claim([mallory.device_id])
    assert alice.machine.receive_key_claim(claim) == []
    assert alice.store.olm_sessions(mallory.identity.curve25519) == []


@pytest.mark.parametrize(
    "content",
    [
        "not an object",
        {},
        {"algorithm": "sc.olm.v1"},
        {"algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": "x"},
    ],
)
def test_garbage_envelopes_get_a_clear_error(world, content):
    _, alice, bob, _ = world
    with pytest.raises(MalformedPayload):
        bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED, content)


def test_garbage_fields_get_a_clear_error(world):
    relay, alice, bob, _ = world
    connect(relay, alice, "bob")
    base = to_device(alice, bob)[3]
    for field, value in [("type", 7), ("type", True), ("body", "@@@"), ("body", 5),
                         ("recipient_key", "short")]:
        with pytest.raises(MalformedPayload):
            bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED,
                                          {**base, field: value})


def test_unexpected_plain_to_device_type_is_refused(world):
    _, alice, bob, _ = world
    with pytest.raises(MalformedPayload):
        bob.machine.receive_to_device("alice", alice.device_id, "sc.room_key", {"a": 1})


def test_key_upload_is_signed_per_key(world):
    from app.crypto.identity import verify_ed25519
    from app.crypto.messages import one_time_key_message
    peer = make_peer("erin")
    upload = peer.machine.keys_for_upload(3)
    assert len(upload["one_time_keys"]) == 3 and upload["fallback_key"] is not None
    for key in [*upload["one_time_keys"], upload["fallback_key"]]:
        message = one_time_key_message(peer.device_id, key["key_id"], key["key"])
        assert verify_ed25519(peer.identity.ed25519, message, key["signature"])
    peer.machine.mark_keys_published()
    assert peer.machine.keys_for_upload(0)["one_time_keys"] == []


def test_room_key_from_a_blocked_device_is_refused(world):
    relay, alice, bob, _ = world
    connect(relay, alice, "bob")
    bob.machine.block_device("alice", alice.device_id)
    with pytest.raises(UnknownSenderDevice):
        bob.machine.receive_to_device(*to_device(alice, bob))


def test_directory_entry_signed_for_another_username_is_refused():
    from app.crypto.devices import parse_directory_device
    entry = make_peer("zed").directory_entry()
    assert parse_directory_device("zed", "zed", entry).device_id == entry["device_id"]
    with pytest.raises(DeviceKeysInvalid):
        parse_directory_device("zed", "someone-else", entry)


def test_out_of_order_olm_messages_both_decrypt(world):
    relay, alice, bob, _ = world
    connect(relay, alice, "bob")
    bob.machine.receive_to_device(*to_device(alice, bob))
    alice.machine.receive_to_device(*to_device(bob, alice))
    first, second = to_device(alice, bob, content={"n": 1}), to_device(alice, bob, content={"n": 2})
    assert bob.machine.receive_to_device(*second).content.reveal() == {"n": 2}
    assert bob.machine.receive_to_device(*first).content.reveal() == {"n": 1}


def test_claim_answer_for_a_device_blocked_meanwhile_opens_no_session(world):
    relay, alice, bob, _ = world
    missing = alice.machine.missing_sessions(["bob"])
    alice.machine.block_device("bob", bob.device_id)
    alice.machine.receive_key_claim(relay.claim([d for _, d in missing]))
    assert alice.store.olm_sessions(bob.identity.curve25519) == []


@pytest.mark.parametrize("response", [[], "{", {"keys": []}, {}, None])
def test_garbage_claim_answers_get_a_clear_error(world, response):
    _, alice, _, _ = world
    alice.machine.missing_sessions(["bob"])
    with pytest.raises(MalformedPayload):
        alice.machine.receive_key_claim(response)


def test_garbage_claimed_key_for_an_asked_device_is_refused(world):
    _, alice, bob, _ = world
    alice.machine.missing_sessions(["bob"])
    assert alice.machine.receive_key_claim({"keys": {"unasked": "y"}}) == []
    assert alice.machine.receive_key_claim({"keys": {bob.device_id: "y"}}) == [bob.device_id]
    assert alice.machine.receive_key_claim(
        {"keys": {bob.device_id: {"key_id": "A", "key": "short", "signature": "x"}}}
    ) == [bob.device_id]


def test_sessions_per_peer_are_bounded_and_the_newest_kept(world):
    from app.crypto.olm import MAX_SESSIONS_PER_PEER
    relay, alice, bob, _ = world
    clock = bob.machine._clock_ms
    record = alice.machine.devices("bob")[bob.device_id]
    for n in range(MAX_SESSIONS_PER_PEER + 3):
        alice.store._olm.clear()  # alice keeps starting over with a fresh session
        relay.connect(alice, "bob")
        clock.now += 1
        message = wire(alice.machine._olm.encrypt(record, "t", {"n": n}))
        bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED, message)
    sessions = bob.store.olm_sessions(alice.identity.curve25519)
    assert len(sessions) == MAX_SESSIONS_PER_PEER
    assert alice.store.olm_sessions(bob.identity.curve25519)[0].session_id == sessions[0].session_id
