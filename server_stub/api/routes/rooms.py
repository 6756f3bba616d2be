"""Rooms (consults): create, list, membership, grants' lapse, break-glass.

Membership changes are audited and pushed; the membership event they append is the
signal for member devices to rotate their Megolm session (docs/protocol.md, "Rooms").
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from server_stub.api.deps import AuthContext, authenticated, get_db, require_role
from server_stub.api.errors import ApiError
from server_stub.api.routes.relay_support import (
    EVENT_ORDER,
    api_error,
    audit,
    guarded,
    hub_of,
    publish_events,
    push_targets,
    resolve_user,
)
from server_stub.core.db import Database
from server_stub.core.security import now_ms
from server_stub.crud import grants, rooms
from server_stub.crud.rooms import Refused, StoredEvent
from server_stub.models.rooms import BreakGlass, CreateRoom, Invite, LinkedPatient, Review

router = APIRouter(tags=["rooms"])

# Break-glass entries carry the requester's free-text reason: audit content. Separation of
# duties (issue #8): auditors read it; IT admins manage users and devices and may not.
REVIEW_ROLES = ("auditor",)


def _room_wire(room: rooms.Room, m: rooms.Membership) -> dict[str, Any]:
    return {
        "room_id": room.room_id, "creator": room.creator_user_id, "created_ms": room.created_ms,
        "membership_version": room.membership_version, "linked_patient": room.linked_patient_ct,
        "role": m.role, "state": m.state, "expires_ms": m.expires_ms,
        "break_glass": m.break_glass_id is not None,
    }


def _member_wire(m: rooms.Membership) -> dict[str, Any]:
    return {"user_id": m.user_id, "role": m.role, "state": m.state, "since_ms": m.since_ms,
            "expires_ms": m.expires_ms, "break_glass": m.break_glass_id is not None}


def _change(
    request: Request, db: Database, auth: AuthContext, action: str, room_id: str,
    fn, *, detail: dict[str, Any] | None = None,
) -> StoredEvent:
    """One membership change: run it, audit it in the same transaction, push it after."""
    hub = hub_of(request.app)
    now = now_ms()
    targets: dict[int, list[str]] = {}

    def work(conn) -> StoredEvent:
        event = fn(conn, now)
        targets[event.pos] = push_targets(conn, event, now)
        audit(conn, request, auth, action, object_type="room", object_id=room_id, detail=detail)
        return event

    with EVENT_ORDER:
        event = guarded(db, hub, work)
        publish_events(hub, targets, [event])
    return event


def _membership_result(conn_db: Database, room_id: str, event: StoredEvent) -> dict[str, Any]:
    room = rooms.get_room(conn_db.connection(), room_id)
    return {"room_id": room_id, "event_id": event.event_id, "pos": event.pos,
            "membership_version": room.membership_version if room else None}


@router.post("/v1/rooms", status_code=201)
def create_room(
    body: CreateRoom, request: Request, auth: AuthContext = Depends(authenticated),  # noqa: B008
    db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    hub = hub_of(request.app)
    created: dict[str, Any] = {}

    def work(conn) -> StoredEvent:
        room, event = rooms.create_room(conn, creator_user_id=auth.user_id,
                                        creator_device_id=auth.device_id, now_ms=now_ms(),
                                        linked_patient_ct=body.linked_patient)
        created["room"] = room
        audit(conn, request, auth, "room.create", object_type="room", object_id=room.room_id)
        return event

    with EVENT_ORDER:
        event = guarded(db, hub, work)
        publish_events(hub, {event.pos: [auth.user_id]}, [event])
    room = created["room"]
    return {"room_id": room.room_id, "membership_version": room.membership_version,
            "event_id": event.event_id, "pos": event.pos}


@router.get("/v1/rooms")
def list_rooms(
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    found = rooms.rooms_of(db.connection(), auth.user_id, now_ms())
    return {"rooms": [_room_wire(room, m) for room, m in found]}


@router.get("/v1/rooms/{room_id}")
def get_room(
    request: Request, room_id: str, auth: AuthContext = Depends(authenticated),  # noqa: B008
    db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    now = now_ms()

    def work(conn) -> dict[str, Any]:
        m = rooms.require_member(conn, room_id, auth.user_id, now)
        room = rooms.get_room(conn, room_id)
        assert room is not None  # membership implies the room
        return _room_wire(room, m)

    return guarded(db, hub_of(request.app), work)


@router.get("/v1/rooms/{room_id}/members")
def list_members(
    request: Request, room_id: str, auth: AuthContext = Depends(authenticated),  # noqa: B008
    db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    now = now_ms()

    def work(conn) -> dict[str, Any]:
        rooms.require_member(conn, room_id, auth.user_id, now)
        room = rooms.get_room(conn, room_id)
        assert room is not None
        return {"room_id": room_id, "membership_version": room.membership_version,
                "members": [_member_wire(m) for m in rooms.members_of(conn, room_id, now)]}

    return guarded(db, hub_of(request.app), work)


@router.put("/v1/rooms/{room_id}/linked_patient")
def set_linked_patient(
    request: Request, room_id: str, body: LinkedPatient,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    def work(conn) -> dict[str, Any]:
        rooms.require_member(conn, room_id, auth.user_id, now_ms(), roles=("owner",))
        rooms.set_linked_patient(conn, room_id, body.linked_patient)
        audit(conn, request, auth, "room.link_patient", object_type="room", object_id=room_id)
        return {"room_id": room_id}

    return guarded(db, hub_of(request.app), work)


@router.post("/v1/rooms/{room_id}/invite")
def invite(
    request: Request, room_id: str, body: Invite,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    def fn(conn, now):
        target = resolve_user(conn, user_id=body.user_id, username=body.username)
        return rooms.invite(conn, room_id, actor_user_id=auth.user_id,
                            actor_device_id=auth.device_id, target_user_id=target,
                            role=body.role, expires_ms=body.expires_ms, now_ms=now)

    event = _change(request, db, auth, "room.invite", room_id, fn,
                    detail={"role": body.role, "expires_ms": body.expires_ms})
    return _membership_result(db, room_id, event)


@router.post("/v1/rooms/{room_id}/join")
def join(
    request: Request, room_id: str, auth: AuthContext = Depends(authenticated),  # noqa: B008
    db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    event = _change(request, db, auth, "room.join", room_id, lambda conn, now: rooms.join(
        conn, room_id, user_id=auth.user_id, device_id=auth.device_id, now_ms=now))
    return _membership_result(db, room_id, event)


@router.post("/v1/rooms/{room_id}/leave")
def leave(
    request: Request, room_id: str, auth: AuthContext = Depends(authenticated),  # noqa: B008
    db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    event = _change(request, db, auth, "room.leave", room_id, lambda conn, now: rooms.leave(
        conn, room_id, user_id=auth.user_id, device_id=auth.device_id, now_ms=now))
    return _membership_result(db, room_id, event)


@router.delete("/v1/rooms/{room_id}/members/{user_id}")
def remove_member(
    request: Request, room_id: str, user_id: str,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    event = _change(
        request, db, auth, "room.remove", room_id,
        lambda conn, now: rooms.remove_member(
            conn, room_id, actor_user_id=auth.user_id, actor_device_id=auth.device_id,
            target_user_id=user_id, now_ms=now),
        detail={"user_id": user_id},
    )
    return _membership_result(db, room_id, event)


@router.post("/v1/rooms/{room_id}/break_glass")
def break_glass(
    request: Request, room_id: str, body: BreakGlass,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> JSONResponse:
    settings = request.app.state.settings
    entry: dict[str, Any] = {}

    def fn(conn, now):
        bg, event = grants.break_glass(conn, room_id, user_id=auth.user_id,
                                       device_id=auth.device_id, reason=body.reason,
                                       ttl_s=settings.break_glass_ttl_s, now_ms=now)
        entry["bg"] = bg
        return event

    try:
        event = _change(request, db, auth, "room.break_glass", room_id, fn,
                        detail={"flagged": True})
    except ApiError as err:
        # Refused attempts are audit material too (the reason text is not: it may hold PHI).
        with db.transaction() as conn:
            audit(conn, request, auth, "room.break_glass", object_type="room",
                  object_id=room_id, outcome="refused", detail={"code": err.code})
        raise
    bg = entry["bg"]
    result = _membership_result(db, room_id, event)
    result.update(break_glass_id=bg.id, expires_ms=bg.expires_ms, role="observer")
    return JSONResponse(result, status_code=201)


@router.get("/v1/break_glass")
def list_break_glass(
    unreviewed: bool = Query(default=True),
    after: int = Query(default=0, ge=0, lt=2**53),
    limit: int = Query(default=100, ge=1, le=500),
    auth: AuthContext = Depends(require_role(*REVIEW_ROLES)),  # noqa: B008
    db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    entries = grants.list_break_glass(db.connection(), unreviewed_only=unreviewed,
                                      limit=limit, after_id=after)
    return {"entries": [e.to_wire() for e in entries]}


@router.post("/v1/break_glass/{entry_id}/review")
def review_break_glass(
    request: Request, entry_id: int, body: Review,
    auth: AuthContext = Depends(require_role(*REVIEW_ROLES)),  # noqa: B008
    db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    try:
        with db.transaction() as conn:
            entry = grants.review_break_glass(conn, entry_id, reviewer=auth.user_id,
                                              decision=body.decision, note=body.note,
                                              now_ms=now_ms())
            audit(conn, request, auth, "break_glass.review", object_type="break_glass",
                  object_id=str(entry_id), detail={"decision": body.decision})
    except Refused as exc:
        raise api_error(exc) from None
    return entry.to_wire()
