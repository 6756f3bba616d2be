"""The relay's background work, started with the app (router lifespan):

* the sweep: records lapsed grants, purges ciphertext past retention -- every
  ``relay_sweep_interval_s``;
* the watch: pushes wipe/logout orders and device-list changes to connected devices,
  closes connections whose device was revoked or whose session ended, drops signaling
  messages held past their time-to-live -- every ``relay_watch_interval_s`` (the auth
  side changes those rows; polling keeps the two halves decoupled);
* the checkpoint: copies SQLite's write-ahead log back into the database -- every
  ``wal_checkpoint_interval_s``, so that no commit does it (and waits for the disk);
* in the server process, the garbage collector's full collection, run between pushes
  (``core/gc_policy.py``), not wherever CPython's thresholds would put it.

A watch round costs one small query unless something it reacts to changed: triggers bump a
counter on every such write, from this process or another (``core/schema_watch.py``). The
full scan of every connected socket runs only when the counter moved, a socket joined, or a
connected session reached its absolute end (which no write announces). With a thousand
sockets that scan takes milliseconds of CPU under the GIL; run every round, it set the
relay's p99 latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from server_stub.api.routes.relay_support import (
    blob_files,
    close_loop_connection,
    hub_of,
    record_lapses,
)
from server_stub.core import gc_policy
from server_stub.core.db import Database
from server_stub.core.pubsub import Subscriber
from server_stub.core.security import now_ms
from server_stub.crud import devices as devices_crud
from server_stub.crud import retention
from server_stub.crud import sessions as sessions_crud
from server_stub.crud import users as users_crud
from server_stub.crud import watch as watch_crud

log = logging.getLogger("server_stub.relay")


def run_retention(app: Any, *, now: int | None = None) -> retention.PurgeReport:
    """One sweep (also what tests call, with a chosen ``now``)."""
    settings = app.state.settings
    now = now_ms() if now is None else now
    hub = hub_of(app)
    record_lapses(app.state.db, hub, now=now)
    return retention.purge(app.state.db, blob_files(app), retention_days=settings.retention_days,
                           now_ms=now)


READER_TIMEOUT_S = 0.05  # the loop thread's change check never waits longer than this


@dataclass
class WatchState:
    versions: dict[str, int] | None = None
    orders_sent: dict[str, str] = field(default_factory=dict)  # device -> order_id
    # What the last full scan started from: a round that finds them all unchanged skips it.
    counter: int | None = None
    generation: int = -1  # the hub's subscribe count
    due_ms: int | None = None  # the earliest absolute end of a connected session
    scans: int = 0
    reader: sqlite3.Connection | None = None  # the loop thread's, for the change check

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None


@dataclass
class WatchResult:
    orders: list[tuple[Subscriber, str, str]]
    closes: list[tuple[Subscriber, int, str]]
    versions: dict[str, int]
    device_list_pushes: list[tuple[list[str], str]]
    counter: int = -1
    due_ms: int | None = None


def _scan(db: Database, subs: list[Subscriber], previous: dict[str, int] | None) -> WatchResult:
    conn = db.connection()
    # Read first: a change committed during the scan moves the counter past this value,
    # so the next round scans again.
    counter = watch_crud.change_counter(conn)
    now = now_ms()
    orders, closes = [], []
    # A handful of set-based queries whatever the number of sockets: with a thousand
    # connections, three queries per socket every round held the GIL long enough to show
    # in the relay's p99 latency.
    device_ids = {sub.device_id for sub in subs}
    pending = devices_crud.pending_orders(conn, device_ids)
    usable = devices_crud.usable_devices(conn, device_ids)
    session_ids = {sub.session_id for sub in subs if sub.session_id}
    ended = sessions_crud.ended_sessions(conn, session_ids, now)
    due_ms = sessions_crud.next_session_end(conn, session_ids, now)
    for sub in subs:
        if sub.device_id in pending:
            order, order_id = pending[sub.device_id]
            orders.append((sub, order, order_id))
            continue  # the device must see its order before anything closes it
        if sub.device_id not in usable:  # revoked, wiped or gone
            closes.append((sub, 4403, "device_revoked"))
            continue
        if sub.session_id in ended:
            closes.append((sub, 4401, "unauthenticated"))
    watched = {sub.user_id for sub in subs}
    watched.update(r[0] for r in conn.execute(
        "SELECT DISTINCT user_id FROM room_members WHERE state IN ('invited', 'joined')"))
    versions = users_crud.device_list_versions(conn, watched)
    pushes = []
    if previous is not None:
        for user_id, version in versions.items():
            if previous.get(user_id, version) == version:
                continue
            targets = {user_id}
            targets.update(r[0] for r in conn.execute(
                "SELECT DISTINCT m2.user_id FROM room_members m1 JOIN room_members m2"
                " ON m1.room_id = m2.room_id WHERE m1.user_id = ?"
                " AND m1.state IN ('invited', 'joined') AND m2.state = 'joined'", (user_id,)))
            text = json.dumps({"type": "device_list", "user_id": user_id, "version": version})
            pushes.append((sorted(targets), text))
    return WatchResult(orders, closes, versions, pushes, counter, due_ms)


def _unchanged(db: Database, hub: Any, state: WatchState) -> bool:
    """True if nothing the scan reacts to can have changed since the last one: one query
    on a one-row table, on the loop thread (no thread hand-over). Any doubt means scan."""
    if state.counter is None or hub.generation != state.generation:
        return False
    if state.due_ms is not None and now_ms() >= state.due_ms:
        return False
    try:
        if state.reader is None:
            state.reader = watch_crud.open_reader(db.path, timeout_s=READER_TIMEOUT_S)
        return watch_crud.change_counter(state.reader) == state.counter
    except sqlite3.Error:  # busy or broken: the scan in the thread pool waits as it must
        state.close()
        return False


async def watch_once(app: Any, state: WatchState) -> None:
    hub = hub_of(app)
    hub.expire_held()  # signaling messages nobody came for
    if _unchanged(app.state.db, hub, state):
        return
    generation = hub.generation
    subs = hub.subscribers()
    if not subs:
        return
    result = await run_in_threadpool(_scan, app.state.db, subs, state.versions)
    state.scans += 1
    state.counter, state.generation, state.due_ms = result.counter, generation, result.due_ms
    state.versions = result.versions
    for sub, order, order_id in result.orders:
        if state.orders_sent.get(sub.device_id) != order_id:
            state.orders_sent[sub.device_id] = order_id
            hub.send_to_device(sub.device_id, order_push(order, order_id))
    for sub, code, reason in result.closes:
        hub.disconnect_device(sub.device_id, code, reason)
    for targets, text in result.device_list_pushes:
        hub.send_to_users(targets, text)


def order_push(order: str, order_id: str) -> str:
    return json.dumps({"type": "order", "order": order, "order_id": order_id})


async def _every(seconds: float, name: str, fn) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await fn()
        except Exception as exc:  # keep the task alive; the next round retries
            log.warning("relay %s failed: %s", name, exc.__class__.__name__)


@contextlib.asynccontextmanager
async def relay_lifespan(app: Any) -> AsyncIterator[None]:
    hub = hub_of(app)
    hub.bind(asyncio.get_running_loop())
    settings = app.state.settings
    state = WatchState()

    async def sweep() -> None:
        await run_in_threadpool(run_retention, app)

    async def checkpoint() -> None:
        await run_in_threadpool(app.state.db.checkpoint)

    loop = asyncio.get_running_loop()
    steward = gc_policy.GcSteward(loop.time())

    async def collect() -> None:
        if steward.tick(loop.time(), hub.stats.delivered):
            gc.collect()  # on the loop thread, while nothing is being pushed

    tasks = [
        asyncio.create_task(_every(settings.relay_sweep_interval_s, "sweep", sweep)),
        asyncio.create_task(_every(settings.relay_watch_interval_s, "watch",
                                   lambda: watch_once(app, state))),
        asyncio.create_task(_every(settings.wal_checkpoint_interval_s, "checkpoint",
                                   checkpoint)),
    ]
    if gc_policy.managed():
        tasks.append(asyncio.create_task(_every(1.0, "collection", collect)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        state.close()
        close_loop_connection(app)
        for sub in hub.subscribers():
            hub.disconnect_device(sub.device_id, 1001, "server_shutdown")
