"""Secure chat when things go wrong: the relay is down while messages are composed, answers
are lost, and the relay's database is tampered with (replayed, altered, moved and garbage
events written straight into it)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace

from app.core.chat import EventState
from app.net import relay_api
from app.net.transport import Transport
from server_stub.crud.rooms import insert_event
from server_stub.serve import bind_socket, build_server
from tests.integration.test_chat import new_client, room_with
from tests.support.clients import server_db
from tests.support.server import RunningServer


def restart(server: RunningServer) -> RunningServer:
    """The same server (data directory, CA, database) started again on the same port, as
    after a maintenance restart: clients keep their URL."""
    sock = bind_socket(server.settings.host, server.port)
    uv = build_server(replace(server.settings), sock)
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve(sockets=[sock])),
                              name="reference-server-restarted", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv.started:
        assert time.monotonic() < deadline, "server did not restart"
        time.sleep(0.01)
    return RunningServer(server.url, server.port, server.data_dir, server.settings,
                         uv.config.app, uv, thread)


def event_rows(server: RunningServer, event_ids: list[str]) -> list[str]:
    conn = server_db(server).connection()
    marks = ",".join("?" * len(event_ids))
    return [r[0] for r in conn.execute(
        f"SELECT event_id FROM events WHERE event_id IN ({marks}) ORDER BY pos",
        event_ids).fetchall()]


async def test_messages_composed_while_the_server_is_down_arrive_exactly_once(
        open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.off", background=True,
                             poll_interval_s=600)
    bob = await new_client(open_server, tmp_path, "dr.bob.off")
    carol = await new_client(open_server, tmp_path, "dr.carol.off")
    states = []
    alice.chat.online_changed.connect(states.append)
    restarted = None
    try:
        room_id = await room_with(alice, bob)
        await alice.chat.send_text(room_id, "while online")
        # A room with someone alice never wrote to: its first message needs a one-time
        # key claim, impossible offline -- it waits as text (in the cache) and is
        # encrypted when the relay is back.
        fresh_room = await room_with(alice, carol)

        open_server.stop()
        texts = ["offline 1", "offline 2", "offline 3"]
        ids = [await alice.chat.send_text(room_id, t) for t in texts]
        fresh_id = await alice.chat.send_text(fresh_room, "offline, new room")
        assert alice.chat.outbox.count() == 4
        queued = {i.event_id: i for i in alice.chat.outbox.pending()}
        assert queued[fresh_id].content is None and queued[fresh_id].body is not None
        # Room key and Olm sessions were in place: encrypted offline, at composing; the
        # outbox keeps that exact ciphertext (not the text) for every retry.
        assert all(queued[i].content is not None and queued[i].body is None for i in ids)
        assert alice.chat.online is False and False in states
        # Shown locally at once, marked as not yet sent.
        mine = alice.chat.messages(room_id)
        assert [m.body.reveal() for m in mine] == ["while online", *texts]
        assert [m.pending for m in mine] == [False, True, True, True]
        # Nothing of it in the clear on disk while queued.
        for path in alice.ws.paths.data.rglob("*"):
            if path.is_file():
                assert b"offline 1" not in path.read_bytes()

        restarted = restart(open_server)
        alice.chat.wake()  # what the push reconnect or the retry timer does
        for _ in range(200):
            if alice.chat.outbox.count() == 0:
                break
            await asyncio.sleep(0.05)
        assert alice.chat.outbox.count() == 0
        assert alice.chat.online is True

        await bob.chat.sync_once()
        await carol.chat.sync_once()
        assert bob.texts(room_id) == ["while online", *texts]
        assert carol.texts(fresh_room) == ["offline, new room"]
        # Exactly once on the relay too, in the order composed.
        assert event_rows(restarted, [*ids, fresh_id]) == [*ids, fresh_id]
    finally:
        for client in (alice, bob, carol):
            await client.close()
        if restarted is not None:
            restarted.stop()


async def test_a_lost_answer_is_retried_without_a_duplicate(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.lost")
    bob = await new_client(open_server, tmp_path, "dr.bob.lost")
    try:
        room_id = await room_with(alice, bob)
        await alice.chat.send_text(room_id, "first")
        # A send whose answer is lost: the relay stored it, the client never heard. Point
        # the transport at a dead port after the encryption, post "by hand", restore.
        real = alice.ws.session.transport
        dead = Transport("https://127.0.0.1:9", open_server.ca_pem, signer=real.signer)
        alice.ws.session.transport = dead
        event_id = await alice.chat.send_text(room_id, "answer lost")
        alice.ws.session.transport = real
        await dead.aclose()
        # The room key and Olm sessions were in place, so it was encrypted offline and the
        # outbox holds the exact ciphertext; the relay now gets it "before the answer
        # was lost" ...
        (item,) = alice.chat.outbox.pending()
        assert item.body is None and item.content is not None
        first = await relay_api.post_event(real, room_id, event_id, "sc.encrypted",
                                           item.content)
        assert first.duplicate is False
        # ... and the client's retry is accepted as the same event.
        assert await alice.chat.flush() == 1
        assert alice.chat.outbox.count() == 0
        await bob.chat.sync_once()
        assert bob.texts(room_id) == ["first", "answer lost"]
        assert event_rows(open_server, [event_id]) == [event_id]
    finally:
        await alice.close()
        await bob.close()


def _flip(b64: str) -> str:
    middle = len(b64) // 2
    return b64[:middle] + ("A" if b64[middle] != "A" else "B") + b64[middle + 1:]


async def test_replayed_and_tampered_events_are_rejected_and_the_loop_goes_on(
        open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.t")
    bob = await new_client(open_server, tmp_path, "dr.bob.t")
    try:
        room_id = await room_with(alice, bob)
        other_room = await room_with(alice, bob)
        original_id = await alice.chat.send_text(room_id, "genuine")
        assert await bob.chat.sync_once() == 1

        db = server_db(open_server)
        (content_json,) = db.connection().execute(
            "SELECT content FROM events WHERE event_id = ?", (original_id,)).fetchone()
        content = json.loads(content_json)
        alice_device = alice.ws.session.device.device_id
        injected = {
            "replayed": (room_id, content),
            "tampered": (room_id, {**content, "ciphertext": _flip(content["ciphertext"])}),
            "moved": (other_room, content),
            "garbage": (room_id, {"algorithm": "sc.megolm.v1", "ciphertext": 5}),
            "not_b64": (room_id, {**content, "ciphertext": "!!not base64!!"}),
        }
        now = int(time.time() * 1000)
        with db.transaction() as conn:
            for name, (target, body) in injected.items():
                insert_event(conn, room_id=target, event_id=f"forged_{name}", type_="sc.encrypted",
                             content_json=json.dumps(body), sender_user_id=alice.user_id,
                             sender_device_id=alice_device, now_ms=now)
            # Entries that are not even objects: kept as unreadable, the stream moves on.
            for name, text in (("array", "[1, 2, 3]"), ("string", '"ciphertext?"')):
                insert_event(conn, room_id=room_id, event_id=f"forged_{name}",
                             type_="sc.encrypted", content_json=text,
                             sender_user_id=alice.user_id, sender_device_id=alice_device,
                             now_ms=now)
            # A membership event with nonsense content, and to-device garbage for bob.
            insert_event(conn, room_id=room_id, event_id="forged_member", type_="sc.room.member",
                         content_json=json.dumps({"user_id": 7, "membership": ["x"]}),
                         sender_user_id=alice.user_id, sender_device_id=None, now_ms=now)
            conn.execute(
                "INSERT INTO to_device (recipient_user_id, recipient_device_id, sender_user_id,"
                " sender_device_id, type, content, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (bob.user_id, bob.ws.session.device.device_id, alice.user_id, alice_device,
                 "sc.encrypted", json.dumps({"algorithm": "sc.olm.v1", "body": "AAAA"}), now))

        rejected = []
        bob.chat.undecryptable.connect(rejected.append)
        assert await bob.chat.sync_once() == 0  # nothing shown, nothing raised
        reasons = {e.event_id: (e.state, e.reason) for e in bob.chat.undecrypted()}
        assert reasons == {
            "forged_replayed": (EventState.REJECTED, "ReplayedMessage"),
            "forged_tampered": (EventState.REJECTED, reasons["forged_tampered"][1]),
            "forged_moved": (EventState.REJECTED, "WrongRoom"),
            "forged_garbage": (EventState.REJECTED, "MalformedPayload"),
            "forged_not_b64": (EventState.REJECTED, "MalformedPayload"),
            "forged_array": (EventState.REJECTED, "MalformedPayload"),
            "forged_string": (EventState.REJECTED, "MalformedPayload"),
        }
        assert reasons["forged_tampered"][1] in ("DecryptionFailed", "MalformedPayload")
        assert {e.event_id for e in rejected} == set(reasons)
        assert all(e.user_message and "genuine" not in e.user_message for e in rejected)
        assert bob.texts(room_id) == ["genuine"] and bob.texts(other_room) == []

        # The stream goes on: the next real message arrives, and a re-sync keeps the
        # rejections as they were (kept, not dropped, not announced twice).
        await alice.chat.send_text(room_id, "after the forgeries")
        assert await bob.chat.sync_once() == 1
        assert bob.texts(room_id) == ["genuine", "after the forgeries"]
        assert len(bob.chat.undecrypted()) == 7
        assert len(rejected) == 7
    finally:
        await alice.close()
        await bob.close()


async def test_a_message_the_relay_can_never_accept_is_reported_not_retried(
        open_server, tmp_path):
    bob = await new_client(open_server, tmp_path, "dr.bob.refused")
    alice = await new_client(open_server, tmp_path, "dr.alice.refused")
    try:
        room_id = await room_with(bob, alice)
        failures, sent = [], []
        alice.chat.send_failed.connect(failures.append)
        alice.chat.sent.connect(sent.append)
        real = alice.ws.session.transport
        dead = Transport("https://127.0.0.1:9", open_server.ca_pem, signer=real.signer)
        alice.ws.session.transport = dead
        event_id = await alice.chat.send_text(room_id, "composed offline")
        assert alice.chat.outbox.count() == 1
        # Meanwhile the owner removed alice; her client has not heard yet.
        await bob.chat.remove_member(room_id, alice.user_id)
        alice.ws.session.transport = real
        await dead.aclose()

        assert await alice.chat.flush() == 0
        assert [(f.event_id, f.code) for f in failures] == [(event_id, "not_member")]
        assert failures[0].user_message and sent == []
        assert alice.chat.outbox.count() == 0  # not retried forever
        # Other queued work is not blocked by it.
        other = await room_with(alice, bob)
        await alice.chat.send_text(other, "still works elsewhere")
        await bob.chat.sync_once()
        assert bob.texts(other) == ["still works elsewhere"]
    finally:
        await alice.close()
        await bob.close()


async def test_a_chat_started_offline_catches_up_when_the_relay_is_back(open_server, tmp_path):
    from app.services.chat import ChatService
    from tests.integration.conftest import Workstation
    from tests.integration.test_chat import Client, sign_in
    from tests.support.clients import create_user

    alice = await new_client(open_server, tmp_path, "dr.alice.late")
    creds = create_user(open_server, "dr.bob.late")
    ws = Workstation(open_server, tmp_path / "bob-late")
    await sign_in(ws, creds)
    real = ws.session.transport
    dead = Transport("https://127.0.0.1:9", open_server.ca_pem, signer=real.signer)
    ws.session.transport = dead
    chat = ChatService(ws.session, poll_interval_s=600)
    await chat.start()  # no exception: the service starts offline
    bob = Client(creds, ws, chat)
    try:
        assert chat.online is False
        room_id = await alice.chat.create_room()
        await alice.chat.invite(room_id, "dr.bob.late")
        ws.session.transport = real
        await dead.aclose()
        chat.wake()  # what the retry timer does a moment later
        # The invitation was pushed while bob was away: the first round that gets through
        # learns it (a failed room refresh stays due). A second is plenty for one round.
        for _ in range(20):
            if chat.online and any(r.room_id == room_id for r in chat.rooms()):
                break
            await asyncio.sleep(0.05)
        assert chat.online is True
        await chat.join(room_id)
        await alice.chat.sync_once()
        await alice.chat.send_text(room_id, "you are back")
        for _ in range(100):
            if bob.texts(room_id):
                break
            await asyncio.sleep(0.05)
        assert bob.texts(room_id) == ["you are back"]
    finally:
        await alice.close()
        await bob.close()


async def test_a_crash_after_sending_reposts_once_as_a_duplicate(open_server, tmp_path):
    """An accepted message's outbox row is deleted with the next write, not at once. If the
    process dies first, the next start re-posts the same ciphertext: the relay answers
    'duplicate' and nobody sees the message twice."""
    from app.services.chat import ChatService

    alice = await new_client(open_server, tmp_path, "dr.alice.crash")
    bob = await new_client(open_server, tmp_path, "dr.bob.crash")
    try:
        room_id = await room_with(alice, bob)
        event_id = await alice.chat.send_text(room_id, "sent just before the crash")
        assert alice.chat.outbox.count() == 0  # accepted: no longer pending
        rows = alice.ws.session.cache.conn.execute(
            "SELECT event_id FROM chat_outbox").fetchall()
        assert rows == [(event_id,)]  # still on disk
        # "Crash": the service is dropped without stop(); a new one starts on the cache.
        alice.chat._session.changed.disconnect(alice.chat._on_session)
        alice.chat = ChatService(alice.ws.session)
        duplicates = []
        alice.chat.sent.connect(duplicates.append)
        await alice.chat.start(background=False)
        assert duplicates == [event_id]  # re-posted, accepted as the same event
        await bob.chat.sync_once()
        assert bob.texts(room_id) == ["sent just before the crash"]
        assert event_rows(open_server, [event_id]) == [event_id]
        await alice.chat.sync_once()
        assert alice.ws.session.cache.conn.execute(
            "SELECT count(*) FROM chat_outbox").fetchone()[0] == 0
    finally:
        await alice.close()
        await bob.close()
