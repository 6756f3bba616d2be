"""The machine keeps all it needs in its CryptoStore: a restart loses nothing and forgets
no replay; what the store holds is pickled under the pickle key."""

from __future__ import annotations

import os

import pytest

from app.core.errors import SafeConsultError
from app.crypto import megolm
from app.crypto.errors import ReplayedMessage, StoreError
from app.crypto.machine import CryptoMachine
from app.crypto.messages import ENCRYPTED
from app.crypto.store import MemoryCryptoStore
from tests.unit.crypto.world import Relay, body, make_peer, wire

ROOM = "!consult"


@pytest.fixture
def world():
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    return relay, alice, bob


def restart(peer):
    peer.machine = CryptoMachine.load(peer.device_id, peer.user_id, peer.username, peer.store,
                                      peer.pickle_key, clock_ms=peer.machine._clock_ms)
    return peer


def test_restart_keeps_sessions_devices_and_replay_memory(world):
    relay, alice, bob = world
    first = relay.say(alice, ROOM, ["alice", "bob"], "before restart")
    assert body(bob.machine.decrypt_room_event(ROOM, "$e1", first)) == "before restart"
    restart(bob)
    restart(alice)
    assert body(bob.machine.decrypt_room_event(ROOM, "$e1", first)) == "before restart"
    with pytest.raises(ReplayedMessage):
        bob.machine.decrypt_room_event(ROOM, "$e9", first)
    second = relay.say(alice, ROOM, ["alice", "bob"], "after restart")
    assert second["session_id"] == first["session_id"]  # the outbound session survived
    assert body(bob.machine.decrypt_room_event(ROOM, "$e2", second)) == "after restart"
    assert bob.machine.devices("alice")[alice.device_id].ed25519 == alice.identity.ed25519


def test_restart_remembers_spent_one_time_keys(world):
    relay, alice, bob = world
    relay.otks[bob.device_id] = relay.otks[bob.device_id][:1]  # no fallback use here
    relay.fallback.pop(bob.device_id)
    relay.connect(alice, "bob")
    record = alice.machine.devices("bob")[bob.device_id]
    message = wire(alice.machine._olm.encrypt(record, "sc.test", {"n": 1}))
    bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED, message)
    restart(bob)
    with pytest.raises(ReplayedMessage):
        bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED, message)
    # and with the session gone too, the spent one-time key still refuses it
    bob.store._olm.clear()
    with pytest.raises(SafeConsultError):
        bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED, message)


def test_wrong_pickle_key_is_a_store_error(world):
    relay, alice, bob = world
    event = relay.say(alice, ROOM, ["alice", "bob"], "x")
    bob.machine._key = os.urandom(32)
    with pytest.raises(StoreError):
        bob.machine.decrypt_room_event(ROOM, "$e", event)
    with pytest.raises(SafeConsultError):
        CryptoMachine.load(bob.device_id, "bob", "bob", bob.store, os.urandom(32))


def test_load_from_an_empty_store_is_a_store_error():
    with pytest.raises(StoreError):
        CryptoMachine.load("dev", "u", "u", MemoryCryptoStore(), os.urandom(32))


def test_store_holds_no_key_in_the_clear(world):
    relay, alice, bob = world
    relay.say(alice, ROOM, ["alice", "bob"], "x")
    outbound = alice.store.outbound_group(ROOM)
    session_key = megolm.room_key_content(outbound, alice.pickle_key)["session_key"]
    everything = repr(vars(alice.store)) + repr(vars(bob.store))
    assert session_key not in everything and session_key[20:60] not in everything


def test_own_messages_are_readable_from_the_store_after_restart(world):
    relay, alice, _ = world
    event = relay.say(alice, ROOM, ["alice", "bob"], "mine")
    restart(alice)
    assert body(alice.machine.decrypt_room_event(ROOM, "$e", event)) == "mine"


def test_memory_store_orders_olm_sessions_by_last_use():
    from app.crypto.store import OlmSessionRecord
    store = MemoryCryptoStore()
    store.save_olm_session(OlmSessionRecord("peer", "s1", "p1", 1, 10))
    store.save_olm_session(OlmSessionRecord("peer", "s2", "p2", 2, 5))
    store.save_olm_session(OlmSessionRecord("peer", "s1", "p1b", 1, 20))
    assert [r.pickle for r in store.olm_sessions("peer")] == ["p1b", "p2"]
    assert store.olm_sessions("other") == []


def test_memory_store_seen_keeps_the_first_event_id():
    store = MemoryCryptoStore()
    assert store.mark_seen("s", 3, "$first") == "$first"
    assert store.mark_seen("s", 3, "$second") == "$first"
    assert store.mark_seen("s", 3, "$first") == "$first"  # the same event again: no replay
    assert store.seen_event("s", 3) == "$first"
    assert store.seen_event("s", 4) is None
