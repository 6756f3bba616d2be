"""The push hub on its own (no sockets): fan-out by user, back-pressure, held signals,
order of batches; and a property test of sync: whatever the interleaving of posts, syncs
and page sizes, a device sees each event exactly once and in order."""

from __future__ import annotations

import asyncio
import json
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from server_stub.core.db import Database
from server_stub.core.pubsub import (
    CLOSE,
    MAX_FRAME_CHARS,
    MAX_FRAME_OBJECTS,
    Hub,
    frames_of,
)
from server_stub.core.schema import MIGRATIONS
from server_stub.crud import events, rooms


async def test_fan_out_reaches_every_device_of_the_users_only():
    hub = Hub()
    a1, a2 = hub.subscribe("alice", "a1"), hub.subscribe("alice", "a2")
    b1, c1 = hub.subscribe("bob", "b1"), hub.subscribe("carol", "c1")
    assert hub.send_to_users(["alice", "bob", "alice"], "x") == 3
    assert [s.queue.qsize() for s in (a1, a2, b1, c1)] == [1, 1, 1, 0]
    hub.unsubscribe(a2)
    assert hub.send_to_users(["alice"], "y") == 1
    assert not hub.is_connected("a2")


async def test_slow_consumer_is_disconnected_not_buffered_forever():
    hub = Hub(queue_limit=3)
    sub = hub.subscribe("alice", "a1")
    for i in range(4):
        hub.send_to_device("a1", f"m{i}")
    assert sub.closed and sub.close_code == 1013 and sub.close_reason == "slow_consumer"
    drained = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert drained[-1] is CLOSE
    assert hub.stats.dropped_slow == 1
    assert hub.send_to_device("a1", "after") == 0


async def test_signal_held_for_offline_device_until_ttl():
    hub = Hub(signal_ttl_s=0.05)
    assert hub.hold_or_send("b1", "offer-1") is False
    sub = hub.subscribe("bob", "b1")
    assert sub.queue.get_nowait() == "offer-1"
    hub.unsubscribe(sub)
    hub.hold_or_send("b1", "offer-2")
    await asyncio.sleep(0.06)
    hub.expire_held()
    assert hub.subscribe("bob", "b1").queue.empty()
    assert hub.stats.signals_expired == 1


async def test_batches_from_threads_arrive_in_order():
    hub = Hub()
    sub = hub.subscribe("alice", "a1")

    def publish() -> None:
        for k in range(5):
            hub.publish_batch([(["alice"], f"{k}-{j}") for j in range(3)])

    await asyncio.to_thread(publish)
    await asyncio.sleep(0.05)
    frames = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    # A batch's pushes to one socket leave as one frame (newline-separated objects).
    assert frames == ["\n".join(f"{k}-{j}" for j in range(3)) for k in range(5)]


async def test_publish_on_the_loop_stays_behind_earlier_thread_handovers():
    hub = Hub()
    sub = hub.subscribe("alice", "a1")
    # A thread hands an earlier event over; before the loop runs it, the loop publishes a
    # later one itself (the WebSocket's send path stores on the loop thread).
    thread = threading.Thread(target=hub.publish_batch, args=([(["alice"], "pos-5")],))
    thread.start()
    thread.join()
    hub.publish_batch([(["alice"], "pos-6")])
    await asyncio.sleep(0.01)
    assert [sub.queue.get_nowait() for _ in range(sub.queue.qsize())] == ["pos-5", "pos-6"]


async def test_a_push_is_written_at_once_only_when_nothing_waits_for_the_socket():
    hub = Hub()
    sub = hub.subscribe("alice", "a1")
    wire: list[str] = []
    writable = {"now": True}

    def writer(text: str) -> bool:
        if not writable["now"]:
            return False  # TCP back-pressure
        wire.append(text)
        return True

    hub.send_to_device("a1", "m0")  # no writer yet (opening frames not out): queued
    assert wire == [] and sub.queue.get_nowait() == "m0"
    sub.writer = writer
    hub.send_to_device("a1", "m1")
    assert wire == ["m1"] and sub.queue.empty()
    writable["now"] = False
    hub.send_to_device("a1", "m2")
    writable["now"] = True
    hub.send_to_device("a1", "m3")  # m2 still waits: m3 goes behind it, not past it
    assert wire == ["m1"]
    assert [sub.queue.get_nowait() for _ in range(2)] == ["m2", "m3"]
    sub.busy = True  # the socket's task holds frames it has not finished writing
    hub.send_to_device("a1", "m4")
    assert wire == ["m1"] and sub.queue.get_nowait() == "m4"
    sub.busy = False

    def closing(text: str) -> bool:
        raise RuntimeError("connection closing")

    sub.writer = closing
    hub.send_to_device("a1", "m5")  # queued: the socket's task meets the error
    assert sub.queue.get_nowait() == "m5"
    assert (hub.stats.delivered, hub.stats.written_direct) == (6, 1)


