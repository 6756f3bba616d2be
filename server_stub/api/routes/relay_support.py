"""What the relay routes share: the push hub, refusals as API errors, recording lapsed grants,
and publishing committed events to the devices that may see them."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from starlette.requests import HTTPConnection

from server_stub.api.deps import AuthContext, client_source
from server_stub.api.errors import ApiError
from server_stub.core.db import Database
from server_stub.core.durability import AckGate
from server_stub.core.pubsub import Hub
from server_stub.core.security import now_ms
from server_stub.crud import devices as devices_crud
from server_stub.crud import grants, rooms
from server_stub.crud import users as users_crud
from server_stub.crud.audit import append_audit
from server_stub.crud.blobs import BlobFiles
from server_stub.crud.rooms import GrantExpired, Refused, StoredEvent

T = TypeVar("T")
_hub_lock = threading.Lock()


def hub_of(app: Any) -> Hub:
    """The app's push hub (made by the relay lifespan; made here if a test skipped it)."""
    hub = getattr(app.state, "relay_hub", None)
    if hub is None:
        with _hub_lock:
            hub = getattr(app.state, "relay_hub", None)
            if hub is None:
                hub = Hub(signal_ttl_s=app.state.settings.signal_ttl_s)
                app.state.relay_hub = hub
    return hub


def ack_gate(app: Any) -> AckGate:
    """The app's gate for replies that acknowledge storage (loop thread only)."""
    gate = getattr(app.state, "ack_gate", None)
    if gate is None:
        gate = app.state.ack_gate = AckGate(
            app.state.db, min_interval_s=app.state.settings.relay_ack_sync_interval_s)
    return gate


def loop_connection(app: Any) -> sqlite3.Connection | None:
    """The event loop thread's own database connection (made on first use; None if it
    cannot be opened now). It never waits for a lock: see ``store_events``."""
    conn = getattr(app.state, "loop_db", None)
    if conn is None:
        try:
            conn = app.state.db.open_connection(timeout_s=0)
        except sqlite3.Error:
            return None
        app.state.loop_db = conn
    return conn


def close_loop_connection(app: Any) -> None:
    conn = getattr(app.state, "loop_db", None)
    if conn is not None:
        app.state.loop_db = None
        conn.close()


def blob_files(app: Any) -> BlobFiles:
    return BlobFiles(app.state.settings.blob_dir)


def api_error(exc: Refused) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def event_push(event: StoredEvent) -> str:
    """The push text for a timeline event; built once, sent to every device. The stored
    content is already compact JSON, so it is spliced in rather than parsed again."""
    head = json.dumps({
        "pos": event.pos, "room_id": event.room_id, "event_id": event.event_id,
        "type": event.type, "sender": event.sender_user_id,
        "sender_device": event.sender_device_id, "origin_ms": event.origin_ms,
    }, separators=(",", ":"))
    return '{"type":"event","event":' + head[:-1] + ',"content":' + event.content + "}}"


# Stream positions are assigned at commit, and pushes are handed to the event loop after it.
# Two request threads could hand theirs over in the opposite order, and a device would see
# position 6 before 5. Writers of room events hold this from BEGIN to hand-over. (SQLite
# serialises the writers anyway; the lock only stretches that over the hand-over.)
EVENT_ORDER = threading.RLock()


def publish_events(hub: Hub, targets: dict[int, list[str]], events: Iterable[StoredEvent]) -> None:
    for event in events:
        hub.publish_to_users(targets.get(event.pos, ()), event_push(event))


def push_targets(conn: Any, event: StoredEvent, now: int) -> list[str]:
    """Who gets an event pushed: the room's active members, plus the subject of a
    membership event (so a removed or lapsed user's devices learn it at once)."""
    users = rooms.active_member_ids(conn, event.room_id, now)
    if event.type == rooms.MEMBER_EVENT_TYPE:
        subject = json.loads(event.content).get("user_id")
        if isinstance(subject, str) and subject not in users:
            users.append(subject)
    return users


def record_lapses(db: Database, hub: Hub, *, user_id: str | None = None,
                  room_id: str | None = None, now: int | None = None) -> list[StoredEvent]:
    """Turn lapsed grants into 'expire' membership events, audit and push them."""
    now = now_ms() if now is None else now
    with EVENT_ORDER:
        lapsed, targets = _lapse(db, now, user_id, room_id)
        publish_events(hub, targets, lapsed)
    return lapsed


def _lapse(db: Database, now: int, user_id: str | None, room_id: str | None
           ) -> tuple[list[StoredEvent], dict[int, list[str]]]:
    with db.transaction() as conn:
        lapsed = grants.lapse_expired(conn, now, user_id=user_id, room_id=room_id)
        targets = {}
        for event in lapsed:
            targets[event.pos] = push_targets(conn, event, now)
            subject = json.loads(event.content).get("user_id")
            append_audit(conn, actor_user_id=None, device_id=None, action="room.grant_expired",
                         object_type="room", object_id=event.room_id, outcome="ok",
                         source="server", detail={"user_id": subject})
    return lapsed, targets


def guarded(db: Database, hub: Hub, fn: Callable[[Any], T]) -> T:
    """Run ``fn(conn)`` in one write transaction; refusals become API errors, and a lapsed
    grant met on the way is recorded (and pushed) before the 403 goes out."""
    try:
        with db.transaction() as conn:
            return fn(conn)
    except GrantExpired as exc:
        record_lapses(db, hub, user_id=exc.user_id, room_id=exc.room_id)
        raise api_error(exc) from None
    except Refused as exc:
        raise api_error(exc) from None


def resolve_user(conn: Any, *, user_id: str | None, username: str | None) -> str:
    if user_id is not None:
        user = users_crud.get_user(conn, user_id)
    else:
        user = users_crud.get_user_by_username(
            conn, users_crud.normalize_username(username or ""))
    if user is None or user.disabled:
        raise Refused(404, "unknown_user", "no such user")
    return user.id


def device_of_user(conn: Any, user_id: str, device_id: str) -> bool:
    """True if ``device_id`` is an active device of ``user_id``."""
    device = devices_crud.get_device(conn, device_id)
    return device is not None and device.user_id == user_id and device.state == "active"


def audit(conn: Any, request: HTTPConnection, auth: AuthContext, action: str, *,
          object_type: str, object_id: str, outcome: str = "ok",
          detail: dict[str, Any] | None = None) -> None:
    append_audit(conn, actor_user_id=auth.user_id, device_id=auth.device_id, action=action,
                 object_type=object_type, object_id=object_id, outcome=outcome,
                 source=client_source(request), detail=detail)
