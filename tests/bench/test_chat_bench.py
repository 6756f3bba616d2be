"""Secure chat: send -> display latency between two clients on loopback, and what end-to-end
encryption adds over the same path without it (measured in the same run, interleaved).

Run: .venv/bin/python -m pytest -m bench tests/bench/test_chat_bench.py -s
Figures go to docs/performance.md, "Chat".

The reference server runs as deployed: ``python -m server_stub serve``, its own process, over
TLS (the two clients share the benchmark's process and event loop).

E2EE path: alice's ``ChatService.send_text`` (outbox row + local echo + Megolm ciphertext in
one SQLCipher commit, POST) -> relay -> push -> bob's ``ChatService`` takes the pushed event
(Megolm decrypt, replay memory, message + unread in one SQLCipher commit) -> bob's
``message`` signal; a second after a shown push, bob syncs (the token catches up) and sends
alice a delivery receipt (Olm, to-device). Reference: the same relay, TLS, POST and push,
bob's same kind of SQLCipher commit (dedup by event id, message insert, not waiting for the
disk) of a plaintext event, and the same periodic sync and to-device receipt, in plaintext: no
outbox, no encryption, no crypto store. A second reference, **plain+kept**, is the same with
both ends doing what our chat does apart from encryption: the sender keeps the outbox row and
the local echo (message with its search-index entry, the room's last time) in one commit that
does not wait for the disk, before the POST; the receiver keeps, with the message, the room's
unread count and last time and looks up an edit or recall that came first, then checks
do-not-disturb before showing it. E2EE over plaintext is what secure chat costs against a
bare relay client; E2EE over plain+kept is what encryption itself adds.

A second benchmark splits the time into the sender's local work, the relay's push delay and
the receiver's local work, for E2EE and plain+kept: where encryption adds its time.

Messages go round the three paths, the order rotating every round, so all see the same load
on a shared machine; each is sent when the previous one was displayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.net import relay_api
from app.net.events import push_frames
from app.security.keystore import MemoryKeyStore
from app.storage.cache import Cache
from app.storage.chat_state import ChatState
from app.storage.messages import MessageRepository
from app.storage.outbox import Outbox
from server_stub.core.config import ServerSettings
from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS
from tests.bench.relay_bench_support import start_relay
from tests.integration.test_chat import new_client, room_with
from tests.support.clients import new_user_device

pytestmark = pytest.mark.bench

N = 200
WARMUP = 10
TEXT = "K+ 6.1 in bed 12: repeat the ECG, start insulin-dextrose, call me with the result"

# One message: (send -> display ms, send call ms)
Sample = tuple[float, float]
Path_ = Callable[[int], Awaitable[Sample]]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, ms: list[float]) -> dict[str, float]:
    out = {"p50": statistics.median(ms), "p99": pct(ms, 0.99), "mean": statistics.fmean(ms)}
    print(f"{name:>12}: p50 {out['p50']:.2f} ms  p99 {out['p99']:.2f} ms  "
          f"mean {out['mean']:.2f} ms  (n={len(ms)})")
    return out


@dataclass
class _State:
    db: Database


@dataclass
class _App:
    state: _State


@dataclass
class ChildRelay:
    """The reference server as deployed -- ``python -m server_stub serve``, its own process
    -- shaped like tests/support/server.RunningServer for the test helpers (which create
    users through the server's database, as the admin CLI does from its own process)."""

    url: str
    ca_pem: str
    data_dir: Path
    app: _App


@contextlib.contextmanager
def child_relay(data_dir: Path):
    child = start_relay(data_dir)
    settings = ServerSettings(data_dir=data_dir, require_device_approval=False)
    db = Database(settings.db_path, MIGRATIONS)
    try:
        yield ChildRelay(f"https://127.0.0.1:{child.port}", child.ca_pem, data_dir,
                         _App(_State(db)))
    finally:
        child.stop()


class Shown:
    """When each event id was displayed; wait for one."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.count = 0
        self._arrived = asyncio.Event()

    def mark(self, event_id: str) -> None:
        self.count += 1
        self.at.setdefault(event_id, time.perf_counter())
        self._arrived.set()

    async def wait(self, event_id: str) -> float:
        while event_id not in self.at:
            self._arrived.clear()
            if event_id in self.at:
                break
            await asyncio.wait_for(self._arrived.wait(), 10)
        return self.at[event_id]


@contextlib.asynccontextmanager
async def e2ee_path(server, tmp_path):
    alice = await new_client(server, tmp_path, "bench.alice")  # sends only: no loop
    bob = await new_client(server, tmp_path, "bench.bob", background=True,
                           poll_interval_s=600)
    try:
        room_id = await room_with(alice, bob)
        shown = Shown()
        bob.chat.message.connect(
            lambda m: shown.mark(m.event_id) if m.sender == alice.user_id else None)

        async def one(i: int) -> Sample:
            start = time.perf_counter()
            event_id = await alice.chat.send_text(room_id, f"{TEXT} #{i}")
            sent = time.perf_counter()
            return (await shown.wait(event_id) - start) * 1000, (sent - start) * 1000

        yield one
        await asyncio.sleep(1.5)  # bob's deferred sync catches up: still shown once each
        assert shown.count == len(shown.at) == N + WARMUP
        assert len(bob.chat.messages(room_id, limit=10 * N)) == N + WARMUP
    finally:
        await alice.close()
        await bob.close()


@contextlib.asynccontextmanager
async def plain_path(server, tmp_path, *, keep_sent: bool = False):
    """``keep_sent``: both ends also do what our chat does apart from encryption. The
    sender: the outbox row and the local echo (message, search index, room's last time) in
    one commit that does not wait for the disk, before the POST. The receiver: with the
    message, the room's unread count and last time and the look-up of an edit or recall
    that came first, in that commit, then the do-not-disturb check before showing it."""
    tag = "kept" if keep_sent else "plain"
    _, alice = await new_user_device(server, f"bench.alice.{tag}")
    _, bob = await new_user_device(server, f"bench.bob.{tag}")
    cache = Cache.open(tmp_path / f"{tag}-cache", MemoryKeyStore("b", "d"))
    repo, state = MessageRepository(cache), ChatState(cache)
    sent_cache = Cache.open(tmp_path / f"{tag}-sent-cache", MemoryKeyStore("a", "d"))
    outbox, sent_repo, sent_state = Outbox(sent_cache), MessageRepository(sent_cache), \
        ChatState(sent_cache)
    receiver = None
    try:
        room_id = await relay_api.create_room(alice.transport)
        await relay_api.invite(alice.transport, room_id, username=bob.username)
        await relay_api.join(bob.transport, room_id)
        for c in (cache, sent_cache):
            with c.write():
                pass  # the session's first write (durable, as in the chat's) is behind us
        shown = Shown()
        token = (await relay_api.sync(bob.transport, None)).next_token
        later: list[asyncio.Task] = []  # every catch-up started (the last one may be due)
        due = False

        async def catch_up(event_id: str) -> None:
            # As the chat service a second after a shown push: sync (drop what is known),
            # then a delivery receipt to the sender's device (here in plaintext).
            nonlocal token, due
            await asyncio.sleep(1.0)
            due = False
            batch = await relay_api.sync(bob.transport, token)
            new = [e for e in batch.events
                   if e.type == "sc.plain" and repo.get(e.event_id) is None]
            with cache.write(durable=False):
                repo.insert_many([CachedMessage(e.room_id, e.event_id, e.sender, e.origin_ms,
                                                Phi(e.content["body"])) for e in new])
                token = batch.next_token
            await relay_api.send_to_device(
                bob.transport, f"rcpt_{event_id}", "sc.receipt",
                [(alice.user_id, alice.device_id, {"room_id": room_id, "up_to": event_id})])

        async def receive() -> None:
            nonlocal due
            # As the chat service's receiving path: the pushed event itself is parsed,
            # checked (dedup by event id) and stored in one commit that does not wait for
            # the disk, then shown.
            async for frame in push_frames(bob.transport):
                if not isinstance(frame, dict) or frame.get("type") != "event":
                    continue
                e = relay_api.parse_event(frame["event"])
                if e.type != "sc.plain" or repo.get(e.event_id) is not None:
                    continue
                with cache.write(durable=False):
                    new = repo.insert(CachedMessage(e.room_id, e.event_id, e.sender,
                                                    e.origin_ms, Phi(e.content["body"])))
                    if keep_sent and new:
                        repo.meta(e.event_id, e.sender)
                        state.bump_unread(e.room_id, e.origin_ms, unread=True)
                if keep_sent:
                    state.get("presence")  # do not disturb? (a message notifies or not)
                shown.mark(e.event_id)
                if not due:
                    due = True
                    later.append(asyncio.create_task(catch_up(e.event_id)))

        receiver = asyncio.create_task(receive())
        await asyncio.sleep(0.5)  # push socket up

        async def one(i: int) -> Sample:
            event_id = f"{tag}_{i:06d}"
            start = time.perf_counter()
            body = f"{TEXT} #{i}"
            if keep_sent:
                now = int(time.time() * 1000)
                with sent_cache.write(durable=False):
                    outbox.settle()
                    seq = outbox.queue(room_id, event_id, Phi(body))
                    sent_repo.insert(CachedMessage(room_id, event_id, alice.user_id, now,
                                                   Phi(body)))
                    sent_state.bump_unread(room_id, now, unread=False)
            await relay_api.post_event(alice.transport, room_id, event_id, "sc.plain",
                                       {"msgtype": "text", "body": body})
            if keep_sent:
                outbox.accepted(seq)
            sent = time.perf_counter()
            return (await shown.wait(event_id) - start) * 1000, (sent - start) * 1000

        yield one
    finally:
        for task in [receiver, *later]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        cache.close()
        sent_cache.close()
        await alice.aclose()
        await bob.aclose()


async def interleaved(*paths: Path_) -> list[list[Sample]]:
    """One message on each path in turn, the order rotating every round."""
    await asyncio.sleep(0.5)  # bob's push sockets up
    outs: list[list[Sample]] = [[] for _ in paths]
    for i in range(N + WARMUP):
        for k in range(len(paths)):
            j = (i + k) % len(paths)
            sample = await paths[j](i)
            if i >= WARMUP:
                outs[j].append(sample)
    return outs


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


def _load() -> str:
    path = Path("/proc/loadavg")
    return " / ".join(path.read_text().split()[:3]) if path.exists() else "?"


async def test_send_to_display_latency_and_e2ee_overhead(tmp_path):
    print(f"\n   load before: {_load()}")
    with child_relay(tmp_path / "server") as server:
        async with (e2ee_path(server, tmp_path) as e2ee,
                    plain_path(server, tmp_path) as plain,
                    plain_path(server, tmp_path, keep_sent=True) as kept):
            samples_e, samples_p, samples_k = await interleaved(e2ee, plain, kept)
    print(f"   load after:  {_load()}")
    summary("e2ee send", [s for _, s in samples_e])  # compose -> encrypted, stored, posted
    summary("plain send", [s for _, s in samples_p])  # the POST alone
    summary("kept send", [s for _, s in samples_k])  # outbox + echo commit, POST
    e2ee = summary("e2ee", [d for d, _ in samples_e])
    plain = summary("plaintext", [d for d, _ in samples_p])
    kept_ = summary("plain+kept", [d for d, _ in samples_k])
    summary("crypto", crypto_only_ms())
    for name, ref, samples in (("plaintext", plain, samples_p), ("plain+kept", kept_,
                                                                  samples_k)):
        paired = [e[0] - p[0] for e, p in zip(samples_e, samples, strict=True)]
        print(f"  added over {name}: p50 {e2ee['p50'] - ref['p50']:+.2f} ms  "
              f"p99 {e2ee['p99'] - ref['p99']:+.2f} ms  "
              f"(median of paired differences {statistics.median(paired):+.2f} ms)  "
              f"ratio p50 {e2ee['p50'] / ref['p50']:.2f}x")
    # A chat message feels instant under ~100 ms; on loopback we want far less.
    assert e2ee["p99"] < 250, e2ee


class Stamps:
    """When each event was posted, answered, pushed to the receiver and shown: the
    send -> display time split into the sender's local work, the relay's push delay and
    the receiver's local work (timestamps taken at the module boundaries, nothing else
    changed)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import app.services.chat as chat_module

        self.at: dict[str, dict[str, float]] = {}
        post = relay_api.post_event

        async def stamped_post(transport, room_id, event_id, *args, **kwargs):
            self._stamp(event_id, "post")
            return await post(transport, room_id, event_id, *args, **kwargs)

        def stamped_frames(frames):
            async def each(transport):
                async for frame in frames(transport):
                    if isinstance(frame, dict) and frame.get("type") == "event":
                        self._stamp(str(frame["event"].get("event_id")), "pushed")
                    yield frame
            return each

        mark = Shown.mark

        def stamped_mark(shown: Shown, event_id: str) -> None:
            self._stamp(event_id, "shown")
            mark(shown, event_id)

        monkeypatch.setattr(relay_api, "post_event", stamped_post)
        monkeypatch.setattr(chat_module, "push_frames", stamped_frames(chat_module.push_frames))
        monkeypatch.setattr(sys.modules[__name__], "push_frames", stamped_frames(push_frames))
        monkeypatch.setattr(Shown, "mark", stamped_mark)

    def _stamp(self, event_id: str, what: str) -> None:
        self.at.setdefault(event_id, {}).setdefault(what, time.perf_counter())

    def phases(self, started: float, event_id: str) -> tuple[float, float, float]:
        at = self.at[event_id]
        return ((at["post"] - started) * 1000, (at["pushed"] - at["post"]) * 1000,
                (at["shown"] - at["pushed"]) * 1000)


async def test_where_the_e2ee_path_spends_its_time(tmp_path, monkeypatch):
    """Sender local (compose -> POST), push delay (POST -> frame at the receiver), receiver
    local (frame -> shown), median per phase for E2EE and plain+kept, interleaved."""
    stamps = Stamps(monkeypatch)
    phases: dict[str, list[tuple[float, float, float]]] = {"e2ee": [], "plain+kept": []}
    with child_relay(tmp_path / "server") as server:
        async with (e2ee_path(server, tmp_path) as e2ee,
                    plain_path(server, tmp_path, keep_sent=True) as kept):
            await asyncio.sleep(0.5)
            for i in range(N + WARMUP):
                order = [("e2ee", e2ee), ("plain+kept", kept)]
                for name, path in order if i % 2 else order[::-1]:
                    known = set(stamps.at)
                    started = time.perf_counter()
                    await path(i)
                    posted = [e for e in stamps.at if e not in known and "post" in stamps.at[e]]
                    if i >= WARMUP:
                        phases[name].append(stamps.phases(started, posted[0]))
    print()
    for k, label in enumerate(("sender local", "push delay", "receiver local")):
        e = statistics.median(p[k] for p in phases["e2ee"])
        r = statistics.median(p[k] for p in phases["plain+kept"])
        print(f"  {label:>14}: e2ee {e:6.3f} ms  plain+kept {r:6.3f} ms  added {e - r:+6.3f} ms")