async def test_a_burst_leaves_as_one_frame_per_socket_in_order():
    hub = Hub()
    a1, b1 = hub.subscribe("alice", "a1"), hub.subscribe("bob", "b1")
    wire: list[str] = []
    a1.writer = lambda text: wire.append(text) is None
    hub.publish_batch([(["alice", "bob"], "e1"), (["alice"], "e2"), (["bob", "alice"], "e3")])
    await asyncio.sleep(0.01)
    assert wire == ["e1\ne2\ne3"]
    assert b1.queue.get_nowait() == "e1\ne3" and b1.queue.empty()


def test_frames_stay_within_their_bounds():
    small = [f'{{"n":{i}}}' for i in range(2 * MAX_FRAME_OBJECTS + 1)]
    frames = list(frames_of(small))
    assert [f.count("\n") + 1 for f in frames] == [MAX_FRAME_OBJECTS, MAX_FRAME_OBJECTS, 1]
    assert "\n".join(frames).split("\n") == small
    big = ["x" * (MAX_FRAME_CHARS // 3)] * 7
    frames = list(frames_of(big))
    assert all(len(f) <= MAX_FRAME_CHARS for f in frames) and len(frames) == 4
    assert "\n".join(frames).split("\n") == big
    huge = ["y" * (MAX_FRAME_CHARS + 1)]  # one object over the bound goes alone
    assert list(frames_of(huge)) == huge
    assert list(frames_of([])) == []


steps = st.lists(
    st.one_of(st.tuples(st.just("post"), st.integers(1, 4)),
              st.tuples(st.just("sync"), st.integers(1, 5)),
              st.tuples(st.just("other_room"), st.integers(1, 2))),
    min_size=1, max_size=25)


@settings(max_examples=40, deadline=None)
@given(plan=steps)
def test_sync_sees_each_event_once_in_order(tmp_path_factory, plan):
    db = Database(tmp_path_factory.mktemp("sync") / "db.sqlite3", MIGRATIONS)
    now = 1_800_000_000_000
    with db.transaction() as conn:
        room, _ = rooms.create_room(conn, creator_user_id="alice", creator_device_id="a1",
                                    now_ms=now)
        other, _ = rooms.create_room(conn, creator_user_id="carol", creator_device_id="c1",
                                     now_ms=now)
    posted: list[str] = []
    seen: list[str] = []
    token = events.SyncToken()
    counter = 0

    def post(room_id: str, user: str) -> str:
        nonlocal counter
        counter += 1
        event_id = f"evt-{counter:06d}"
        with db.transaction() as conn:
            events.post_event(conn, room_id, event_id=event_id, type_="m.room.encrypted",
                              content_json=json.dumps({"n": counter}), sender_user_id=user,
                              sender_device_id="dev", now_ms=now)
        return event_id

    def sync(limit: int) -> None:
        nonlocal token
        while True:
            with db.transaction() as conn:
                batch = events.read_batch(conn, user_id="alice", device_id="a1", since=token,
                                          limit=limit, now_ms=now)
            seen.extend(e.event_id for e in batch.events if e.type == "m.room.encrypted")
            token = batch.next_token
            if not batch.limited:
                return

    for action, n in plan:
        for _ in range(n):
            if action == "post":
                posted.append(post(room.room_id, "alice"))
            elif action == "other_room":
                post(other.room_id, "carol")  # not alice's room: never seen
        if action == "sync":
            sync(n)
    sync(3)
    assert seen == posted
