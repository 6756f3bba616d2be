"""The room's next key goes ahead of the rotation, through the real relay (docs/e2ee.md,
"Rotation"): the receiver holds it before the first message under it arrives, so every
message across a rotation is shown from its push; the ahead key leaves after the event it
was queued with, except when its session is already in use (composed offline)."""

from __future__ import annotations

import asyncio

from app.crypto.megolm import RotationPolicy
from app.net import relay_api
from tests.integration.test_chat import new_client, room_with
from tests.integration.test_chat_resilience import restart

POLICY = RotationPolicy(max_messages=4, ahead_messages=2)


async def _wait(predicate, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _holds_upcoming_key(sender, receiver, room_id: str) -> bool:
    upcoming = sender.chat.store.upcoming_outbound_group(room_id)
    if upcoming is None:
        return True
    curve = sender.chat.machine.local.curve25519
    return receiver.chat.store.inbound_group(room_id, curve, upcoming.session_id) is not None


async def test_every_message_across_rotations_is_shown_from_its_push(open_server, tmp_path,
                                                                    monkeypatch):
    alice = await new_client(open_server, tmp_path, "dr.alice.ahead", rotation=POLICY)
    bob = await new_client(open_server, tmp_path, "dr.bob.ahead", background=True,
                           poll_interval_s=600)
    calls: list[tuple[str, str]] = []  # alice's requests, in order
    for name in ("post_event", "send_to_device"):
        real = getattr(relay_api, name)

        async def recording(transport, *args, _real=real, _name=name, **kwargs):
            if transport is alice.chat.transport:
                calls.append((_name, args[1] if _name == "post_event" else ""))
            return await _real(transport, *args, **kwargs)
        monkeypatch.setattr(relay_api, name, recording)
    try:
        room_id = await room_with(alice, bob)
        warm = await alice.chat.send_text(room_id, "warm-up")  # the first key: by sync
        await _wait(lambda: bob.chat.message_by_id(warm) is not None)
        from_push: set[str] = set()  # shown from the push, not by a sync
        receive = bob.chat._receive_pushed

        def receive_pushed(event, applied):
            taken = receive(event, applied)
            if taken:
                from_push.add(event.event_id)
            return taken
        bob.chat._receive_pushed = receive_pushed
        sent, per_send = [], []
        for i in range(10):  # two rotations (4 messages per session)
            calls.clear()
            sent.append(await alice.chat.send_text(room_id, f"across rotations {i}"))
            per_send.append([name for name, _ in calls])
            await _wait(lambda: bob.chat.message_by_id(sent[-1]) is not None)
            # What a clinician's pace gives for free: the ahead key reached bob's device.
            await _wait(lambda: _holds_upcoming_key(alice, bob, room_id))
        assert from_push == set(sent)  # none held for its key, none left to the sync
        assert bob.texts(room_id) == ["warm-up"] + [f"across rotations {i}" for i in range(10)]
        assert bob.chat.undecrypted(room_id) == []
        # A key never delays an event: the ahead key leaves after it, a rotation sends none.
        assert all(names[0] == "post_event" for names in per_send)
        assert sum(names == ["post_event", "send_to_device"] for names in per_send) >= 2
        assert alice.chat.outbox.to_device() == []
    finally:
        await alice.close()
        await bob.close()


async def test_composed_offline_the_ahead_key_goes_before_the_event_that_needs_it(
        open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.ahead2", rotation=POLICY)
    bob = await new_client(open_server, tmp_path, "dr.bob.ahead2")
    restarted = None
    try:
        room_id = await room_with(alice, bob)
        await alice.chat.send_text(room_id, "online")  # message 1 of the first session
        open_server.stop()
        await alice.chat.send_text(room_id, "offline 1")
        assert alice.chat.outbox.to_device() == []
        await alice.chat.send_text(room_id, "offline 2")  # message 3: the next key queued
        assert len(alice.chat.outbox.to_device(ahead=True)) == 1
        await alice.chat.send_text(room_id, "offline 3")
        assert len(alice.chat.outbox.to_device(ahead=True)) == 1  # made and queued once
        await alice.chat.send_text(room_id, "offline 4")  # the next session takes over
        assert alice.chat.outbox.to_device(ahead=True) == []
        assert len(alice.chat.outbox.to_device(ahead=False)) == 1  # needed first now
        restarted = restart(open_server)
        await alice.chat.flush()
        assert alice.chat.outbox.count() == 0 and alice.chat.outbox.to_device() == []
        await bob.chat.sync_once()
        assert bob.texts(room_id) == ["online", "offline 1", "offline 2", "offline 3",
                                      "offline 4"]
        assert bob.chat.undecrypted(room_id) == []
    finally:
        await alice.close()
        await bob.close()
        if restarted is not None:
            restarted.stop()
