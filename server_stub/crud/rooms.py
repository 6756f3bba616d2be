"""Rooms (consults) and their membership.

Every function takes an open connection; callers that change state hold
``Database.transaction()`` so the check and the write are one atomic step. Every membership
change bumps the room's ``membership_version`` and appends a server-written membership
event to the timeline: that event is how member devices learn to rotate their Megolm session.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from server_stub.core.security import new_id

MEMBER_EVENT_TYPE = "sc.room.member"
ROLES = ("owner", "member", "observer")
INVITABLE_ROLES = ("member", "observer")
# Roles that may post room events and upload blobs; observers only read.
WRITER_ROLES = ("owner", "member")


class Refused(Exception):
    """A request the relay refuses; ``code`` follows docs/protocol.md. Never carries content."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class GrantExpired(Refused):
    """The caller's grant has lapsed; the caller should record the lapse, then refuse."""

    def __init__(self, room_id: str, user_id: Any) -> None:
        super().__init__(403, "grant_expired", "your access to this consult has expired")
        self.room_id = room_id
        self.user_id = user_id




@dataclass(frozen=True)
class Membership:
    room_id: str
    user_id: Any
    role: str
    state: str
    since_ms: int
    expires_ms: int | None
    visible_from_pos: int
    visible_until_pos: int | None
    break_glass_id: int | None

    def lapsed(self, now_ms: int) -> bool:
        return self.expires_ms is not None and self.expires_ms <= now_ms

    def active(self, now_ms: int) -> bool:
        return self.state == "joined" and not self.lapsed(now_ms)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Membership:
        return cls(
            room_id=row["room_id"], user_id=row["user_id"], role=row["role"],
            state=row["state"], since_ms=row["since_ms"], expires_ms=row["expires_ms"],
            visible_from_pos=row["visible_from_pos"], visible_until_pos=row["visible_until_pos"],
            break_glass_id=row["break_glass_id"],
        )


@dataclass(frozen=True)
class Room:
    room_id: str
    creator_user_id: Any
    created_ms: int
    membership_version: int
    linked_patient_ct: str | None


@dataclass(frozen=True)
class StoredEvent:
    """A timeline entry as the relay stores and delivers it."""

    pos: int
    room_id: str
    event_id: str
    type: str
    sender_user_id: Any
    sender_device_id: str | None
    content: str  # JSON text exactly as stored
    origin_ms: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "pos": self.pos, "room_id": self.room_id, "event_id": self.event_id,
            "type": self.type, "sender": self.sender_user_id,
            "sender_device": self.sender_device_id, "origin_ms": self.origin_ms,
            "content": json.loads(self.content),
        }

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> StoredEvent:
        return cls(
            pos=row["pos"], room_id=row["room_id"], event_id=row["event_id"], type=row["type"],
            sender_user_id=row["sender_user_id"], sender_device_id=row["sender_device_id"],
            content=row["content"], origin_ms=row["origin_ms"],
        )


def content_digest(content_json: str) -> str:
    return hashlib.sha256(content_json.encode()).hexdigest()


def insert_event(
    conn: sqlite3.Connection, *, room_id: str, event_id: str, type_: str, content_json: str,
    sender_user_id: Any, sender_device_id: str | None, now_ms: int,
) -> StoredEvent:
    cur = conn.execute(
        "INSERT INTO events (room_id, event_id, type, sender_user_id, sender_device_id, content,"
        " content_sha256, origin_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (room_id, event_id, type_, sender_user_id, sender_device_id, content_json,
         content_digest(content_json), now_ms),
    )
    return StoredEvent(
        pos=int(cur.lastrowid or 0), room_id=room_id, event_id=event_id, type=type_,
        sender_user_id=sender_user_id, sender_device_id=sender_device_id,
        content=content_json, origin_ms=now_ms,
    )


def get_room(conn: sqlite3.Connection, room_id: str) -> Room | None:
    row = conn.execute("SELECT * FROM rooms WHERE room_id = ?", (room_id,)).fetchone()
    if row is None:
        return None
    return Room(row["room_id"], row["creator_user_id"], row["created_ms"],
                row["membership_version"], row["linked_patient_ct"])


def get_membership(conn: sqlite3.Connection, room_id: str, user_id: Any) -> Membership | None:
    row = conn.execute(
        "SELECT * FROM room_members WHERE room_id = ? AND user_id = ?", (room_id, user_id)
    ).fetchone()
    return Membership.from_row(row) if row is not None else None


def require_member(
    conn: sqlite3.Connection, room_id: str, user_id: Any, now_ms: int,
    *, roles: tuple[str, ...] = ROLES,
) -> Membership:
    """The caller's active membership, or a refusal.

    A missing room and a non-member get the same 403, so room ids cannot be probed.
    """
    m = get_membership(conn, room_id, user_id)
    if m is None or m.state != "joined":
        raise Refused(403, "not_member", "you are not a member of this consult")
    if m.lapsed(now_ms):
        raise GrantExpired(room_id, user_id)
    if m.role not in roles:
        raise Refused(403, "forbidden", f"your role in this consult ({m.role}) does not allow this")
    return m


