"""Secure chat: send -> display latency between two clients on loopback, and what end-to-end
encryption adds over the same path without it (measured in the same run).

Run: .venv/bin/python -m pytest -m bench tests/bench/test_chat_bench.py -s
Figures go to docs/performance.md, "Chat".

E2EE path: alice's ``ChatService.send_text`` (outbox + local echo in SQLCipher, Megolm
encrypt, POST) -> relay -> push -> bob's sync loop (``/v1/sync``, Megolm decrypt, replay
memory, message + unread in SQLCipher, in one transaction) -> bob's ``message`` signal.
Reference: the same relay, TLS, push and sync, and the same SQLCipher message insert on
bob's side, with a plaintext event and no outbox, no encryption, no crypto store.
Each message is sent when the previous one was displayed (latency, not throughput).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

import pytest

from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.net import relay_api
from app.net.events import push_frames
from app.security.keystore import MemoryKeyStore
from app.storage.cache import Cache
from app.storage.messages import MessageRepository
from tests.integration.test_chat import new_client, room_with
from tests.support.clients import new_user_device

pytestmark = pytest.mark.bench

N = 200
WARMUP = 10
TEXT = "K+ 6.1 in bed 12: repeat the ECG, start insulin-dextrose, call me with the result"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, ms: list[float]) -> dict[str, float]:
    out = {"p50": statistics.median(ms), "p99": pct(ms, 0.99), "mean": statistics.fmean(ms)}
    print(f"{name:>10}: p50 {out['p50']:.2f} ms  p99 {out['p99']:.2f} ms  "
          f"mean {out['mean']:.2f} ms  (n={len(ms)})")
    return out


async def e2ee_latencies(server, tmp_path) -> list[float]:
    alice = await new_client(server, tmp_path, "bench.alice")  # sends only: no loop
    bob = await new_client(server, tmp_path, "bench.bob", background=True,
                           poll_interval_s=600)
    try:
        room_id = await room_with(alice, bob)
        shown: dict[str, float] = {}
        arrived = asyncio.Event()

        def on_message(message) -> None:
            if message.sender == alice.user_id:
                shown[message.event_id] = time.perf_counter()
                arrived.set()

        bob.chat.message.connect(on_message)
        await asyncio.sleep(0.5)  # push socket up
        latencies, sender = [], []
        for i in range(N + WARMUP):
            arrived.clear()
            start = time.perf_counter()
            event_id = await alice.chat.send_text(room_id, f"{TEXT} #{i}")
            if i >= WARMUP:
                sender.append((time.perf_counter() - start) * 1000)
            while event_id not in shown:
                await asyncio.wait_for(arrived.wait(), 10)
                arrived.clear()
            if i >= WARMUP:
                latencies.append((shown[event_id] - start) * 1000)
        assert len(bob.chat.messages(room_id, limit=N + WARMUP)) == N + WARMUP
        summary("e2ee send", sender)  # compose -> encrypted, posted, outbox row removed
        return latencies
    finally:
        await alice.close()
        await bob.close()


async def plain_latencies(server, tmp_path) -> list[float]:
    _, alice = await new_user_device(server, "bench.alice.plain")
    _, bob = await new_user_device(server, "bench.bob.plain")
    cache = Cache.open(tmp_path / "plain-cache", MemoryKeyStore("b", "d"))
    repo = MessageRepository(cache)
    try:
        room_id = await relay_api.create_room(alice.transport)
        await relay_api.invite(alice.transport, room_id, username=bob.username)
        await relay_api.join(bob.transport, room_id)
        token = (await relay_api.sync(bob.transport, None)).next_token
        shown: dict[str, float] = {}
        arrived = asyncio.Event()

        async def receive() -> None:
            nonlocal token
            async for frame in push_frames(bob.transport):
                if not isinstance(frame, dict) or frame.get("type") != "event":
                    continue
                batch = await relay_api.sync(bob.transport, token)
                token = batch.next_token
                new = [CachedMessage(e.room_id, e.event_id, e.sender, e.origin_ms,
                                     Phi(e.content["body"]))
                       for e in batch.events if e.type == "sc.plain"]
                with cache.write():
                    repo.insert_many(new)
                now = time.perf_counter()
                for m in new:
                    shown[m.event_id] = now
                arrived.set()

        receiver = asyncio.create_task(receive())
        await asyncio.sleep(0.5)
        latencies, sender = [], []
        try:
            for i in range(N + WARMUP):
                arrived.clear()
                event_id = f"plain_{i:06d}"
                start = time.perf_counter()
                await relay_api.post_event(alice.transport, room_id, event_id, "sc.plain",
                                           {"msgtype": "text", "body": f"{TEXT} #{i}"})
                if i >= WARMUP:
                    sender.append((time.perf_counter() - start) * 1000)
                while event_id not in shown:
                    await asyncio.wait_for(arrived.wait(), 10)
                    arrived.clear()
                if i >= WARMUP:
                    latencies.append((shown[event_id] - start) * 1000)
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
        summary("plain send", sender)  # the POST alone
        return latencies
    finally:
        cache.close()
        await alice.aclose()
        await bob.aclose()


def crypto_only_ms() -> list[float]:
    """Share check + Megolm encrypt + decrypt (replay memory included) per message, on two
    machines with in-memory stores: what vodozemac and the machine cost without I/O."""
    from tests.unit.crypto.world import Relay, make_peer

    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    relay.say(alice, "!r", ["alice", "bob"], "warm-up")
    relay.deliver(bob)
    out = []
    for i in range(N):
        start = time.perf_counter()
        alice.machine.share_room_key("!r", ["alice", "bob"])
        content = alice.machine.encrypt_room_event("!r", ["alice", "bob"], "sc.message",
                                                   {"msgtype": "text", "body": f"{TEXT} #{i}"})
        bob.machine.decrypt_room_event("!r", f"$e{i}", content)
        out.append((time.perf_counter() - start) * 1000)
    return out


async def test_send_to_display_latency_and_e2ee_overhead(open_server, tmp_path):
    e2ee = summary("e2ee", await e2ee_latencies(open_server, tmp_path))
    plain = summary("plaintext", await plain_latencies(open_server, tmp_path))
    summary("crypto", crypto_only_ms())
    ratio50, ratio99 = e2ee["p50"] / plain["p50"], e2ee["p99"] / plain["p99"]
    print(f"     ratio: p50 {ratio50:.2f}x  p99 {ratio99:.2f}x  "
          f"(added p50 {e2ee['p50'] - plain['p50']:.2f} ms)")
    # A chat message feels instant under ~100 ms; on loopback we want far less.
    assert e2ee["p99"] < 250, e2ee
