"""Room events (opaque ciphertext) and the sync stream (docs/protocol.md, "Relay")."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from server_stub.api.deps import AuthContext, authenticated, get_db
from server_stub.api.errors import ApiError
from server_stub.api.routes.relay_support import (
    EVENT_ORDER,
    api_error,
    event_push,
    hub_of,
    record_lapses,
)
from server_stub.core.db import Database
from server_stub.core.security import now_ms
from server_stub.crud import events, grants, rooms
from server_stub.crud.rooms import GrantExpired, Refused
from server_stub.models.events import PostEvent

router = APIRouter(tags=["relay"])

SYNC_DEFAULT_LIMIT = 100
SYNC_MAX_LIMIT = 1000


def compact_json(value: Any, limit: int) -> str:
    """The stored form of opaque content, refused above ``limit`` bytes."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > limit:
        raise ApiError(413, "too_large", f"content over {limit} bytes")
    return text


class WouldWait(Exception):
    """Storing on the event loop's connection would have waited for another writer (or has
    a lapsed grant to record first); nothing was stored -- do it in the thread pool."""


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


def store_events(app: Any, auth: AuthContext, items: list[tuple[str, PostEvent]], *,
                 conn: sqlite3.Connection | None = None) -> list[dict[str, Any] | ApiError]:
    """Store client events in one transaction and push them; one outcome per item, in order
    (a result, or the ApiError refusing that item alone). Shared by the POST route and the
    WebSocket's ``send`` frames, which arrive in bursts under load: one transaction and one
    hand-over to the push loop then serve the whole burst.

    With ``conn`` -- the event loop's own connection, which never waits for a lock -- it
    runs on the loop thread and either completes without waiting or raises WouldWait
    having stored nothing (the caller then calls it again from the thread pool). This is
    the WebSocket's usual path: no thread hand-over each way, whose waits for the GIL were
    most of a pushed event's latency."""
    limit = app.state.settings.max_event_bytes
    db: Database = app.state.db
    hub = hub_of(app)
    now = now_ms()
    outcomes: list[dict[str, Any] | ApiError | None] = [None] * len(items)
    prepared = []
    for i, (room_id, body) in enumerate(items):
        try:
            prepared.append((i, room_id, body, compact_json(body.content, limit)))
        except ApiError as err:
            outcomes[i] = err
    stored: list[tuple[rooms.StoredEvent, list[str]]] = []
    lapsed: set[tuple[str, str]] = set()
    if not EVENT_ORDER.acquire(blocking=conn is None):
        raise WouldWait
    try:
        try:
            _store(db, auth, prepared, now, outcomes, stored, lapsed, conn)
        except sqlite3.OperationalError as exc:
            if conn is not None and _busy(exc):
                raise WouldWait from None
            raise
        for user_id, room_id in lapsed:
            record_lapses(db, hub, user_id=user_id, room_id=room_id)
        if stored:
            hub.publish_batch([(targets, event_push(event)) for event, targets in stored])
    finally:
        EVENT_ORDER.release()
    return [o for o in outcomes if o is not None]


def _store(db: Database, auth: AuthContext, prepared: list, now: int,
           outcomes: list, stored: list, lapsed: set, conn: sqlite3.Connection | None) -> None:
    loop_thread = conn is not None
    if prepared:
        with db.transaction(conn) as conn:
            members: dict[str, list[str]] = {}
            for i, room_id, body, content in prepared:
                try:
                    # Every check comes before the insert, so a refusal leaves nothing behind.
                    result = events.post_event(
                        conn, room_id, event_id=body.event_id, type_=body.type,
                        content_json=content, sender_user_id=auth.user_id,
                        sender_device_id=auth.device_id, now_ms=now)
                except GrantExpired as exc:
                    lapsed.add((exc.user_id, exc.room_id))
                    outcomes[i] = api_error(exc)
                    continue
                except Refused as exc:
                    outcomes[i] = api_error(exc)
                    continue
                if not result.duplicate:
                    if room_id not in members:
                        members[room_id] = rooms.active_member_ids(conn, room_id, now)
                    stored.append((result.event, members[room_id]))
                outcomes[i] = {"event_id": result.event.event_id, "pos": result.event.pos,
                               "duplicate": result.duplicate}
            if lapsed and loop_thread:
                # Recording a lapse writes and may wait: roll back, redo it all in the pool.
                raise WouldWait


@router.post("/v1/rooms/{room_id}/events")
def post_event(
    request: Request, room_id: str, body: PostEvent,
    auth: AuthContext = Depends(authenticated),  # noqa: B008
) -> dict[str, Any]:
    (outcome,) = store_events(request.app, auth, [(room_id, body)])
    if isinstance(outcome, ApiError):
        raise outcome
    request.app.state.db.sync_wal()  # the answer says "stored": on disk first
    return outcome


@router.get("/v1/sync")
def sync(
    request: Request,
    since: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=SYNC_DEFAULT_LIMIT, ge=1, le=SYNC_MAX_LIMIT),
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> Response:
    try:
        token = events.SyncToken.parse(since)
    except Refused as exc:
        raise api_error(exc) from None
    now = now_ms()
    if grants.has_lapsed(db.connection(), auth.user_id, now):
        record_lapses(db, hub_of(request.app), user_id=auth.user_id, now=now)
    with db.transaction() as conn:
        # Presenting a token acknowledges every to-device message before it.
        events.acknowledge_to_device(conn, auth.device_id, token.to_device)
        batch = events.read_batch(conn, user_id=auth.user_id, device_id=auth.device_id,
                                  since=token, limit=limit, now_ms=now)
    # A token handed out must never run ahead of what a power cut would leave: positions
    # taken back and reused would be skipped by whoever holds it.
    db.sync_wal()
    return Response(json.dumps(batch.to_wire(), separators=(",", ":")),
                    media_type="application/json")