def membership_event(
    conn: sqlite3.Connection, room_id: str, *, subject_user_id: Any, membership: str,
    role: str | None, expires_ms: int | None, actor_user_id: Any, actor_device_id: str | None,
    now_ms: int,
) -> StoredEvent:
    """Bump the membership version and append the event that announces the change."""
    conn.execute(
        "UPDATE rooms SET membership_version = membership_version + 1 WHERE room_id = ?",
        (room_id,),
    )
    version = conn.execute(
        "SELECT membership_version FROM rooms WHERE room_id = ?", (room_id,)
    ).fetchone()[0]
    content = json.dumps(
        {"user_id": subject_user_id, "membership": membership, "role": role,
         "expires_ms": expires_ms, "membership_version": version},
        separators=(",", ":"),
    )
    return insert_event(
        conn, room_id=room_id, event_id=f"$srv_{new_id()}", type_=MEMBER_EVENT_TYPE,
        content_json=content, sender_user_id=actor_user_id, sender_device_id=actor_device_id,
        now_ms=now_ms,
    )


def upsert_joined(
    conn: sqlite3.Connection, room_id: str, user_id: Any, *, role: str, now_ms: int,
    expires_ms: int | None, granted_by: Any, visible_from_pos: int,
    break_glass_id: int | None = None,
) -> None:
    conn.execute(
        "INSERT INTO room_members (room_id, user_id, role, state, since_ms, expires_ms,"
        " visible_from_pos, visible_until_pos, granted_by, break_glass_id)"
        " VALUES (?, ?, ?, 'joined', ?, ?, ?, NULL, ?, ?)"
        " ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role, state = 'joined',"
        " since_ms = excluded.since_ms, expires_ms = excluded.expires_ms,"
        " visible_from_pos = excluded.visible_from_pos, visible_until_pos = NULL,"
        " content_until_pos = NULL,"
        " granted_by = excluded.granted_by, break_glass_id = excluded.break_glass_id",
        (room_id, user_id, role, now_ms, expires_ms, visible_from_pos, granted_by,
         break_glass_id),
    )


def create_room(
    conn: sqlite3.Connection, *, creator_user_id: Any, creator_device_id: str | None,
    now_ms: int, linked_patient_ct: str | None = None,
) -> tuple[Room, StoredEvent]:
    room_id = new_id()
    conn.execute(
        "INSERT INTO rooms (room_id, creator_user_id, created_ms, linked_patient_ct)"
        " VALUES (?, ?, ?, ?)",
        (room_id, creator_user_id, now_ms, linked_patient_ct),
    )
    event = membership_event(
        conn, room_id, subject_user_id=creator_user_id, membership="join", role="owner",
        expires_ms=None, actor_user_id=creator_user_id, actor_device_id=creator_device_id,
        now_ms=now_ms,
    )
    upsert_joined(conn, room_id, creator_user_id, role="owner", now_ms=now_ms,
                   expires_ms=None, granted_by=creator_user_id, visible_from_pos=event.pos)
    room = get_room(conn, room_id)
    assert room is not None  # just inserted in this transaction
    return room, event


def set_linked_patient(conn: sqlite3.Connection, room_id: str, ciphertext: str | None) -> None:
    conn.execute("UPDATE rooms SET linked_patient_ct = ? WHERE room_id = ?",
                 (ciphertext, room_id))


def invite(
    conn: sqlite3.Connection, room_id: str, *, actor_user_id: Any, actor_device_id: str | None,
    target_user_id: Any, role: str, expires_ms: int | None, now_ms: int,
) -> StoredEvent:
    """Owner invites a user; the invitation's ``expires_ms`` bounds the membership too."""
    require_member(conn, room_id, actor_user_id, now_ms, roles=("owner",))
    if role not in INVITABLE_ROLES:
        raise Refused(400, "malformed", "role must be member or observer")
    if expires_ms is not None and expires_ms <= now_ms:
        raise Refused(400, "malformed", "expires_ms must be in the future")
    current = get_membership(conn, room_id, target_user_id)
    if current is not None and current.active(now_ms):
        raise Refused(409, "already_member", "that user is already a member")
    conn.execute(
        "INSERT INTO room_members (room_id, user_id, role, state, since_ms, expires_ms,"
        " visible_from_pos, visible_until_pos, granted_by)"
        " VALUES (?, ?, ?, 'invited', ?, ?, 0, NULL, ?)"
        " ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role, state = 'invited',"
        " since_ms = excluded.since_ms, expires_ms = excluded.expires_ms,"
        " visible_until_pos = NULL, content_until_pos = NULL, granted_by = excluded.granted_by,"
        " break_glass_id = NULL",
        (room_id, target_user_id, role, now_ms, expires_ms, actor_user_id),
    )
    return membership_event(
        conn, room_id, subject_user_id=target_user_id, membership="invite", role=role,
        expires_ms=expires_ms, actor_user_id=actor_user_id, actor_device_id=actor_device_id,
        now_ms=now_ms,
    )


