"""SAS device verification between in-process devices, honest and through a MitM relay."""

from __future__ import annotations

import pytest

from app.crypto.errors import SasMismatch, VerificationError
from app.crypto.messages import VERIFICATION_CANCEL, VERIFICATION_KEY
from app.crypto.sas import Party, SasState, SasVerification
from app.crypto.sas_emoji import SAS_EMOJI
from app.crypto.store import TrustLevel
from app.crypto.verification import VerificationUpdate
from tests.unit.crypto.world import Relay, make_peer, wire


@pytest.fixture
def world():
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    return relay, alice, bob


def pump(relay, *peers):
    """Deliver to-device messages until quiet; returns the updates per peer."""
    seen = {p.device_id: [] for p in peers}
    while any(p.inbox for p in peers):
        for peer in peers:
            for update in relay.deliver(peer):
                seen[peer.device_id].append(update)
                relay.send(peer, update.outgoing)
    return seen


def test_emoji_table_has_64_distinct_named_entries():
    assert len(SAS_EMOJI) == 64
    assert len({e for e, _ in SAS_EMOJI}) == 64 and len({n for _, n in SAS_EMOJI}) == 64
    assert SAS_EMOJI[0] == ("\U0001f436", "Dog") and SAS_EMOJI[63] == ("\U0001f4cc", "Pin")


def test_both_devices_show_the_same_codes_and_end_verified(world):
    relay, alice, bob = world
    sas_a, start = alice.machine.start_verification("bob", bob.device_id)
    relay.send(alice, [start])
    updates = pump(relay, alice, bob)
    sas_b = updates[bob.device_id][0].verification
    assert sas_a.state is sas_b.state is SasState.SHOWING
    assert sas_a.emoji == sas_b.emoji and len(sas_a.emoji) == 7
    assert sas_a.decimals == sas_b.decimals
    assert all(1000 <= d <= 9191 for d in sas_a.decimals)

    done_a = alice.machine.confirm_verification(sas_a.transaction_id)
    relay.send(alice, done_a.outgoing)
    assert done_a.verified_device is None  # bob's MAC has not come yet
    [mac_at_bob] = relay.deliver(bob)
    assert mac_at_bob.verified_device is None  # bob's user has not confirmed yet
    done_b = bob.machine.confirm_verification(sas_b.transaction_id)
    relay.send(bob, done_b.outgoing)
    # bob already has alice's MAC: his confirm completes at once
    assert done_b.verified_device.device_id == alice.device_id
    [mac_at_alice] = pump(relay, alice, bob)[alice.device_id]
    assert mac_at_alice.verified_device.trust is TrustLevel.VERIFIED
    assert sas_a.verified and sas_b.verified
    assert alice.machine.devices("bob")[bob.device_id].trust is TrustLevel.VERIFIED
    assert bob.machine.devices("alice")[alice.device_id].trust is TrustLevel.VERIFIED
    # a late cancel after the end changes nothing and reports no second verification
    relay.send(alice, [alice.machine.cancel_verification(sas_a.transaction_id)])
    [late] = relay.deliver(bob)
    assert late.outgoing == [] and late.verified_device is None and sas_b.verified
    assert bob.machine.devices("alice")[alice.device_id].trust is TrustLevel.VERIFIED


def test_verification_messages_are_plain_json(world):
    relay, alice, bob = world
    _, start = alice.machine.start_verification("bob", bob.device_id)
    relay.send(alice, [start])
    pump(relay, alice, bob)
    for _, message in relay.sent:
        assert wire(message.content) == message.content
        assert set(message.content) >= {"transaction_id"}


def test_swapped_keys_give_different_codes_and_a_mac_failure(world):
    relay, alice, bob = world
    sas_a, start = alice.machine.start_verification("bob", bob.device_id)
    # Mallory answers alice as "bob" and forwards alice's start to bob, then runs the
    # rest of bob's transaction as "alice": each side's SAS key is Mallory's.
    alice_party = Party("alice", alice.device_id, alice.identity.ed25519)
    bob_party = Party("bob", bob.device_id, bob.identity.ed25519)
    m_as_bob, accept = SasVerification.accept(bob_party, alice_party, wire(start.content))
    [key_a] = sas_a.receive(accept.type, wire(accept.content))
    [m_key_for_a] = m_as_bob.receive(key_a.type, wire(key_a.content))
    sas_a.receive(m_key_for_a.type, wire(m_key_for_a.content))

    bob.inbox.append(("alice", alice.device_id, start.type, wire(start.content)))
    [update] = relay.deliver(bob)
    sas_b = update.verification
    [accept_b] = update.outgoing
    m_as_alice = SasVerification(alice_party, bob_party, sas_b.transaction_id, starter=True)
    m_as_alice._start_content = wire(start.content)
    [m_key_for_b] = m_as_alice.receive(accept_b.type, wire(accept_b.content))
    [key_b] = sas_b.receive(m_key_for_b.type, wire(m_key_for_b.content))
    m_as_alice.receive(key_b.type, wire(key_b.content))

    assert sas_a.state is sas_b.state is SasState.SHOWING
    assert sas_a.emoji != sas_b.emoji and sas_a.decimals != sas_b.decimals

    # The users compare nothing and confirm anyway; Mallory relays the MACs untouched.
    [mac_b] = bob.machine.confirm_verification(sas_b.transaction_id).outgoing
    alice.machine.confirm_verification(sas_a.transaction_id)
    alice.inbox.append(("bob", bob.device_id, mac_b.type, wire(mac_b.content)))
    [failed] = relay.deliver(alice)
    assert isinstance(failed, VerificationUpdate)
    assert sas_a.state is SasState.CANCELLED and sas_a.cancel_code == "key_mismatch"
    assert [m.type for m in failed.outgoing] == [VERIFICATION_CANCEL]
    assert alice.machine.devices("bob")[bob.device_id].trust is TrustLevel.TOFU


