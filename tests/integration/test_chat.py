"""Secure chat end to end: real clients (separate workstations: own device identity, own
SQLCipher cache, own keyring) through the real relay over TLS, real vodozemac.

Most tests drive the service step by step (``background=False`` + ``sync_once``) so each
assertion follows a known sequence; ``test_push_delivers_without_polling`` runs the real
background loops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import pytest

from app.core.chat import EventState
from app.core.errors import SafeConsultError
from app.crypto.devices import DeviceChange
from app.crypto.megolm import MissingRoomKey
from app.services.chat import ChatService
from app.services.session import SessionState
from tests.integration.conftest import Workstation
from tests.support.clients import UserCreds, create_user, next_totp_code, server_db


@dataclass
class Client:
    creds: UserCreds
    ws: Workstation
    chat: ChatService

    @property
    def user_id(self) -> str:
        return self.creds.user_id

    def texts(self, room_id: str) -> list[str]:
        return [m.body.reveal() for m in self.chat.messages(room_id)]

    async def close(self) -> None:
        await self.chat.stop()
        await self.ws.session.aclose()


async def sign_in(ws: Workstation, creds: UserCreds) -> None:
    code = await next_totp_code(ws.server, creds.username, creds.totp_secret)
    await ws.session.sign_in(creds.username, creds.password, code)
    assert ws.session.snapshot.state is SessionState.SIGNED_IN


async def new_client(server, tmp_path, name: str, *, creds: UserCreds | None = None,
                     background: bool = False, **options) -> Client:
    creds = creds or create_user(server, name)
    ws = Workstation(server, tmp_path / f"ws-{name}-{time.monotonic_ns()}")
    await sign_in(ws, creds)
    chat = ChatService(ws.session, **options)
    await chat.start(background=background)
    return Client(creds, ws, chat)


async def room_with(owner: Client, *others: Client) -> str:
    """A room ``owner`` made, ``others`` invited and joined; everyone synced."""
    room_id = await owner.chat.create_room()
    for other in others:
        await owner.chat.invite(room_id, other.creds.username)
        await other.chat.refresh_rooms()
        assert [r.state for r in other.chat.rooms() if r.room_id == room_id] == ["invited"]
        await other.chat.join(room_id)
    for client in (owner, *others):
        await client.chat.sync_once()
    return room_id


def raw_files_containing(root, needles: list[bytes]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found = [n.decode() for n in needles if n in data]
            if found:
                hits[str(path)] = found
    return hits


async def test_messages_round_trip_and_the_server_never_sees_them(open_server, tmp_path,
                                                                 caplog):
    caplog.set_level(logging.DEBUG)
    alice = await new_client(open_server, tmp_path, "dr.alice")
    bob = await new_client(open_server, tmp_path, "dr.bob")
    try:
        room_id = await room_with(alice, bob)
        assert set(alice.chat.members(room_id)) == {alice.user_id, bob.user_id}

        to_bob = "MARKER-ab-7f3c patient in bed 12 has a K+ of 6.1"
        to_alice = "MARKER-ba-91d2 repeat the ECG and call me"
        await alice.chat.send_text(room_id, to_bob)
        assert await bob.chat.sync_once() == 1
        assert bob.texts(room_id) == [to_bob]
        (summary,) = [r for r in bob.chat.rooms() if r.room_id == room_id]
        assert summary.unread == 1
        bob.chat.mark_read(room_id)
        assert [r.unread for r in bob.chat.rooms() if r.room_id == room_id] == [0]

        await bob.chat.send_text(room_id, to_alice)
        assert await alice.chat.sync_once() == 1
        assert alice.texts(room_id) == [to_bob, to_alice]
        assert bob.texts(room_id) == [to_bob, to_alice]
        # Senders are the authenticated Megolm senders; re-syncing shows nothing twice.
        assert [m.sender for m in alice.chat.messages(room_id)] == [alice.user_id, bob.user_id]
        assert await alice.chat.sync_once() == 0 and await bob.chat.sync_once() == 0
        assert bob.chat.outbox.count() == alice.chat.outbox.count() == 0

        # Full access to the server's database, WAL and blob files: no plaintext anywhere.
        needles = [b"MARKER-ab-7f3c", b"MARKER-ba-91d2", b"K+ of 6.1", b"repeat the ECG"]
        assert raw_files_containing(open_server.data_dir, needles) == {}
        # Nor on the workstations' disks (SQLCipher cache, outbox included).
        for client in (alice, bob):
            assert raw_files_containing(client.ws.paths.data, needles) == {}
        # Nor in any log record of the run (client and server), formatted or raw.
        assert caplog.records
        for record in caplog.records:
            text = f"{record.getMessage()} {record.__dict__}"
            assert not any(n.decode() in text for n in needles), record.name
    finally:
        await alice.close()
        await bob.close()


async def test_three_clients_and_a_removed_member_cannot_read_later_messages(
        open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice3")
    bob = await new_client(open_server, tmp_path, "dr.bob3")
    carol = await new_client(open_server, tmp_path, "dr.carol3")
    try:
        room_id = await room_with(alice, bob, carol)
        before_id = await alice.chat.send_text(room_id, "before removal")
        for client in (bob, carol):
            await client.chat.sync_once()
            assert client.texts(room_id) == ["before removal"]
        await carol.chat.send_text(room_id, "carol here")
        await alice.chat.sync_once()
        await bob.chat.sync_once()
        assert bob.texts(room_id) == ["before removal", "carol here"]

        await alice.chat.remove_member(room_id, carol.user_id)
        await bob.chat.sync_once()  # bob learns the removal from its membership event
        assert carol.user_id not in bob.chat.members(room_id)
        secret = "after removal: only alice and bob"
        event_id = await alice.chat.send_text(room_id, secret)
        await bob.chat.sync_once()
        assert bob.texts(room_id)[-1] == secret
        await carol.chat.sync_once()
        assert secret not in carol.texts(room_id)
        assert [r.state for r in carol.chat.rooms() if r.room_id == room_id] == ["left"]

        # Even handed the ciphertext (a relay that ignores the removal), carol has no key:
        # alice's session was rotated when the member set changed.
        conn = server_db(open_server).connection()
        before, after = (json.loads(conn.execute(
            "SELECT content FROM events WHERE event_id = ?", (eid,)).fetchone()[0])
            for eid in (before_id, event_id))
        assert before["session_id"] != after["session_id"]
        result = carol.chat.machine.decrypt_room_event(room_id, event_id, after)
        assert isinstance(result, MissingRoomKey)
        # Nor can she ask for it: alice's device refuses a key request from outside the room.
        request = carol.chat.machine.request_room_key(result)
        assert request  # addressed to alice's device
        answer = alice.chat.machine.receive_to_device(
            carol.user_id, carol.ws.session.device.device_id, request[0].type,
            request[0].content)
        assert answer.outcome == "not_entitled" and answer.outgoing == []
        # Carol's client knows she left: composing there is refused before anything queues.
        with pytest.raises(SafeConsultError, match="not a member"):
            await carol.chat.send_text(room_id, "still here?")
        assert carol.chat.outbox.count() == 0
    finally:
        for client in (alice, bob, carol):
            await client.close()


async def test_a_contacts_new_device_raises_a_warning_and_gets_no_key(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice4")
    bob = await new_client(open_server, tmp_path, "dr.bob4")
    bob2 = None
    try:
        room_id = await room_with(alice, bob)
        await alice.chat.send_text(room_id, "hello bob")
        warnings = []
        alice.chat.device_warning.connect(warnings.append)

        # Bob enrolls a second workstation: same user, new device identity.
        bob2 = await new_client(open_server, tmp_path, "dr.bob4", creds=bob.creds)
        await alice.chat.check_device_lists()
        assert [(w.user_id, w.change) for w in warnings] == [(bob.user_id, DeviceChange.NEW)]
        new_device = warnings[0].device_id
        assert new_device == bob2.ws.session.device.device_id

        # Until alice accepts it, the new device receives no room key: its message waits.
        await alice.chat.send_text(room_id, "still only the known device")
        await bob.chat.sync_once()
        await bob2.chat.sync_once()
        assert bob.texts(room_id)[-1] == "still only the known device"
        assert "still only the known device" not in bob2.texts(room_id)
        # Bob's new device sees the room's events since bob joined, and holds no key for
        # any of them: both are kept, waiting, not dropped.
        waiting = bob2.chat.undecrypted(room_id)
        assert [w.state for w in waiting] == [EventState.WAITING_FOR_KEY] * 2
        assert "key" in waiting[0].user_message

        alice.chat.accept_device(bob.user_id, new_device, warnings[0].ed25519)
        await alice.chat.send_text(room_id, "now both of bob's devices")
        await bob2.chat.sync_once()
        assert bob2.texts(room_id)[-1] == "now both of bob's devices"
    finally:
        for client in (alice, bob, *( [bob2] if bob2 else [])):
            await client.close()


async def test_a_late_key_decrypts_the_waiting_event(open_server, tmp_path):
    """The relay may deliver an event before its room key: the event is kept (waiting),
    a key request goes out, and the event is shown once the key arrives."""
    alice = await new_client(open_server, tmp_path, "dr.alice5")
    bob = await new_client(open_server, tmp_path, "dr.bob5")
    try:
        room_id = await room_with(alice, bob)
        seen = []
        bob.chat.undecryptable.connect(seen.append)
        await alice.chat.send_text(room_id, "needs the key")
        # Reorder at the relay: hold back bob's to-device queue (the room key).
        conn = server_db(open_server).connection()
        device = bob.ws.session.device.device_id
        held = conn.execute(
            "SELECT recipient_user_id, recipient_device_id, sender_user_id, sender_device_id,"
            " type, content, created_ms FROM to_device WHERE recipient_device_id = ?",
            (device,)).fetchall()
        assert held
        with server_db(open_server).transaction() as wconn:
            wconn.execute("DELETE FROM to_device WHERE recipient_device_id = ?", (device,))
        assert await bob.chat.sync_once() == 0
        assert [e.state for e in seen] == [EventState.WAITING_FOR_KEY]
        assert [e.state for e in bob.chat.undecrypted(room_id)] == [EventState.WAITING_FOR_KEY]
        # Bob asked alice's device for the key (a plain sc.room_key_request).
        requests = conn.execute(
            "SELECT count(*) FROM to_device WHERE type = 'sc.room_key_request'"
            " AND sender_device_id = ?", (device,)).fetchone()[0]
        assert requests >= 1

        with server_db(open_server).transaction() as wconn:
            wconn.executemany(
                "INSERT INTO to_device (recipient_user_id, recipient_device_id, sender_user_id,"
                " sender_device_id, type, content, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [tuple(r) for r in held])
        assert await bob.chat.sync_once() == 1
        assert bob.texts(room_id) == ["needs the key"]
        assert bob.chat.undecrypted(room_id) == []
    finally:
        await alice.close()
        await bob.close()


async def test_push_delivers_without_polling(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice6", background=True,
                             poll_interval_s=600)
    bob = await new_client(open_server, tmp_path, "dr.bob6", background=True,
                           poll_interval_s=600)
    try:
        room_id = await room_with(alice, bob)
        arrived = asyncio.Event()
        bob.chat.message.connect(lambda m: arrived.set() if m.sender == alice.user_id else None)
        await asyncio.sleep(0.3)  # let the push sockets connect
        await alice.chat.send_text(room_id, "pushed")
        await asyncio.wait_for(arrived.wait(), 5)
        assert bob.texts(room_id) == ["pushed"]

        # A device-list change is pushed too: bob's new workstation reaches alice as a
        # warning without her polling (the poll interval is 10 minutes here).
        warned = asyncio.Event()
        alice.chat.device_warning.connect(lambda w: warned.set())
        bob2 = await new_client(open_server, tmp_path, "dr.bob6", creds=bob.creds)
        try:
            await asyncio.wait_for(warned.wait(), 5)
        finally:
            await bob2.close()
    finally:
        await alice.close()
        await bob.close()


async def test_a_member_with_no_keys_left_gets_the_room_key_by_asking(open_server, tmp_path):
    """Bob's device had no one-time or fallback key when alice first wrote: the room key
    could not go to him. His key request reaches alice's device, which has no Olm session
    with him yet; the service claims one (bob has published keys since) and answers."""
    alice = await new_client(open_server, tmp_path, "dr.alice7")
    bob = await new_client(open_server, tmp_path, "dr.bob7")
    try:
        room_id = await room_with(alice, bob)
        bob_device = bob.ws.session.device.device_id
        with server_db(open_server).transaction() as conn:
            conn.execute("DELETE FROM one_time_keys WHERE device_id = ?", (bob_device,))
            conn.execute("DELETE FROM fallback_keys WHERE device_id = ?", (bob_device,))
        await alice.chat.send_text(room_id, "sent while bob had no keys")
        assert await bob.chat.sync_once() == 0
        assert [e.state for e in bob.chat.undecrypted(room_id)] == [EventState.WAITING_FOR_KEY]

        await bob.chat.ensure_keys()  # bob's count is 0: he publishes new keys
        await alice.chat.sync_once()  # the request: no session -> claim -> forwarded key
        assert await bob.chat.sync_once() == 1
        assert bob.texts(room_id) == ["sent while bob had no keys"]
        assert bob.chat.undecrypted(room_id) == []
    finally:
        await alice.close()
        await bob.close()


async def test_one_time_keys_are_published_and_topped_up(open_server, tmp_path):
    from app.net import relay_api

    alice = await new_client(open_server, tmp_path, "dr.alice8")
    bob = await new_client(open_server, tmp_path, "dr.bob8")
    try:
        counts = await relay_api.key_counts(bob.ws.session.transport)
        assert (counts.one_time_key_count, counts.has_fallback_key) == (50, True)
        bob_device = bob.ws.session.device.device_id
        for _ in range(30):  # others start sessions with bob: 30 keys handed out
            await relay_api.claim_keys(alice.ws.session.transport, [bob_device])
        await bob.chat.ensure_keys()  # below half: topped up to 50
        counts = await relay_api.key_counts(bob.ws.session.transport)
        assert counts.one_time_key_count == 50
        await relay_api.claim_keys(alice.ws.session.transport, [bob_device])
        await bob.chat.ensure_keys()  # 49 is above half: nothing uploaded
        counts = await relay_api.key_counts(bob.ws.session.transport)
        assert counts.one_time_key_count == 49
    finally:
        await alice.close()
        await bob.close()


async def test_three_clients_talking_at_once_see_every_message_once(open_server, tmp_path):
    """Background loops, push-driven, all three sending concurrently: each client ends with
    every message exactly once and each sender's messages in the order sent."""
    clients = [await new_client(open_server, tmp_path, f"dr.busy{i}", background=True,
                                poll_interval_s=600) for i in range(3)]
    try:
        room_id = await room_with(*clients)
        per_sender = 15
        total = per_sender * len(clients)

        async def talk(client: Client, n: int) -> None:
            for i in range(per_sender):
                await client.chat.send_text(room_id, f"from {n} #{i:02d}")
                await asyncio.sleep(0.005 * n)

        await asyncio.gather(*(talk(c, n) for n, c in enumerate(clients)))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(
                len(c.texts(room_id)) < total for c in clients):
            await asyncio.sleep(0.05)
        for client in clients:
            texts = [m.body.reveal() for m in client.chat.messages(room_id, limit=500)]
            assert len(texts) == total and len(set(texts)) == total
            for n in range(len(clients)):
                mine = [t for t in texts if t.startswith(f"from {n} ")]
                assert mine == [f"from {n} #{i:02d}" for i in range(per_sender)]
            assert client.chat.outbox.count() == 0
            assert client.chat.undecrypted(room_id) == []
    finally:
        for client in clients:
            await client.close()