def join(
    conn: sqlite3.Connection, room_id: str, *, user_id: Any, device_id: str | None, now_ms: int,
) -> StoredEvent:
    m = get_membership(conn, room_id, user_id)
    if m is None or m.state == "left":
        raise Refused(403, "not_invited", "you have no invitation to this consult")
    if m.lapsed(now_ms):
        raise GrantExpired(room_id, user_id)
    if m.state == "joined":
        raise Refused(409, "already_member", "you are already a member")
    event = membership_event(
        conn, room_id, subject_user_id=user_id, membership="join", role=m.role,
        expires_ms=m.expires_ms, actor_user_id=user_id, actor_device_id=device_id, now_ms=now_ms,
    )
    conn.execute(
        "UPDATE room_members SET state = 'joined', since_ms = ?, visible_from_pos = ?,"
        " visible_until_pos = NULL, content_until_pos = NULL WHERE room_id = ? AND user_id = ?",
        (now_ms, event.pos, room_id, user_id),
    )
    return event


def end_membership(
    conn: sqlite3.Connection, room_id: str, *, subject_user_id: Any, membership: str,
    actor_user_id: Any, actor_device_id: str | None, now_ms: int,
    content_until_pos: int | None = None,
) -> StoredEvent:
    """Turn a row into 'left' and announce it; the subject still syncs up to this event
    (and, when ``content_until_pos`` is given, other events only up to that position)."""
    m = get_membership(conn, room_id, subject_user_id)
    role = m.role if m is not None else None
    event = membership_event(
        conn, room_id, subject_user_id=subject_user_id, membership=membership, role=role,
        expires_ms=None, actor_user_id=actor_user_id, actor_device_id=actor_device_id,
        now_ms=now_ms,
    )
    conn.execute(
        "UPDATE room_members SET state = 'left', since_ms = ?, visible_until_pos = ?,"
        " content_until_pos = ?, expires_ms = NULL WHERE room_id = ? AND user_id = ?",
        (now_ms, event.pos, content_until_pos, room_id, subject_user_id),
    )
    return event


def leave(
    conn: sqlite3.Connection, room_id: str, *, user_id: Any, device_id: str | None, now_ms: int,
) -> StoredEvent:
    m = get_membership(conn, room_id, user_id)
    if m is None or m.state == "left":
        raise Refused(403, "not_member", "you are not a member of this consult")
    # Leaving works even on a lapsed grant or a pending invitation (declining it).
    return end_membership(
        conn, room_id, subject_user_id=user_id, membership="leave", actor_user_id=user_id,
        actor_device_id=device_id, now_ms=now_ms,
    )


def remove_member(
    conn: sqlite3.Connection, room_id: str, *, actor_user_id: Any, actor_device_id: str | None,
    target_user_id: Any, now_ms: int,
) -> StoredEvent:
    require_member(conn, room_id, actor_user_id, now_ms, roles=("owner",))
    m = get_membership(conn, room_id, target_user_id)
    if m is None or m.state == "left":
        raise Refused(404, "not_found", "that user is not in this consult")
    if target_user_id == actor_user_id:
        raise Refused(400, "malformed", "use leave to remove yourself")
    return end_membership(
        conn, room_id, subject_user_id=target_user_id, membership="remove",
        actor_user_id=actor_user_id, actor_device_id=actor_device_id, now_ms=now_ms,
    )


def rooms_of(conn: sqlite3.Connection, user_id: Any, now_ms: int) -> list[tuple[Room, Membership]]:
    """Rooms the user is invited to or joined (lapsed grants left out)."""
    rows = conn.execute(
        "SELECT r.room_id AS r_id, r.creator_user_id, r.created_ms, r.membership_version,"
        " r.linked_patient_ct, m.* FROM room_members m JOIN rooms r ON r.room_id = m.room_id"
        " WHERE m.user_id = ? AND m.state IN ('invited', 'joined')"
        " AND (m.expires_ms IS NULL OR m.expires_ms > ?) ORDER BY r.created_ms, r.room_id",
        (user_id, now_ms),
    ).fetchall()
    return [
        (Room(row["r_id"], row["creator_user_id"], row["created_ms"], row["membership_version"],
              row["linked_patient_ct"]), Membership.from_row(row))
        for row in rows
    ]


def members_of(conn: sqlite3.Connection, room_id: str, now_ms: int) -> list[Membership]:
    rows = conn.execute(
        "SELECT * FROM room_members WHERE room_id = ? AND state IN ('invited', 'joined')"
        " AND (expires_ms IS NULL OR expires_ms > ?) ORDER BY since_ms, rowid",
        (room_id, now_ms),
    ).fetchall()
    return [Membership.from_row(row) for row in rows]


def active_member_ids(conn: sqlite3.Connection, room_id: str, now_ms: int) -> list[Any]:
    """Users whose devices receive the room's pushes."""
    rows = conn.execute(
        "SELECT user_id FROM room_members WHERE room_id = ? AND state = 'joined'"
        " AND (expires_ms IS NULL OR expires_ms > ?)",
        (room_id, now_ms),
    ).fetchall()
    return [row[0] for row in rows]
