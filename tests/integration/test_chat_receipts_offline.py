"""Receipts and status written while offline still reach a device we had no Olm session
with: they wait (not encrypted to the devices that happened to have a session; kept in the
cache across a restart) until the relay is back, then one-time keys are claimed and the
relay stores them for that device until it syncs. Real clients, the real relay stopped and
restarted."""

from __future__ import annotations

import contextlib

from app.core.errors import ConnectionFailed
from app.crypto.store import TrustLevel
from app.services.chat import ChatService
from tests.integration.test_chat import new_client, room_with
from tests.integration.test_chat_resilience import restart


def _accept_new_devices(client, user_id) -> None:
    for record in client.chat.devices(user_id):
        if record.trust is TrustLevel.UNVERIFIED:
            client.chat.accept_device(user_id, record.device_id, record.ed25519)


async def test_read_receipt_and_status_sent_offline_reach_a_device_without_a_session(
        open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.ro")
    bob = await new_client(open_server, tmp_path, "dr.bob.ro", receipt_interval_s=3600)
    restarted = None
    alice2 = None
    try:
        room_id = await room_with(alice, bob)
        await alice.chat.send_text(room_id, "first")
        await bob.chat.sync_once()  # a delivered receipt goes at once; the next wait an hour

        # Alice signs in on a second workstation; both her devices and Bob accept it.
        alice2 = await new_client(open_server, tmp_path, "dr.alice.ro", creds=alice.creds)
        for client in (alice, bob):
            await client.chat.refresh_device_lists([alice.user_id])
            _accept_new_devices(client, alice.user_id)
        await alice2.chat.refresh_rooms()
        second = await alice.chat.send_text(room_id, "second, please read")
        await alice2.chat.sync_once()
        assert alice2.texts(room_id) == ["second, please read"]
        device2 = alice2.ws.session.device.device_id
        assert bob.chat.machine.missing_sessions([alice.user_id]) == [(alice.user_id, device2)]

        await bob.chat.sync_once()
        assert bob.texts(room_id) == ["first", "second, please read"]

        # Bob loses the relay, reads the room and sets "do not disturb".
        open_server.stop()
        bob.chat.mark_read(room_id)
        with contextlib.suppress(ConnectionFailed):
            await bob.chat.send_receipts()
        await bob.chat.set_presence("dnd")
        assert bob.chat.online is False
        # Nothing was encrypted for only the devices that happened to have a session.
        assert bob.chat.outbox.to_device() == []
        assert bob.chat._pending_receipts

        # Bob's chat restarts before the relay is back: what waited is in the cache.
        await bob.chat.stop()
        bob.chat = ChatService(bob.ws.session, receipt_interval_s=3600)
        assert not bob.chat._pending_receipts
        restarted = restart(open_server)
        await bob.chat.start(background=False)  # catches up, then sends what waited
        await bob.chat.flush()
        assert not bob.chat._pending_receipts and bob.chat.outbox.to_device() == []
        assert bob.chat.state.get("receipts_pending") is None

        # Alice's second device -- no Olm session with Bob before -- gets both.
        await alice2.chat.sync_once()
        assert alice2.chat.delivery(room_id)[second].state == "read"
        assert alice2.chat.peer_presence(bob.user_id) == "dnd"
        await alice.chat.sync_once()
        assert alice.chat.delivery(room_id)[second].state == "read"
        assert alice.chat.peer_presence(bob.user_id) == "dnd"
    finally:
        for client in (alice, bob, alice2):
            if client is not None:
                await client.close()
        if restarted is not None:
            restarted.stop()