def test_accepter_key_not_matching_its_commitment_is_refused(world):
    relay, alice, bob = world
    sas_a, start = alice.machine.start_verification("bob", bob.device_id)
    relay.send(alice, [start])
    [update] = relay.deliver(bob)
    relay.send(bob, update.outgoing)
    [after_accept] = relay.deliver(alice)
    other = SasVerification(
        Party("bob", bob.device_id, bob.identity.ed25519),
        Party("alice", alice.device_id, alice.identity.ed25519),
        sas_a.transaction_id, starter=False,
    )
    with pytest.raises(SasMismatch):
        sas_a.receive(VERIFICATION_KEY, wire(other._key_message().content))
    assert after_accept.outgoing and sas_a.state is SasState.CANCELLED
    assert sas_a.cancel_code == "commitment_mismatch"


def test_mac_for_a_device_key_alice_does_not_know_is_refused(world):
    """bob verifies with alice, but alice's view of bob holds other keys (a swapped directory
    entry): the MAC is over bob's real key, so it does not match what alice knows."""
    relay, alice, bob = world
    from dataclasses import replace
    devices = alice.machine.devices("bob")
    wrong = make_peer("bob").identity.ed25519
    devices[bob.device_id] = replace(devices[bob.device_id], ed25519=wrong)
    alice.store.save_user_devices("bob", devices)
    sas_a, start = alice.machine.start_verification("bob", bob.device_id)
    relay.send(alice, [start])
    updates = pump(relay, alice, bob)
    sas_b = updates[bob.device_id][0].verification
    assert sas_a.emoji == sas_b.emoji  # the channel itself is fine ...
    relay.send(alice, alice.machine.confirm_verification(sas_a.transaction_id).outgoing)
    relay.send(bob, bob.machine.confirm_verification(sas_b.transaction_id).outgoing)
    pump(relay, alice, bob)
    assert sas_b.verified  # ... bob knows alice's real key
    assert sas_a.state is SasState.CANCELLED  # ... alice's record is not bob's key
    assert alice.machine.devices("bob")[bob.device_id].trust is TrustLevel.TOFU


def test_out_of_order_message_cancels(world):
    _relay, alice, bob = world
    sas_a, _ = alice.machine.start_verification("bob", bob.device_id)
    with pytest.raises(VerificationError):
        sas_a.receive(VERIFICATION_KEY, {"transaction_id": sas_a.transaction_id,
                                         "key": alice.identity.curve25519})
    assert sas_a.state is SasState.CANCELLED
    with pytest.raises(VerificationError):
        sas_a.confirm()


def test_remote_cancel_ends_the_transaction(world):
    relay, alice, bob = world
    sas_a, start = alice.machine.start_verification("bob", bob.device_id)
    relay.send(alice, [start])
    [update] = relay.deliver(bob)
    relay.send(bob, [bob.machine.cancel_verification(update.verification.transaction_id)])
    relay.deliver(alice)
    assert sas_a.state is SasState.CANCELLED and sas_a.cancel_code == "remote"


def test_replayed_start_is_refused(world):
    relay, alice, bob = world
    _, start = alice.machine.start_verification("bob", bob.device_id)
    relay.send(alice, [start, start])
    with pytest.raises(VerificationError):
        relay.deliver(bob)


def test_verification_from_an_unknown_device_is_refused(world):
    from app.crypto.errors import UnknownSenderDevice
    relay, alice, _ = world
    stranger = relay.enroll(make_peer("stranger"))
    relay.sync_devices(stranger, "alice")
    _, start = stranger.machine.start_verification("alice", alice.device_id)
    relay.send(stranger, [start])
    with pytest.raises(UnknownSenderDevice):
        relay.deliver(alice)


def test_verification_message_from_another_device_is_refused(world):
    relay, alice, bob = world
    carol = relay.enroll(make_peer("carol"))
    relay.sync_devices(alice, "carol")
    sas_a, _start = alice.machine.start_verification("bob", bob.device_id)
    accept = {"transaction_id": sas_a.transaction_id, "commitment": "A" * 43}
    with pytest.raises(VerificationError):
        alice.machine.receive_to_device("carol", carol.device_id, "sc.verification.accept",
                                        accept)
    assert sas_a.state is SasState.STARTED


def test_verification_opens_the_room_under_the_verified_only_policy():
    from app.crypto.devices import TrustPolicy
    from app.crypto.megolm import MissingRoomKey
    from tests.unit.crypto.world import body
    relay = Relay()
    alice = relay.enroll(make_peer("alice", policy=TrustPolicy.VERIFIED_ONLY))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    before = relay.say(alice, "!room", ["alice", "bob"], "not yet")
    assert isinstance(bob.machine.decrypt_room_event("!room", "$1", before), MissingRoomKey)

    sas_a, start = alice.machine.start_verification("bob", bob.device_id)
    relay.send(alice, [start])
    sas_b = pump(relay, alice, bob)[bob.device_id][0].verification
    relay.send(alice, alice.machine.confirm_verification(sas_a.transaction_id).outgoing)
    relay.send(bob, bob.machine.confirm_verification(sas_b.transaction_id).outgoing)
    pump(relay, alice, bob)

    after = relay.say(alice, "!room", ["alice", "bob"], "now verified")
    assert after["session_id"] != before["session_id"]
    assert body(bob.machine.decrypt_room_event("!room", "$2", after)) == "now verified"
