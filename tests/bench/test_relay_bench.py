"""Relay benchmark: fan-out, throughput and latency of the real server, against a bare
``websockets`` broadcast server measured in the same run (docs/performance.md, "Relay").

Both servers run as child processes (so the benchmark's clients do not share their GIL),
over TLS with the same certificate, each holding 1,000 idle WebSocket clients besides the
50 receiving devices of one room. Both senders write each event to a WebSocket (the relay's
is authenticated at the upgrade by the request proof, and every event is checked, stored
and sequenced); the relay is also measured fed by HTTPS POSTs (a request proof per event).

Printed: one-message fan-out time to all 50; throughput (messages/s into the room, each
delivered 50 times) and its ratio to the reference; server CPU per message and its ratio;
end-to-end latency percentiles at a fixed 200 messages/s. Only correctness is asserted
(every message reaches every member exactly once, idle clients get nothing): figures from a
shared machine are reported, not failed on.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.bench.relay_bench_support import (
    ChildServer,
    Receiver,
    Seed,
    client_ssl,
    connect_reference_ws,
    connect_relay_ws,
    event_ids,
    open_many,
    percentile,
    raise_fd_limit,
    receive_into,
    relay_transport,
    seed,
    start_reference,
    start_relay,
)

pytestmark = pytest.mark.bench

MEMBERS = 50
IDLE = 1000
THROUGHPUT_MESSAGES = 2000
WINDOW = 16  # sends in flight from the sender
HTTP_MESSAGES = 500
LATENCY_RATE = 200  # messages per second
LATENCY_SECONDS = 8
FANOUT_SAMPLES = 20
# A Megolm envelope around ~256 bytes of ciphertext: a short chat message.
CIPHERTEXT = base64.b64encode(os.urandom(256)).decode().rstrip("=")

Send = Callable[[str], Awaitable[None]]


@dataclass
class Figures:
    connect_s: float
    fanout_ms: list[float]
    throughput: float
    server_cpu_us: float
    client_cpu_share: float
    latency_ms: list[float]
    missing: int
    idle_events: int


def envelope() -> dict:
    return {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": CIPHERTEXT, "session_id": "bench"}


async def _wait_all(receivers: list[Receiver], ids: list[str], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    for r in receivers:
        while not all(i in r.arrivals for i in ids):
            if time.perf_counter() > deadline:
                return
            await asyncio.sleep(0.002)


async def _fanout(send: Send, receivers: list[Receiver], tag: str) -> list[float]:
    out = []
    for k in range(FANOUT_SAMPLES):
        eid = f"bench-{tag}-fan-{k:05d}"
        t0 = time.perf_counter()
        await send(eid)
        await _wait_all(receivers, [eid], 10)
        out.append((max(r.arrivals.get(eid, float("inf")) for r in receivers) - t0) * 1000)
        await asyncio.sleep(0.02)
    return out


async def _throughput(send: Send, receivers: list[Receiver], server: ChildServer, tag: str,
                      count: int = THROUGHPUT_MESSAGES) -> tuple[float, float, float]:
    ids = [f"bench-{tag}-tp-{k:06d}" for k in range(count)]
    gate = asyncio.Semaphore(WINDOW)

    async def one(eid: str) -> None:
        async with gate:
            await send(eid)

    cpu0, proc0 = server.cpu_seconds(), time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(one(eid) for eid in ids))
    await _wait_all(receivers, ids, 60)
    t_end = max(max(r.arrivals.get(i, float("inf")) for i in ids) for r in receivers)
    wall = time.perf_counter() - t0
    server_cpu = server.cpu_seconds() - cpu0
    client_share = (time.process_time() - proc0) / wall
    return count / (t_end - t0), server_cpu / count * 1e6, client_share


async def _latency(send: Send, receivers: list[Receiver], tag: str) -> tuple[list[float], int]:
    count = LATENCY_RATE * LATENCY_SECONDS
    ids = [f"bench-{tag}-lat-{k:06d}" for k in range(count)]
    scheduled: dict[str, float] = {}
    tasks = []
    t0 = time.perf_counter() + 0.05
    for k, eid in enumerate(ids):
        # Open loop: latency counts from the scheduled time, so a stall cannot hide itself.
        target = t0 + k / LATENCY_RATE
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        scheduled[eid] = target
        tasks.append(asyncio.create_task(send(eid)))
    await asyncio.gather(*tasks)
    await _wait_all(receivers, ids, 30)
    samples, missing = [], 0
    for r in receivers:
        for eid in ids:
            if eid in r.arrivals:
                samples.append((r.arrivals[eid] - scheduled[eid]) * 1000)
            else:
                missing += 1
    return samples, missing


async def _measure(send: Send, receivers: list[Receiver], server: ChildServer, tag: str,
                   connect_s: float, idle_counts: list[int]) -> Figures:
    # This process holds ~200,000 objects once its 1,051 sockets are open, and its own full
    # collections took 80-210 ms -- a pause in receiving that the latency figures charged to
    # whichever server was being measured at that moment. Frozen, the objects that exist
    # now are left out of collections until the measurement ends (the same for both).
    gc.collect()
    gc.freeze()
    try:
        return await _measure_frozen(send, receivers, server, tag, connect_s, idle_counts)
    finally:
        gc.unfreeze()


async def _measure_frozen(send: Send, receivers: list[Receiver], server: ChildServer, tag: str,
                          connect_s: float, idle_counts: list[int]) -> Figures:
    for k in range(50):  # warm-up: code paths, connections, caches
        await send(f"bench-{tag}-warm-{k:04d}")
    fanout = await _fanout(send, receivers, tag)
    print(f"  [{tag}] fan-out median {percentile(fanout, 50):.2f} ms", flush=True)
    throughput, cpu_us, client_share = await _throughput(send, receivers, server, tag)
    print(f"  [{tag}] throughput {throughput:.0f} msg/s, server CPU {cpu_us:.0f} us/msg, "
          f"client CPU {client_share:.0%}", flush=True)
    latency, missing = await _latency(send, receivers, tag)
    expected = 50 + FANOUT_SAMPLES + THROUGHPUT_MESSAGES + LATENCY_RATE * LATENCY_SECONDS
    for r in receivers:
        assert len(r.arrivals) == r.count == expected, "a member missed or duplicated messages"
    return Figures(connect_s, fanout, throughput, cpu_us, client_share, latency, missing,
                   sum(idle_counts))


async def _idle_reader(ws, counts: list[int], index: int, is_event) -> None:
    try:
        async for frame in ws:
            if is_event(frame):
                counts[index] += 1
    except Exception:
        pass  # a closed idle socket ends its reader, nothing more


@dataclass
class HttpFigures:
    fanout_ms: list[float]
    throughput: float
    server_cpu_us: float


async def _http_ingest(server: ChildServer, seeded: Seed, receivers: list[Receiver]
                       ) -> HttpFigures:
    """The same room fed by HTTPS POSTs (one request, proof and transaction per event)."""
    sender = relay_transport(server, seeded.sender)
    path = f"/v1/rooms/{seeded.room_id}/events"

    async def send(eid: str) -> None:
        await sender.request("POST", path, json_body={
            "event_id": eid, "type": "m.room.encrypted", "content": envelope()})

    try:
        for k in range(20):
            await send(f"bench-http-warm-{k:04d}")
        fanout = await _fanout(send, receivers, "http")
        throughput, cpu_us, _ = await _throughput(send, receivers, server, "http",
                                                  HTTP_MESSAGES)
    finally:
        await sender.aclose()
    return HttpFigures(fanout, throughput, cpu_us)


async def run_relay(data_dir, seeded: Seed) -> tuple[Figures, HttpFigures]:
    server = start_relay(data_dir)
    ctx = client_ssl(server.ca_pem)
    sockets: list = []
    try:
        t0 = time.perf_counter()
        idle = await open_many(IDLE, lambda i: connect_relay_ws(server, seeded.idle[i], ctx))
        members = await open_many(MEMBERS,
                                  lambda i: connect_relay_ws(server, seeded.members[i], ctx))
        connect_s = time.perf_counter() - t0
        sender_ws = await connect_relay_ws(server, seeded.sender, ctx)
        sockets = [*idle, *members, sender_ws]
        idle_counts = [0] * IDLE
        readers = [asyncio.create_task(_idle_reader(ws, idle_counts, i,
                                                    lambda f: bool(event_ids(f))))
                   for i, ws in enumerate(idle)]
        receivers = [Receiver(ws) for ws in members]
        readers += [asyncio.create_task(receive_into(r)) for r in receivers]
        acks = {"sent": 0, "error": 0}

        async def read_acks() -> None:
            async for frame in sender_ws:
                for line in frame.split("\n"):
                    kind = json.loads(line).get("type")
                    if kind in acks:
                        acks[kind] += 1

        readers.append(asyncio.create_task(read_acks()))

        async def send(eid: str) -> None:
            await sender_ws.send(json.dumps({
                "type": "send", "room_id": seeded.room_id, "event_id": eid,
                "event_type": "m.room.encrypted", "content": envelope()},
                separators=(",", ":")))

        figures = await _measure(send, receivers, server, "relay", connect_s, idle_counts)
        assert acks["error"] == 0
        http = await _http_ingest(server, seeded, receivers)
        return figures, http
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        server.stop()


async def run_reference(data_dir, seeded: Seed) -> Figures:
    server = start_reference(data_dir)
    ctx = client_ssl(server.ca_pem)
    sockets: list = []
    try:
        t0 = time.perf_counter()
        idle = await open_many(IDLE, lambda i: connect_reference_ws(server, "idle", ctx))
        members = await open_many(MEMBERS, lambda i: connect_reference_ws(server, "member", ctx))
        connect_s = time.perf_counter() - t0
        sender = await connect_reference_ws(server, "sender", ctx)
        sockets = [*idle, *members, sender]
        idle_counts = [0] * IDLE
        readers = [asyncio.create_task(_idle_reader(ws, idle_counts, i, lambda f: True))
                   for i, ws in enumerate(idle)]
        receivers = [Receiver(ws) for ws in members]
        readers += [asyncio.create_task(receive_into(r)) for r in receivers]
        pos = iter(range(1, 10**9))

        async def send(eid: str) -> None:
            # The same frame shape and size the relay pushes.
            await sender.send(json.dumps({"type": "event", "event": {
                "pos": next(pos), "room_id": seeded.room_id, "event_id": eid,
                "type": "m.room.encrypted", "sender": seeded.sender.user_id,
                "sender_device": seeded.sender.identity.device_id,
                "origin_ms": int(time.time() * 1000), "content": envelope()}},
                separators=(",", ":")))

        return await _measure(send, receivers, server, "ref", connect_s, idle_counts)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        server.stop()


def _report(name: str, f: Figures) -> None:
    print(f"  {name:<10} connect {MEMBERS + IDLE} sockets: {f.connect_s:6.2f} s | "
          f"fan-out to {MEMBERS}: median {percentile(f.fanout_ms, 50):6.2f} ms, "
          f"max {max(f.fanout_ms):6.2f} ms")
    print(f"  {'':<10} throughput {f.throughput:8.0f} msg/s ({f.throughput * MEMBERS:8.0f} "
          f"deliveries/s) | server CPU {f.server_cpu_us:7.0f} us/msg | "
          f"client CPU {f.client_cpu_share:4.0%}")
    print(f"  {'':<10} latency @{LATENCY_RATE}/s: p50 {percentile(f.latency_ms, 50):6.2f} ms, "
          f"p99 {percentile(f.latency_ms, 99):6.2f} ms, max {max(f.latency_ms):7.2f} ms "
          f"({len(f.latency_ms)} deliveries, {f.missing} missing)")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def test_relay_against_bare_websockets(tmp_path):
    raise_fd_limit(4 * (MEMBERS + IDLE) + 512)
    load_before = _load()
    started = time.perf_counter()
    seeded = seed(tmp_path / "server", members=MEMBERS, idle=IDLE)
    seed_s = time.perf_counter() - started
    relay, http = await run_relay(tmp_path / "server", seeded)
    reference = await run_reference(tmp_path / "server", seeded)
    print(f"\nRelay benchmark: {MEMBERS} members + {IDLE} idle sockets, "
          f"{os.cpu_count()} CPUs, seed {seed_s:.1f} s; load average (1/5/15 min) "
          f"{load_before} before, {_load()} after (a shared machine: read the reference's "
          f"p99 as the measure of how quiet it was)")
    _report("relay", relay)
    _report("reference", reference)
    cpu_ratio = relay.server_cpu_us / reference.server_cpu_us
    print(f"  ratios: throughput {relay.throughput / reference.throughput:.2f}x of bare "
          f"websockets; server CPU per message {cpu_ratio:.1f}x;"
          f" p99 {percentile(relay.latency_ms, 99):.2f} ms vs "
          f"{percentile(reference.latency_ms, 99):.2f} ms")
    print(f"  relay fed by HTTPS POST: fan-out median {percentile(http.fanout_ms, 50):.2f} ms; "
          f"throughput {http.throughput:.0f} msg/s ({http.throughput / reference.throughput:.2f}x)"
          f"; server CPU {http.server_cpu_us:.0f} us/msg")
    print(f"  total {time.perf_counter() - started:.1f} s")
    assert relay.missing == 0 and reference.missing == 0
    assert relay.idle_events == 0
