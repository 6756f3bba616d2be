"""Group sessions kept open between messages (megolm.LiveSessions): fewer unpickles, and
never a state the store does not hold."""

from __future__ import annotations

import os

import pytest
import vodozemac

from app.crypto.identity import DeviceIdentity
from app.crypto.machine import CryptoMachine
from app.crypto.megolm import LiveSessions
from app.security.keystore import MemoryKeyStore
from app.storage.cache import Cache
from app.storage.crypto_store import SqlCryptoStore
from tests.unit.crypto.world import Clock, Peer, Relay, body, make_peer, wire


@pytest.fixture
def unpickles(monkeypatch):
    """How often each kind of group session is opened from its pickle."""
    counts = {"outbound": 0, "inbound": 0}
    for kind, cls in (("outbound", vodozemac.GroupSession),
                      ("inbound", vodozemac.InboundGroupSession)):
        original = cls.from_pickle

        def counting(pickle, key, _original=original, _kind=kind):
            counts[_kind] += 1
            return _original(pickle, key)

        monkeypatch.setattr(cls, "from_pickle", staticmethod(counting))
    return counts


def test_a_run_of_messages_opens_each_session_from_its_pickle_at_most_once(unpickles):
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    contents = [relay.say(alice, "!r", ["alice", "bob"], f"note {i}") for i in range(20)]
    relay.deliver(bob)
    texts = [body(bob.machine.decrypt_room_event("!r", f"$e{i}", c))
             for i, c in enumerate(contents)]
    assert texts == [f"note {i}" for i in range(20)]
    # Alice made the session (no unpickle) and kept it open; bob opened his copy once.
    assert unpickles == {"outbound": 0, "inbound": 1}


def sql_peer(cache: Cache, user_id: str) -> Peer:
    identity = DeviceIdentity.generate()
    store = SqlCryptoStore(cache)
    key = os.urandom(32)
    machine = CryptoMachine(identity, user_id, user_id, store, key, clock_ms=Clock())
    return Peer(user_id, user_id, machine, identity, store, key)


def test_a_rolled_back_message_leaves_the_session_where_the_store_has_it(tmp_path):
    """A send whose transaction rolls back (the outbox row, the advanced session: nothing
    of it left the device) is undone in the open session too: the next message takes the
    index the store holds, exactly as if the session had been opened from its pickle."""
    with Cache.open(tmp_path / "a", MemoryKeyStore("a", "d"), memory_security=False) as cache:
        relay = Relay()
        alice = relay.enroll(sql_peer(cache, "alice"))
        bob = relay.enroll(make_peer("bob"))
        for peer in (alice, bob):
            relay.sync_devices(peer, "alice", "bob")
        first = relay.say(alice, "!r", ["alice", "bob"], "first")
        with pytest.raises(RuntimeError), cache.write():
            lost = wire(alice.machine.encrypt_room_event("!r", ["alice", "bob"], "sc.message",
                                                         {"body": "never sent"}))
            raise RuntimeError("the send failed before its commit")
        after = wire(alice.machine.encrypt_room_event("!r", ["alice", "bob"], "sc.message",
                                                      {"body": "after"}))
    relay.deliver(bob)
    got = [bob.machine.decrypt_room_event("!r", e, c)
           for e, c in (("$1", first), ("$2", after))]
    assert [body(r) for r in got] == ["first", "after"]
    assert got[1].message_index == got[0].message_index + 1
    # The lost ciphertext had the same index: the index the store still held.
    lost_index = vodozemac.MegolmMessage.from_base64(lost["ciphertext"]).message_index()
    assert lost_index == got[1].message_index


def test_the_memory_is_bounded_and_forgets_the_oldest():
    live = LiveSessions(limit=3)
    sessions = [vodozemac.InboundGroupSession(vodozemac.GroupSession().session_key)
                for _ in range(4)]
    for i, session in enumerate(sessions):
        live.keep_inbound(f"p{i}", session)
    assert live.inbound("p0") is None
    assert [live.inbound(f"p{i}") for i in (1, 2, 3)] == sessions[1:]
    outbound = vodozemac.GroupSession()
    live.keep_outbound("q", outbound)
    assert live.take_outbound("q") is outbound
    assert live.take_outbound("q") is None  # taken: whoever advances it puts it back
