"""Receiving from the push (docs/e2ee.md, "Receiving"): a pushed chat text whose room key is
here is decrypted, stored and shown without a sync round trip; the sync that moves the token
comes later and finds the event known (shown once). Anything else -- here, an event whose
key has not arrived -- is left to the sync, which handles every case as before."""

from __future__ import annotations

import asyncio

from app.crypto.megolm import RotationPolicy
from app.services import chat_receiving
from app.storage.chat_state import SYNC_TOKEN
from tests.integration.test_chat import new_client, room_with


async def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_pushed_text_is_shown_before_the_sync_and_once(open_server, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(chat_receiving, "PUSH_SYNC_DELAY_S", 0.5)
    alice = await new_client(open_server, tmp_path, "dr.alice.push")
    bob = await new_client(open_server, tmp_path, "dr.bob.push", background=True,
                           poll_interval_s=600)
    try:
        room_id = await room_with(alice, bob)
        await alice.chat.send_text(room_id, "warm-up")  # the room key reaches bob by sync
        await _wait(lambda: bob.texts(room_id) == ["warm-up"])
        await asyncio.sleep(0.8)  # the deferred sync after it has run
        shown, tokens = [], []
        bob.chat.message.connect(
            lambda m: (shown.append(m.event_id), tokens.append(bob.chat.state.get(SYNC_TOKEN))))
        before = bob.chat.state.get(SYNC_TOKEN)

        event_id = await alice.chat.send_text(room_id, "K+ 6.1, repeat the ECG")
        await _wait(lambda: shown == [event_id])
        assert tokens == [before]  # shown from the push: no sync had moved the token
        assert bob.texts(room_id) == ["warm-up", "K+ 6.1, repeat the ECG"]
        await _wait(lambda: bob.chat.state.get(SYNC_TOKEN) != before, timeout=5)
        await asyncio.sleep(0.2)
        assert shown == [event_id]  # the sync brought it again: known, not shown twice
        assert bob.chat.undecrypted(room_id) == []
        assert bob.chat.rooms()[0].unread == 2
    finally:
        await alice.close()
        await bob.close()


async def test_a_pushed_event_without_its_key_is_left_to_the_sync(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.push2")
    bob = await new_client(open_server, tmp_path, "dr.bob.push2", background=True,
                           poll_interval_s=600)
    try:
        room_id = await room_with(alice, bob)
        # The first message of a room: its key comes as a to-device message, which only the
        # sync fetches; the pushed event cannot be read from the push alone.
        event_id = await alice.chat.send_text(room_id, "first, with a new room key")
        await _wait(lambda: bob.texts(room_id) == ["first, with a new room key"])
        assert bob.chat.message_by_id(event_id) is not None
        assert bob.chat.undecrypted(room_id) == []
    finally:
        await alice.close()
        await bob.close()


async def test_messages_across_room_key_rotations_are_shown_once_each(open_server, tmp_path):
    """A rotation sends the new key (to-device, fetched by sync) just before the event: the
    pushed event is held and opened by the sync that brings its key."""
    alice = await new_client(open_server, tmp_path, "dr.alice.push3",
                             rotation=RotationPolicy(max_messages=2))
    bob = await new_client(open_server, tmp_path, "dr.bob.push3", background=True,
                           poll_interval_s=600)
    try:
        room_id = await room_with(alice, bob)
        shown = []
        bob.chat.message.connect(lambda m: shown.append(m.event_id))
        sent = []
        for i in range(7):
            sent.append(await alice.chat.send_text(room_id, f"round {i}"))
            await _wait(lambda: sent[-1] in shown)
        await asyncio.sleep(1.5)  # the deferred syncs have run
        assert shown == sent  # in order, once each
        assert bob.texts(room_id) == [f"round {i}" for i in range(7)]
        assert bob.chat.undecrypted(room_id) == []
        assert len(bob.chat._held) == 0
    finally:
        await alice.close()
        await bob.close()