async def test_signing_out_stops_the_chat_loops(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice9", background=True,
                             poll_interval_s=0.05)
    try:
        await asyncio.sleep(0.2)  # a few rounds
        tasks = list(alice.chat._tasks)
        assert tasks and not any(t.done() for t in tasks)
        await alice.ws.session.sign_out()  # closes the cache
        await asyncio.sleep(0.1)
        assert all(t.done() for t in tasks)
    finally:
        await alice.close()


async def test_locking_keeps_the_chat_syncing(open_server, tmp_path):
    """Locked hides PHI; it does not stop messages arriving (docs/device-protection.md)."""
    alice = await new_client(open_server, tmp_path, "dr.alice10", background=True,
                             poll_interval_s=0.05)
    bob = await new_client(open_server, tmp_path, "dr.bob10")
    try:
        room_id = await room_with(alice, bob)
        alice.ws.session.lock()
        assert alice.ws.session.snapshot.state is SessionState.LOCKED
        await bob.chat.send_text(room_id, "arrives while locked")
        for _ in range(100):
            if alice.texts(room_id):
                break
            await asyncio.sleep(0.05)
        assert alice.texts(room_id) == ["arrives while locked"]
        assert all(not t.done() for t in alice.chat._tasks)
    finally:
        await alice.close()
        await bob.close()
