"""Time-limited grants, their lapse, and break-glass access.

A grant is a membership with ``expires_ms``. It stops working the moment it expires: every
access check compares with the clock. Recording the lapse (the 'expire' membership event
that makes devices rotate Megolm) happens when it is noticed: at the lapsed user's next
access, at their sync, and in the periodic sweep.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from server_stub.crud.rooms import (
    INVITABLE_ROLES,
    Refused,
    StoredEvent,
    end_membership,
    get_membership,
    get_room,
    membership_event,
    upsert_joined,
)

MAX_REASON_CHARS = 500
MIN_REASON_CHARS = 10


def grant(
    conn: sqlite3.Connection, room_id: str, *, target_user_id: Any, role: str,
    expires_ms: int | None, granted_by: Any, now_ms: int,
) -> StoredEvent:
    """Make ``target_user_id`` a joined member until ``expires_ms`` (administrator's grant).

    On an existing member it replaces role and expiry, so an admin can extend or shorten.
    """
    if get_room(conn, room_id) is None:
        raise Refused(404, "not_found", "no such consult")
    if role not in INVITABLE_ROLES:
        raise Refused(400, "malformed", "role must be member or observer")
    if expires_ms is not None and expires_ms <= now_ms:
        raise Refused(400, "malformed", "expires_ms must be in the future")
    current = get_membership(conn, room_id, target_user_id)
    if current is not None and current.role == "owner" and current.active(now_ms):
        raise Refused(409, "already_member", "that user owns this consult")
    event = membership_event(
        conn, room_id, subject_user_id=target_user_id, membership="join", role=role,
        expires_ms=expires_ms, actor_user_id=granted_by, actor_device_id=None, now_ms=now_ms,
    )
    keep_from = current.visible_from_pos if current is not None and current.active(now_ms) else None
    upsert_joined(conn, room_id, target_user_id, role=role, now_ms=now_ms,
                   expires_ms=expires_ms, granted_by=granted_by,
                   visible_from_pos=keep_from if keep_from is not None else event.pos)
    return event


def revoke(
    conn: sqlite3.Connection, room_id: str, *, target_user_id: Any, revoked_by: Any, now_ms: int,
) -> StoredEvent:
    m = get_membership(conn, room_id, target_user_id)
    if m is None or m.state == "left":
        raise Refused(404, "not_found", "that user is not in this consult")
    return end_membership(
        conn, room_id, subject_user_id=target_user_id, membership="revoke",
        actor_user_id=revoked_by, actor_device_id=None, now_ms=now_ms,
    )


def lapse_expired(
    conn: sqlite3.Connection, now_ms: int, *, user_id: Any = None, room_id: str | None = None,
) -> list[StoredEvent]:
    """Record every lapsed grant (optionally one user's / one room's) as an 'expire' event."""
    sql = ("SELECT room_id, user_id, expires_ms FROM room_members"
           " WHERE state IN ('invited', 'joined')"
           " AND expires_ms IS NOT NULL AND expires_ms <= ?")
    params: list[Any] = [now_ms]
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(user_id)
    if room_id is not None:
        sql += " AND room_id = ?"
        params.append(room_id)
    events = []
    for row in conn.execute(sql, params).fetchall():
        # What the member could read when the grant ran out, not when the lapse is noticed.
        last = conn.execute(
            "SELECT COALESCE(MAX(pos), 0) FROM events WHERE room_id = ? AND origin_ms < ?",
            (row["room_id"], row["expires_ms"]),
        ).fetchone()[0]
        events.append(end_membership(
            conn, row["room_id"], subject_user_id=row["user_id"], membership="expire",
            actor_user_id=None, actor_device_id=None, now_ms=now_ms, content_until_pos=last,
        ))
    return events


def has_lapsed(conn: sqlite3.Connection, user_id: Any, now_ms: int) -> bool:
    """Cheap read-only test, so a sync only opens a write transaction when there is work."""
    row = conn.execute(
        "SELECT 1 FROM room_members WHERE user_id = ? AND state IN ('invited', 'joined')"
        " AND expires_ms IS NOT NULL AND expires_ms <= ? LIMIT 1",
        (user_id, now_ms),
    ).fetchone()
    return row is not None


def clean_reason(reason: Any) -> str:
    """A break-glass reason: required, printable, bounded. Refuses rather than truncates."""
    if not isinstance(reason, str):
        raise Refused(400, "reason_required", "break-glass access needs a reason")
    text = " ".join(reason.split())
    if len(text) < MIN_REASON_CHARS:
        raise Refused(400, "reason_required",
                      f"break-glass needs a reason of at least {MIN_REASON_CHARS} characters")
    if len(text) > MAX_REASON_CHARS:
        raise Refused(400, "reason_too_long",
                      f"the reason must be at most {MAX_REASON_CHARS} characters")
    if any(not ch.isprintable() for ch in text):
        raise Refused(400, "malformed", "the reason contains control characters")
    return text


@dataclass(frozen=True)
class BreakGlass:
    id: int
    room_id: str
    user_id: Any
    device_id: str | None
    reason: str
    created_ms: int
    expires_ms: int
    reviewed_ms: int | None
    reviewed_by: Any
    review_note: str | None
    # "approved" / "flagged"; None while waiting, and for a row reviewed before migration 5
    # without a decision tag in its note.
    decision: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id, "room_id": self.room_id, "user_id": self.user_id,
            "device_id": self.device_id, "reason": self.reason, "created_ms": self.created_ms,
            "expires_ms": self.expires_ms, "reviewed_ms": self.reviewed_ms,
            "reviewed_by": self.reviewed_by, "review_note": self.review_note,
            "decision": self.decision,
        }


def _break_glass_from_row(row: sqlite3.Row) -> BreakGlass:
    return BreakGlass(
        id=row["id"], room_id=row["room_id"], user_id=row["user_id"], device_id=row["device_id"],
        reason=row["reason"], created_ms=row["created_ms"], expires_ms=row["expires_ms"],
        reviewed_ms=row["reviewed_ms"], reviewed_by=row["reviewed_by"],
        review_note=row["review_note"], decision=row["decision"],
    )


def break_glass(
    conn: sqlite3.Connection, room_id: str, *, user_id: Any, device_id: str | None,
    reason: Any, ttl_s: int, now_ms: int,
) -> tuple[BreakGlass, StoredEvent]:
    """Emergency access without an invitation: a short grant, flagged for review."""
    text = clean_reason(reason)
    if get_room(conn, room_id) is None:
        raise Refused(404, "not_found", "no such consult")
    current = get_membership(conn, room_id, user_id)
    if current is not None and current.active(now_ms):
        raise Refused(409, "already_member", "you are already a member")
    expires_ms = now_ms + ttl_s * 1000
    cur = conn.execute(
        "INSERT INTO break_glass (room_id, user_id, device_id, reason, created_ms, expires_ms)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (room_id, user_id, device_id, text, now_ms, expires_ms),
    )
    bg_id = int(cur.lastrowid or 0)
    event = membership_event(
        conn, room_id, subject_user_id=user_id, membership="break_glass", role="observer",
        expires_ms=expires_ms, actor_user_id=user_id, actor_device_id=device_id, now_ms=now_ms,
    )
    # Observer: break-glass is for reading the consult in an emergency, not for acting in it.
    upsert_joined(conn, room_id, user_id, role="observer", now_ms=now_ms,
                   expires_ms=expires_ms, granted_by=user_id, visible_from_pos=event.pos,
                   break_glass_id=bg_id)
    row = conn.execute("SELECT * FROM break_glass WHERE id = ?", (bg_id,)).fetchone()
    return _break_glass_from_row(row), event


def list_break_glass(
    conn: sqlite3.Connection, *, unreviewed_only: bool, limit: int = 100, after_id: int = 0,
) -> list[BreakGlass]:
    sql = "SELECT * FROM break_glass WHERE id > ?"
    if unreviewed_only:
        sql += " AND reviewed_ms IS NULL"
    rows = conn.execute(sql + " ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
    return [_break_glass_from_row(row) for row in rows]


REVIEW_DECISIONS = ("approved", "flagged")


def review_break_glass(
    conn: sqlite3.Connection, bg_id: int, *, reviewer: Any, decision: str, note: str | None,
    now_ms: int,
) -> BreakGlass:
    """The auditor's sign-off: ``approved`` (the access was justified) or ``flagged``
    (follow up), with an optional note. Once per entry."""
    if decision not in REVIEW_DECISIONS:
        raise Refused(400, "malformed", "the decision must be approved or flagged")
    row = conn.execute("SELECT * FROM break_glass WHERE id = ?", (bg_id,)).fetchone()
    if row is None:
        raise Refused(404, "not_found", "no such break-glass entry")
    if row["reviewed_ms"] is not None:
        raise Refused(409, "already_reviewed", "this entry has been reviewed")
    if note is not None and (len(note) > MAX_REASON_CHARS
                             or any(not ch.isprintable() for ch in note)):
        raise Refused(400, "malformed", "the note must be printable text of at most 500 characters")
    conn.execute(
        "UPDATE break_glass SET reviewed_ms = ?, reviewed_by = ?, review_note = ?, decision = ?"
        " WHERE id = ?",
        (now_ms, reviewer, note, decision, bg_id),
    )
    return _break_glass_from_row(
        conn.execute("SELECT * FROM break_glass WHERE id = ?", (bg_id,)).fetchone()
    )
