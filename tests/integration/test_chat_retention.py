"""Retention and disappearing messages between real clients through the reference relay."""

from __future__ import annotations

import time

from tests.integration.test_chat import new_client, room_with
from tests.integration.test_chat_messages import _post_plain


async def test_disappearing_messages_on_every_members_device(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.d")
    bob = await new_client(open_server, tmp_path, "dr.bob.d")
    purged = []
    bob.chat.purged.connect(purged.append)
    try:
        room_id = await room_with(alice, bob)
        keep_room = await room_with(alice, bob)
        await alice.chat.send_text(keep_room, "this room keeps its messages")
        first = await alice.chat.send_text(room_id, "MARKER-dis gone after a minute")
        await alice.chat.edit_message(room_id, first, "MARKER-dis edited, still goes")
        await alice.chat.set_disappearing(room_id, 60)
        assert alice.chat.disappearing(room_id) == 60
        await bob.chat.sync_once()
        assert bob.chat.disappearing(room_id) == 60 and bob.chat.disappearing(keep_room) == 0
        assert bob.texts(room_id) == ["MARKER-dis edited, still goes"]

        now = int(time.time() * 1000)
        for client in (alice, bob):  # not yet
            assert client.chat.purge_expired(now + 30_000) == set()
        later = now + 61_000
        assert bob.chat.purge_expired(later) == {room_id}
        assert purged == [{room_id}]
        assert alice.chat.purge_expired(later) == {room_id}
        for client in (alice, bob):
            assert client.texts(room_id) == []
            assert client.texts(keep_room) == ["this room keeps its messages"]
            assert client.chat.search("MARKER-dis") == []
            rows = client.chat.cache.fetchall("SELECT COUNT(*) FROM chat_message_meta", ())
            assert rows[0][0] == 0  # the edit text went too

        # Bob turns it off (any member may); the latest setting wins on both devices.
        await bob.chat.set_disappearing(room_id, 0)
        await alice.chat.sync_once()
        assert alice.chat.disappearing(room_id) == 0
        await alice.chat.send_text(room_id, "stays now")
        assert alice.chat.purge_expired(later + 3_600_000) == set()

        # A malformed setting is kept as unreadable with the reason; nothing changes.
        bad = await _post_plain(alice, room_id, {"msgtype": "disappear", "after_s": 5})
        await bob.chat.sync_once()
        assert bob.chat.disappearing(room_id) == 0
        (kept,) = [e for e in bob.chat.undecrypted(room_id) if e.event_id == bad]
        assert kept.reason == "MalformedContent"
    finally:
        await alice.close()
        await bob.close()


async def test_retention_purges_everything_older_than_the_policy(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.ret")
    try:
        room_id = await alice.chat.create_room()
        await alice.chat.send_text(room_id, "old consult note")
        now = int(time.time() * 1000)
        days = alice.ws.session.policy.retention_days
        assert alice.chat.purge_expired(now + (days - 1) * 86_400_000) == set()
        assert alice.chat.purge_expired(now + days * 86_400_000 + 1000) == {room_id}
        assert alice.texts(room_id) == []
    finally:
        await alice.close()
