"""The relay's background work, started with the app (router lifespan):

* the sweep: records lapsed grants, purges ciphertext past retention -- every
  ``relay_sweep_interval_s``;
* the watch: pushes wipe/logout orders and device-list changes to connected devices,
  closes connections whose device was revoked or whose session ended, drops signaling
  messages held past their time-to-live -- every ``relay_watch_interval_s`` (the auth
  side changes those rows; polling keeps the two halves decoupled).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from server_stub.api.routes.relay_support import blob_files, hub_of, record_lapses
from server_stub.core.db import Database
from server_stub.core.pubsub import Subscriber
from server_stub.core.security import now_ms
from server_stub.crud import devices as devices_crud
from server_stub.crud import retention
from server_stub.crud import sessions as sessions_crud
from server_stub.crud import users as users_crud

log = logging.getLogger("server_stub.relay")


def run_retention(app: Any, *, now: int | None = None) -> retention.PurgeReport:
    """One sweep (also what tests call, with a chosen ``now``)."""
    settings = app.state.settings
    now = now_ms() if now is None else now
    hub = hub_of(app)
    record_lapses(app.state.db, hub, now=now)
    return retention.purge(app.state.db, blob_files(app), retention_days=settings.retention_days,
                           now_ms=now)


@dataclass
class WatchState:
    versions: dict[str, int] | None = None
    orders_sent: dict[str, str] = field(default_factory=dict)  # device -> order_id


@dataclass
class WatchResult:
    orders: list[tuple[Subscriber, str, str]]
    closes: list[tuple[Subscriber, int, str]]
    versions: dict[str, int]
    device_list_pushes: list[tuple[list[str], str]]


def _scan(db: Database, subs: list[Subscriber], previous: dict[str, int] | None) -> WatchResult:
    conn = db.connection()
    now = now_ms()
    orders, closes = [], []
    # A handful of set-based queries whatever the number of sockets: with a thousand
    # connections, three queries per socket every round held the GIL long enough to show
    # in the relay's p99 latency.
    device_ids = {sub.device_id for sub in subs}
    pending = devices_crud.pending_orders(conn, device_ids)
    usable = devices_crud.usable_devices(conn, device_ids)
    ended = sessions_crud.ended_sessions(
        conn, {sub.session_id for sub in subs if sub.session_id}, now)
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
    return WatchResult(orders, closes, versions, pushes)


async def watch_once(app: Any, state: WatchState) -> None:
    hub = hub_of(app)
    hub.expire_held()  # signaling messages nobody came for
    subs = hub.subscribers()
    if not subs:
        return
    result = await run_in_threadpool(_scan, app.state.db, subs, state.versions)
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

    tasks = [
        asyncio.create_task(_every(settings.relay_sweep_interval_s, "sweep", sweep)),
        asyncio.create_task(_every(settings.relay_watch_interval_s, "watch",
                                   lambda: watch_once(app, state))),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for sub in hub.subscribers():
            hub.disconnect_device(sub.device_id, 1001, "server_shutdown")
