"""Urgent messages that re-notify until acknowledged, and do-not-disturb, between real clients
through the reference relay."""

from __future__ import annotations

import asyncio

from tests.integration.test_chat import new_client, room_with


async def test_urgent_renotifies_until_acknowledged_and_dnd_keeps_only_urgent(open_server,
                                                                              tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.u")
    bob = await new_client(open_server, tmp_path, "dr.bob.u")
    told = []
    bob.chat.notify.connect(told.append)
    presence = []
    alice.chat.presence_changed.connect(presence.append)
    try:
        room_id = await room_with(alice, bob)
        await alice.chat.send_text(room_id, "routine: lab results are in")
        await bob.chat.sync_once()
        assert [(n.urgent, n.repeat) for n in told] == [(False, False)]

        # Bob goes do-not-disturb: Alice's device learns it; routine messages stay quiet.
        await bob.chat.set_presence("dnd")
        assert bob.chat.presence == "dnd"
        await alice.chat.sync_once()
        assert presence == [bob.user_id] and alice.chat.peer_presence(bob.user_id) == "dnd"
        told.clear()
        await alice.chat.send_text(room_id, "routine again")
        urgent = await alice.chat.send_text(room_id, "URGENT: bed 3 desaturating", urgent=True)
        await bob.chat.sync_once()
        assert [(n.event_id, n.urgent) for n in told] == [(urgent, True)]
        shown = bob.chat.message_by_id(urgent)
        assert shown.urgent and not shown.acknowledged
        assert [m.event_id for m in bob.chat.unacknowledged()] == [urgent]

        # Not acknowledged: it notifies again (under DND too), each interval.
        told.clear()
        assert [n.event_id for n in bob.chat.renotify()] == [urgent]
        assert told[0].repeat
        # The background loop does the same on its own.
        bob.chat.renotify_s = 0.05
        loop_task = asyncio.get_running_loop().create_task(bob.chat._urgent_loop())
        try:
            for _ in range(100):
                if len(told) >= 3:
                    break
                await asyncio.sleep(0.02)
        finally:
            loop_task.cancel()
        assert len(told) >= 3 and {n.event_id for n in told} == {urgent}

        # Bob acknowledges: no more notifications; Alice sees it acknowledged by Bob.
        await bob.chat.acknowledge(room_id, urgent)
        assert bob.chat.renotify() == [] and bob.chat.unacknowledged() == []
        assert bob.chat.message_by_id(urgent).acknowledged
        assert not alice.chat.message_by_id(urgent).acknowledged
        await alice.chat.sync_once()
        assert alice.chat.message_by_id(urgent).acknowledged
        assert alice.chat.acknowledged_by(urgent) == [bob.user_id]

        # Back to available: routine messages notify again.
        await bob.chat.set_presence("available")
        told.clear()
        await alice.chat.send_text(room_id, "thanks")
        await bob.chat.sync_once()
        assert [n.urgent for n in told] == [False]
    finally:
        await alice.close()
        await bob.close()


async def test_a_forged_ack_or_presence_from_a_stranger_is_ignored(open_server, tmp_path):
    from app.services.chat_content import PRESENCE_TYPE, RECEIPT_TYPE

    alice = await new_client(open_server, tmp_path, "dr.alice.u2")
    bob = await new_client(open_server, tmp_path, "dr.bob.u2")
    mallory = await new_client(open_server, tmp_path, "dr.mallory.u2")
    try:
        room_id = await room_with(alice, bob)
        await room_with(mallory, alice)  # Mallory shares another room with Alice
        urgent = await alice.chat.send_text(room_id, "urgent one", urgent=True)
        await mallory.chat.refresh_device_lists([alice.user_id])
        async with mallory.chat._lock:
            with mallory.chat.cache.write():
                for type_, content in (
                        (RECEIPT_TYPE, {"room_id": room_id, "kind": "ack", "up_to": urgent}),
                        (PRESENCE_TYPE, {"status": "asleep"})):
                    mallory.chat._queue_to_device(
                        mallory.chat.machine.encrypt_to_members([alice.user_id], type_,
                                                                content))
        await mallory.chat.flush()
        await alice.chat.sync_once()
        assert alice.chat.acknowledged_by(urgent) == []  # not a member of that room
        assert alice.chat.peer_presence(mallory.user_id) == "available"
    finally:
        for client in (alice, bob, mallory):
            await client.close()
