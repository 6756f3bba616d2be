"""What the relay acknowledges is on disk first: a ``sent`` reply, a POST's answer and a sync
token wait for the write-ahead log's fsync (the commit itself, with synchronous=NORMAL, does
not), while pushes to the other devices go out at once. The fsync is the one thing held
here: a power cut cannot be staged in a test, so ``os.fsync`` -- the edge -- is made to
wait, or fail, and everything else is the real server over TLS."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import pytest

from server_stub.core import db as db_module
from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS
from tests.server import relay_support
from tests.server.relay_support import connect_ws, make_room, next_push, post, sync

people = relay_support.people  # fixture
crowd = relay_support.crowd  # fixture


@pytest.fixture
def held_fsync(monkeypatch):
    """Every fsync by the server's ``Database.sync_wal`` waits until ``release`` is set;
    the files it synced are listed."""
    release = threading.Event()
    synced: list[str] = []
    real = db_module.fsync

    def fsync(fd: int) -> None:
        release.wait(10)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(db_module, "fsync", fsync)
    yield release, synced
    release.set()


def _send(room_id: str, event_id: str) -> str:
    return json.dumps({"type": "send", "room_id": room_id, "event_id": event_id,
                       "event_type": "m.room.encrypted",
                       "content": relay_support.encrypted(event_id)})


async def test_sent_waits_for_the_disk_the_push_does_not(open_server, people, held_fsync):
    release, synced = held_fsync
    release.set()
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    alice_ws = await connect_ws(open_server, alice)
    bob_ws = await connect_ws(open_server, bob)
    try:
        await next_push(alice_ws, "hello")
        await next_push(bob_ws, "hello")
        release.clear()
        await alice_ws.send(_send(room_id, "evt-durable-0001"))
        await alice_ws.send(_send(room_id, "evt-durable-0002"))
        # Pushed at commit, to the others and to the sender itself ...
        for ws in (bob_ws, alice_ws):
            got = [(await next_push(ws, "event"))["event"]["event_id"] for _ in range(2)]
            assert got == ["evt-durable-0001", "evt-durable-0002"]
        # ... but not acknowledged while the log is not on disk.
        with pytest.raises(TimeoutError):
            await next_push(alice_ws, "sent", 0.4)
        release.set()
        sent = [(await next_push(alice_ws, "sent"))["event_id"] for _ in range(2)]
        assert sent == ["evt-durable-0001", "evt-durable-0002"]
        assert synced and synced[-1].endswith("server.sqlite3-wal")
    finally:
        release.set()
        await alice_ws.close()
        await bob_ws.close()


async def test_post_answer_and_sync_token_wait_for_the_disk(open_server, people, held_fsync):
    release, synced = held_fsync
    release.set()
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    release.clear()
    posting = asyncio.create_task(post(alice, room_id, "evt-durable-post"))
    await asyncio.sleep(0.4)
    assert not posting.done()
    release.set()
    await posting
    release.clear()
    syncing = asyncio.create_task(sync(bob))
    await asyncio.sleep(0.4)
    assert not syncing.done()
    release.set()
    batch = await syncing
    assert "evt-durable-post" in [e["event_id"] for e in batch["events"]]
    assert all(path.endswith("server.sqlite3-wal") for path in synced)


async def test_a_failed_fsync_acknowledges_nothing(open_server, people, monkeypatch):
    (alice,) = await people("alice")
    room_id = await make_room(alice)
    ws = await connect_ws(open_server, alice)
    real = db_module.fsync
    failures = {"left": 1}

    def fsync(fd: int) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(5, "I/O error")
        real(fd)

    try:
        await next_push(ws, "hello")
        monkeypatch.setattr(db_module, "fsync", fsync)
        await ws.send(_send(room_id, "evt-durable-fail"))
        error = await next_push(ws, "error")
        assert error["code"] == "internal"
        await ws.send(_send(room_id, "evt-durable-fail"))  # the client's retry
        sent = await next_push(ws, "sent")
        assert (sent["event_id"], sent["duplicate"]) == ("evt-durable-fail", True)
    finally:
        await ws.close()


def _slow_fsyncs(monkeypatch, gates: list[threading.Event]) -> list[int]:
    started: list[int] = []
    real = db_module.fsync

    def fsync(fd: int) -> None:
        n = len(started)
        started.append(n)
        gates[min(n, len(gates) - 1)].wait(5)
        real(fd)

    monkeypatch.setattr(db_module, "fsync", fsync)
    return started


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_sync_asked_during_an_fsync_waits_for_the_next(tmp_path, monkeypatch):
    """Group commit: callers share an fsync only if they asked before it started."""
    db = Database(tmp_path / "db.sqlite3", MIGRATIONS)
    gates = [threading.Event(), threading.Event()]
    started = _slow_fsyncs(monkeypatch, gates)
    first = threading.Thread(target=db.sync_wal)
    first.start()
    _wait_for(lambda: started == [0])
    later = [threading.Thread(target=db.sync_wal) for _ in range(8)]
    for thread in later:
        thread.start()
    time.sleep(0.1)
    gates[0].set()
    first.join(5)
    assert not first.is_alive()
    _wait_for(lambda: len(started) == 2)  # the eight share one more fsync ...
    time.sleep(0.1)
    assert all(thread.is_alive() for thread in later)  # ... and wait for it to finish
    gates[1].set()
    for thread in later:
        thread.join(5)
    assert not any(thread.is_alive() for thread in later) and started == [0, 1]
