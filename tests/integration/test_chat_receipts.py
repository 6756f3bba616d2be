"""Delivery and read receipts between three real clients through the reference relay
(Olm-encrypted to-device messages; docs/e2ee.md, "Message content")."""

from __future__ import annotations

import asyncio

from app.services.chat_content import RECEIPT_TYPE
from tests.integration.test_chat import new_client, room_with


async def test_delivery_receipts_of_a_burst_go_out_once_per_interval(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.r3", receipt_interval_s=0)
    bob = await new_client(open_server, tmp_path, "dr.bob.r3", receipt_interval_s=0.5)
    try:
        room_id = await room_with(alice, bob)
        first = await alice.chat.send_text(room_id, "one")
        await bob.chat.sync_once()  # the first goes at once
        second = await alice.chat.send_text(room_id, "two")
        await bob.chat.sync_once()  # within the interval: held back
        assert bob.chat._pending_receipts
        await alice.chat.sync_once()
        delivery = alice.chat.delivery(room_id)
        assert (delivery[first].state, delivery[second].state) == ("delivered", "sent")
        await asyncio.sleep(0.6)
        await bob.chat.sync_once()  # the interval passed: the newest one goes
        await alice.chat.sync_once()
        assert alice.chat.delivery(room_id)[second].state == "delivered"
    finally:
        await alice.close()
        await bob.close()


async def test_sent_delivered_read_with_three_clients(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.r",
                               receipt_interval_s=0)
    bob = await new_client(open_server, tmp_path, "dr.bob.r",
                               receipt_interval_s=0)
    carol = await new_client(open_server, tmp_path, "dr.carol.r",
                               receipt_interval_s=0)
    changed: list[str] = []
    alice.chat.receipts_changed.connect(changed.append)
    try:
        room_id = await room_with(alice, bob, carol)
        first = await alice.chat.send_text(room_id, "bed 7 needs a second look")

        def state():
            d = alice.chat.delivery(room_id)[first]
            return d.state, d.delivered, d.read, d.others

        assert state() == ("sent", 0, 0, 2)
        await bob.chat.sync_once()  # Bob's device has it: a delivered receipt goes out
        await alice.chat.sync_once()
        assert state() == ("sent", 1, 0, 2)  # Carol's device does not have it yet
        assert changed == [room_id]
        await carol.chat.sync_once()
        await alice.chat.sync_once()
        assert state() == ("delivered", 2, 0, 2)

        bob.chat.mark_read(room_id)
        await bob.chat.send_receipts()
        await alice.chat.sync_once()
        assert state() == ("delivered", 2, 1, 2)
        carol.chat.mark_read(room_id)
        await carol.chat.send_receipts()
        await alice.chat.sync_once()
        assert state() == ("read", 2, 2, 2)

        # Receipts are not messages: nothing shown, no unread, no receipt for a receipt.
        for client in (alice, bob, carol):
            assert client.texts(room_id) == ["bed 7 needs a second look"]
            assert client.chat.undecrypted(room_id) == []
            assert client.chat.outbox.count() == 0
        assert [r.unread for r in alice.chat.rooms() if r.room_id == room_id] == [0]
        # Reading again sends nothing new; a later message starts at "sent" again.
        bob.chat.mark_read(room_id)
        assert bob.chat._pending_receipts == {}
        second = await alice.chat.send_text(room_id, "thanks")
        await bob.chat.sync_once()
        await alice.chat.sync_once()
        delivery = alice.chat.delivery(room_id)
        assert delivery[first].state == "read" and delivery[second].state == "sent"
        assert delivery[second].delivered == 1
        # Bob's own view of his receipts is not about Alice's messages.
        assert bob.chat.delivery(room_id) == {}
    finally:
        for client in (alice, bob, carol):
            await client.close()


async def test_a_receipt_naming_a_message_from_elsewhere_is_ignored(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.r2",
                               receipt_interval_s=0)
    bob = await new_client(open_server, tmp_path, "dr.bob.r2",
                               receipt_interval_s=0)
    try:
        room_id = await room_with(alice, bob)
        other = await room_with(alice, bob)
        elsewhere = await alice.chat.send_text(other, "in another room")
        mine = await alice.chat.send_text(room_id, "here")
        await alice.chat.sync_once()
        assert alice.chat.delivery(room_id)[mine].state == "sent"
        # Bob's device claims, for this room, to have read a message of another room, and
        # sends garbage: neither moves anything, and the stream goes on.
        for content in ({"room_id": room_id, "kind": "read", "up_to": elsewhere},
                        {"room_id": room_id, "kind": "seen", "up_to": mine},
                        {"room_id": room_id, "up_to": mine}):
            async with bob.chat._lock:
                with bob.chat.cache.write():
                    bob.chat._queue_to_device(bob.chat.machine.encrypt_to_members(
                        [alice.user_id], RECEIPT_TYPE, content))
            await bob.chat.flush()
        await alice.chat.sync_once()
        assert alice.chat.delivery(room_id)[mine].state == "sent"
        await bob.chat.sync_once()  # now a real one
        await alice.chat.sync_once()
        assert alice.chat.delivery(room_id)[mine].state == "delivered"
    finally:
        await alice.close()
        await bob.close()
