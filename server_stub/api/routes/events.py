"""Room events (opaque ciphertext) and the sync stream (docs/protocol.md, "Relay")."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from server_stub.api.deps import AuthContext, authenticated, get_db
from server_stub.api.errors import ApiError
from server_stub.api.routes.relay_support import (
    api_error,
    guarded,
    hub_of,
    publish_events,
    record_lapses,
)
from server_stub.core.db import Database
from server_stub.core.security import now_ms
from server_stub.crud import events, grants, rooms
from server_stub.crud.rooms import Refused
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


@router.post("/v1/rooms/{room_id}/events")
def post_event(
    request: Request, room_id: str, body: PostEvent,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    content = compact_json(body.content, request.app.state.settings.max_event_bytes)
    hub = hub_of(request.app)
    now = now_ms()
    targets: dict[int, list[str]] = {}

    def work(conn) -> events.PostResult:
        result = events.post_event(
            conn, room_id, event_id=body.event_id, type_=body.type, content_json=content,
            sender_user_id=auth.user_id, sender_device_id=auth.device_id, now_ms=now)
        if not result.duplicate:
            targets[result.event.pos] = rooms.active_member_ids(conn, room_id, now)
        return result

    result = guarded(db, hub, work)
    if not result.duplicate:
        publish_events(hub, targets, [result.event])
    return {"event_id": result.event.event_id, "pos": result.event.pos,
            "duplicate": result.duplicate}


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
    return Response(json.dumps(batch.to_wire(), separators=(",", ":")),
                    media_type="application/json")
