"""The chat's persistence: the SQLCipher CryptoStore behaves like the reference in-memory
store, survives reopening, and a restarted chat service (new SessionService sign-in, machine
loaded from the cache) keeps its sessions and its replay memory."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.chat import EventState
from app.crypto.store import (
    DeviceRecord,
    InboundGroupRecord,
    MemoryCryptoStore,
    OlmSessionRecord,
    OutboundGroupRecord,
    Recipient,
    TrustLevel,
)
from app.security.keystore import MemoryKeyStore
from app.services.chat import ChatService
from app.storage.cache import Cache
from app.storage.crypto_store import SqlCryptoStore
from server_stub.crud.rooms import insert_event
from tests.integration.test_chat import new_client, room_with, sign_in
from tests.support.clients import server_db

ids = st.sampled_from(["a", "b", "c"])
keys = st.sampled_from(["K1", "K2", "K3"])
small = st.integers(min_value=0, max_value=5)
recipients = st.frozensets(st.builds(Recipient, ids, ids, keys), max_size=3)
device = st.builds(DeviceRecord, ids, st.just("name"), ids, keys, keys, small, st.just("sig"),
                   st.sampled_from(list(TrustLevel)))
operations = st.lists(st.one_of(
    st.tuples(st.just("account"), st.text(max_size=8)),
    st.tuples(st.just("olm"), st.builds(OlmSessionRecord, keys, ids, st.text(max_size=4),
                                        small, small)),
    st.tuples(st.just("drop_olm"), keys, ids),
    st.tuples(st.just("outbound"), st.builds(OutboundGroupRecord, ids, ids, st.text(max_size=4),
                                             small, small, recipients, recipients)),
    st.tuples(st.just("drop_outbound"), ids),
    st.tuples(st.just("inbound"), st.builds(InboundGroupRecord, ids, keys, ids,
                                            st.text(max_size=4), small, ids, ids, keys,
                                            st.booleans())),
    st.tuples(st.just("seen"), ids, small, ids),
    st.tuples(st.just("devices"), ids, st.lists(device, max_size=3)),
), max_size=25)


def _apply(store, op) -> str | None:
    kind, *args = op
    if kind == "account":
        store.save_account(*args)
    elif kind == "olm":
        store.save_olm_session(*args)
    elif kind == "drop_olm":
        store.drop_olm_session(*args)
    elif kind == "outbound":
        store.save_outbound_group(*args)
    elif kind == "drop_outbound":
        store.drop_outbound_group(*args)
    elif kind == "inbound":
        store.save_inbound_group(*args)
    elif kind == "seen":
        return store.mark_seen(*args)  # the event id that holds the index
    else:
        user_id, records = args
        store.save_user_devices(user_id, {r.device_id: r for r in records
                                          if r.user_id == user_id})


def _view(store) -> tuple:
    """Everything readable through the protocol (device_by_curve only where unambiguous)."""
    out = [store.load_account()]
    for k in ("K1", "K2", "K3"):
        sessions = store.olm_sessions(k)
        # Most recently used first; ties in any order.
        used = [r.last_used_ms for r in sessions]
        assert used == sorted(used, reverse=True)
        out.append(sorted((r.session_id, r.pickle, r.created_ms, r.last_used_ms)
                          for r in sessions))
    for i in ("a", "b", "c"):
        out.append(store.outbound_group(i))
        out.append(store.user_devices(i))
        for k in ("K1", "K2", "K3"):
            out.append(sorted(store.inbound_group_rooms(k, i)))
            for room in ("a", "b", "c"):
                out.append(store.inbound_group(room, k, i))
        out.extend(store.seen_event(i, n) for n in range(6))
    return tuple(out)


@pytest.fixture
def cache(tmp_path):
    with Cache.open(tmp_path / "cache", MemoryKeyStore("u", "d"), memory_security=False) as c:
        yield c


@settings(max_examples=60, deadline=None)
@given(ops=operations)
def test_sql_store_reads_back_what_the_memory_store_does(tmp_path_factory, ops):
    directory = tmp_path_factory.mktemp("store")
    keys_ = MemoryKeyStore("u", "d")
    memory = MemoryCryptoStore()
    with Cache.open(directory, keys_, memory_security=False) as cache:
        sql = SqlCryptoStore(cache)
        for op in ops:
            assert _apply(sql, op) == _apply(memory, op)
        assert _view(sql) == _view(memory)
    # And after reopening the cache file.
    with Cache.open(directory, keys_, memory_security=False) as cache:
        assert _view(SqlCryptoStore(cache)) == _view(memory)


def test_an_unseen_user_is_none_and_a_user_with_no_devices_is_empty(cache):
    store = SqlCryptoStore(cache)
    assert store.user_devices("x") is None
    store.save_user_devices("x", {})
    assert store.user_devices("x") == {}
    store.set_device_list_version("x", 4)
    assert store.device_list_version("x") == 4 and store.user_devices("x") == {}


def test_what_a_rolled_back_transaction_wrote_is_not_read_back(cache):
    """The store keeps device views and outbound sessions in memory as written; a write
    inside a transaction that then rolls back must not be read back from that memory."""
    store = SqlCryptoStore(cache)
    device = DeviceRecord("x", "name", "D1", "E", "C", 1, "sig", TrustLevel.TOFU)
    kept = OutboundGroupRecord("!r", "S1", "p1", 1, 0, frozenset(), frozenset())
    olm = OlmSessionRecord("C", "O1", "p", 1, 1)
    inbound = InboundGroupRecord("!r", "K", "S1", "p", 0, "x", "D1", "E", False)
    store.save_user_devices("x", {"D1": device})
    store.save_outbound_group(kept)
    store.save_olm_session(olm)
    store.save_inbound_group(inbound)
    assert store.user_devices("x") == {"D1": device} and store.outbound_group("!r") == kept
    assert store.olm_sessions("C") == [olm] and store.device_by_curve("C") == device
    assert store.inbound_group("!r", "K", "S1") == inbound
    assert store.inbound_group("!r", "K", "S2") is None
    with pytest.raises(RuntimeError), cache.write():
        store.save_user_devices("x", {})
        store.save_user_devices("y", {})
        store.save_outbound_group(OutboundGroupRecord("!r", "S2", "p2", 2, 0, frozenset(),
                                                      frozenset()))
        store.drop_outbound_group("!r")
        store.drop_olm_session("C", "O1")
        store.save_inbound_group(replace(inbound, session_id="S2"))
        store.save_inbound_group(replace(inbound, first_known_index=5))
        assert store.user_devices("x") == {} and store.outbound_group("!r") is None
        assert store.olm_sessions("C") == [] and store.device_by_curve("C") is None
        assert store.inbound_group("!r", "K", "S2") is not None
        raise RuntimeError("rolled back")
    assert store.user_devices("x") == {"D1": device}
    assert store.user_devices("y") is None
    assert store.outbound_group("!r") == kept
    assert store.olm_sessions("C") == [olm] and store.device_by_curve("C") == device
    assert store.inbound_group("!r", "K", "S1") == inbound
    assert store.inbound_group("!r", "K", "S2") is None


async def test_a_restarted_chat_keeps_sessions_and_replay_memory(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.rs")
    bob = await new_client(open_server, tmp_path, "dr.bob.rs")
    try:
        room_id = await room_with(alice, bob)
        first_id = await alice.chat.send_text(room_id, "before bob's restart")
        await bob.chat.sync_once()

        # Bob's workstation signs out and in again: a new machine, loaded from the cache.
        await bob.chat.stop()
        await bob.ws.session.sign_out()
        await sign_in(bob.ws, bob.creds)
        bob.chat = ChatService(bob.ws.session)
        await bob.chat.start(background=False)
        assert bob.texts(room_id) == ["before bob's restart"]

        # Same Megolm session, same Olm sessions: the next message needs no new key.
        await alice.chat.send_text(room_id, "after bob's restart")
        assert await bob.chat.sync_once() == 1
        assert bob.texts(room_id) == ["before bob's restart", "after bob's restart"]
        # Replay memory survived: the first ciphertext under a new id is refused.
        db = server_db(open_server)
        (content,) = db.connection().execute(
            "SELECT content FROM events WHERE event_id = ?", (first_id,)).fetchone()
        with db.transaction() as conn:
            insert_event(conn, room_id=room_id, event_id="replay_after_restart",
                         type_="sc.encrypted", content_json=content,
                         sender_user_id=alice.user_id,
                         sender_device_id=alice.ws.session.device.device_id,
                         now_ms=int(time.time() * 1000))
        assert await bob.chat.sync_once() == 0
        (kept,) = bob.chat.undecrypted(room_id)
        assert (kept.event_id, kept.state, kept.reason) == (
            "replay_after_restart", EventState.REJECTED, "ReplayedMessage")
        assert json.loads(content)["session_id"]  # it was a real Megolm event

        # The account came from the crypto store, not from the device binding: the
        # one-time keys bob published before the restart exist only there, and a new
        # contact's first (pre-key) message needs one of them.
        carol = await new_client(open_server, tmp_path, "dr.carol.rs")
        try:
            carols_room = await room_with(carol, bob)
            await carol.chat.send_text(carols_room, "first contact after the restart")
            assert await bob.chat.sync_once() == 1
            assert bob.texts(carols_room) == ["first contact after the restart"]
        finally:
            await carol.close()
    finally:
        await alice.close()
        await bob.close()
