"""Room events and co-viewing end to end: two real clients (own device, own SQLCipher
cache) through the reference relay over TLS, real vodozemac; ChatService.send_room_event
and the room_event signal unmocked."""

from __future__ import annotations

import asyncio

from app.core.coview import (
    COVIEW_EVENT,
    FOLLOWER,
    PRESENTER,
    CoviewState,
    PanePointer,
    PaneState,
    Region,
    SharedMeasurement,
)
from app.services.coview import CoviewService
from tests.integration.test_chat import new_client, raw_files_containing, room_with


def _device(client) -> str:
    return client.ws.session.device.device_id


async def test_room_events_round_trip_encrypted_and_not_as_messages(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice")
    bob = await new_client(open_server, tmp_path, "dr.bob")
    try:
        room_id = await room_with(alice, bob)
        got = []
        bob.chat.room_event.connect(got.append)
        event_id = await alice.chat.send_room_event(
            room_id, "sc.test.ping", {"marker": "MARKER-re-5d1e", "n": 3})
        await bob.chat.sync_once()
        (event,) = got
        assert (event.room_id, event.event_id, event.sender, event.sender_device,
                event.event_type) == (room_id, event_id, alice.user_id, _device(alice),
                                      "sc.test.ping")
        assert event.content.reveal() == {"marker": "MARKER-re-5d1e", "n": 3}
        assert "MARKER" not in repr(event)
        # Not a chat message on either side; the outbox is empty; nothing in plaintext.
        assert bob.chat.messages(room_id) == [] and alice.chat.messages(room_id) == []
        assert alice.chat.outbox.count() == 0
        assert raw_files_containing(open_server.data_dir, [b"MARKER-re-5d1e"]) == {}
        # Chat messages are not room events.
        await alice.chat.send_text(room_id, "hello")
        await bob.chat.sync_once()
        assert len(got) == 1
    finally:
        await alice.close()
        await bob.close()


async def test_send_room_event_refuses_chat_messages_and_foreign_types(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice")
    try:
        room_id = await alice.chat.create_room()
        for bad in ("sc.message", "m.room.message", ""):
            try:
                await alice.chat.send_room_event(room_id, bad, {})
            except ValueError:
                continue
            raise AssertionError(f"{bad!r} accepted")
    finally:
        await alice.close()


async def test_coview_state_from_the_presenter_is_applied_at_the_follower(open_server,
                                                                          tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice")
    bob = await new_client(open_server, tmp_path, "dr.bob")
    a = CoviewService(alice.chat, "", _device(alice), interval_s=0.05)
    b = CoviewService(bob.chat, "", _device(bob), interval_s=0.05)
    try:
        room_id = await room_with(alice, bob)
        a.room_id = b.room_id = room_id
        seen = []
        b.remote_view.connect(seen.append)
        await b.start(FOLLOWER)
        first = CoviewState("studyMARK9f", (PaneState("series1", index=4, center=40.0,
                                                      width=400.0),))
        await a.start(PRESENTER, first)
        region = Region((50.0, 60.0), (100.0, 80.0))
        for n in range(20):  # a burst of changes: coalesced, the newest goes out
            a.publish(CoviewState("studyMARK9f", (PaneState(
                "series1", index=5 + n, center=40.0, width=400.0, region=region),),
                PanePointer(0, (100.0, 120.5))))
        final = CoviewState(
            "studyMARK9f",
            (PaneState("series1", index=30, center=-600.0, width=1500.0, region=region,
                       measurements=(SharedMeasurement("distance",
                                                       ((1.0, 2.0), (30.0, 40.0))),)),
             PaneState("series2", index=2)),
            PanePointer(1, (100.0, 120.5)))
        a.publish(final)
        for _ in range(50):
            await asyncio.sleep(0.05)
            await bob.chat.sync_once()
            await alice.chat.sync_once()
            if seen and seen[-1].state == final:
                break
        assert seen[-1].state == final
        assert seen[-1].user_id == alice.user_id and seen[-1].device_id == _device(alice)
        assert a.sent_count < 10  # 22 changes, coalesced
        # Each side knows the other: A sees B following, B sees A presenting.
        assert b.presenter() is not None and b.presenter().user_id == alice.user_id
        assert [p.role for p in a.participants()] == [FOLLOWER]
        # Malformed or replayed updates are ignored with a PHI-free reason.
        reasons = []
        b.ignored.connect(reasons.append)
        await alice.chat.send_room_event(room_id, COVIEW_EVENT, {
            "v": 2, "session": a.session, "seq": 10**6, "role": "presenter",
            "state": {**final.to_wire(), "patient": "DOE^JOHN"}})
        await alice.chat.send_room_event(room_id, COVIEW_EVENT, {
            "v": 2, "session": a.session, "seq": 1, "role": "presenter",
            "state": final.to_wire()})
        await bob.chat.sync_once()
        assert reasons == ["state has unknown fields", "out of order"]
        assert seen[-1].state == final
        # A leaves: B no longer has a presenter.
        await a.stop()
        await bob.chat.sync_once()
        assert b.presenter() is None
        # The relay holds only ciphertext of the co-view state (its type included).
        assert raw_files_containing(open_server.data_dir,
                                    [b"studyMARK9f", COVIEW_EVENT.encode()]) == {}
    finally:
        await b.stop()
        await alice.close()
        await bob.close()



async def test_a_late_follower_gets_the_presenters_current_view_at_once(open_server,
                                                                        tmp_path):
    """The presenter sends its whole view again when a follower joins: a follower who
    arrives after the last change does not wait for the next one."""
    alice = await new_client(open_server, tmp_path, "dr.alice")
    bob = await new_client(open_server, tmp_path, "dr.bob")
    a = CoviewService(alice.chat, "", _device(alice), interval_s=0.05)
    b = CoviewService(bob.chat, "", _device(bob), interval_s=0.05)
    try:
        room_id = await room_with(alice, bob)
        a.room_id = b.room_id = room_id
        view = CoviewState("study1", (PaneState("series1", index=9),))
        await a.start(PRESENTER, view)
        for _ in range(10):
            await asyncio.sleep(0.05)
        sent = a.sent_count
        assert sent == 1  # said once, nobody listening yet
        await bob.chat.sync_once()  # B's client has the room's events before B follows
        seen = []
        b.remote_view.connect(seen.append)
        await b.start(FOLLOWER)
        for _ in range(200):
            await asyncio.sleep(0.05)
            await alice.chat.sync_once()
            await bob.chat.sync_once()
            if seen and a.sent_count > sent:
                break
        # A saw B join and said its view again (unchanged, so only because B joined).
        assert a.sent_count == sent + 1
        assert seen and seen[-1].state == view
    finally:
        await a.stop()
        await b.stop()
        await alice.close()
        await bob.close()
