"""Store-and-forward: room events, to-device messages and the sync stream over both.

Delivery is at-least-once on the wire and exactly-once in effect: senders choose the event
id (or to-device transaction id), so a retry is recognised and stored once; receivers read
after a sync token, and a to-device message is deleted only when the device presents a
token past it (its acknowledgement).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from server_stub.crud.rooms import (
    MEMBER_EVENT_TYPE,
    WRITER_ROLES,
    Refused,
    StoredEvent,
    content_digest,
    insert_event,
    require_member,
)

_TOKEN = re.compile(r"^(\d{1,18})_(\d{1,18})$")


@dataclass(frozen=True)
class SyncToken:
    """Opaque to clients: ``<event position>_<to-device position>``."""

    events: int = 0
    to_device: int = 0

    @classmethod
    def parse(cls, text: str | None) -> SyncToken:
        if text is None or text == "":
            return cls()
        match = _TOKEN.match(text)
        if match is None:
            raise Refused(400, "malformed", "since is not a sync token")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.events}_{self.to_device}"


@dataclass(frozen=True)
class PostResult:
    event: StoredEvent
    duplicate: bool


def post_event(
    conn: sqlite3.Connection, room_id: str, *, event_id: str, type_: str, content_json: str,
    sender_user_id: Any, sender_device_id: str, now_ms: int,
) -> PostResult:
    """Append a client event; a retry with the same id and body returns the first result."""
    require_member(conn, room_id, sender_user_id, now_ms, roles=WRITER_ROLES)
    if type_ == MEMBER_EVENT_TYPE or type_.startswith("sc.room."):
        raise Refused(400, "malformed", "event types under sc.room. are written by the server")
    row = conn.execute(
        "SELECT * FROM events WHERE room_id = ? AND event_id = ?", (room_id, event_id)
    ).fetchone()
    if row is not None:
        existing = StoredEvent.from_row(row)
        same = (row["sender_device_id"] == sender_device_id and row["type"] == type_
                and row["content_sha256"] == content_digest(content_json))
        if not same:
            raise Refused(409, "event_id_conflict", "that event id is taken by another event")
        return PostResult(existing, duplicate=True)
    event = insert_event(
        conn, room_id=room_id, event_id=event_id, type_=type_, content_json=content_json,
        sender_user_id=sender_user_id, sender_device_id=sender_device_id, now_ms=now_ms,
    )
    return PostResult(event, duplicate=False)


@dataclass(frozen=True)
class ToDeviceMessage:
    msg_id: int
    sender_user_id: Any
    sender_device_id: str
    type: str
    content: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "pos": self.msg_id, "sender": self.sender_user_id,
            "sender_device": self.sender_device_id, "type": self.type,
            "content": json.loads(self.content),
        }


@dataclass(frozen=True)
class Recipient:
    user_id: Any
    device_id: str
    content_json: str


def request_digest(type_: str, items: list[tuple[Any, str, str]]) -> str:
    """Fingerprint of a whole to-device request (every addressee, even ones skipped), so a
    transaction id reused for a different request is caught."""
    digest = hashlib.sha256()
    digest.update(type_.encode())
    for user_id, device_id, content_json in items:
        digest.update(b"\0" + json.dumps([user_id, device_id]).encode())
        digest.update(b"\0" + content_json.encode())
    return digest.hexdigest()


def send_to_device(
    conn: sqlite3.Connection, *, sender_user_id: Any, sender_device_id: str, txn_id: str,
    type_: str, recipients: list[Recipient], now_ms: int, request_sha: str | None = None,
) -> tuple[list[Recipient], bool]:
    """Queue one message per recipient device. Returns (queued, duplicate)."""
    if request_sha is None:
        request_sha = request_digest(
            type_, [(r.user_id, r.device_id, r.content_json) for r in recipients])
    row = conn.execute(
        "SELECT request_sha256 FROM to_device_txns WHERE sender_device_id = ? AND txn_id = ?",
        (sender_device_id, txn_id),
    ).fetchone()
    if row is not None:
        if row[0] != request_sha:
            raise Refused(409, "txn_conflict", "that transaction id was used for another request")
        return recipients, True
    conn.execute(
        "INSERT INTO to_device_txns (sender_device_id, txn_id, request_sha256, created_ms)"
        " VALUES (?, ?, ?, ?)",
        (sender_device_id, txn_id, request_sha, now_ms),
    )
    conn.executemany(
        "INSERT INTO to_device (recipient_user_id, recipient_device_id, sender_user_id,"
        " sender_device_id, type, content, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(r.user_id, r.device_id, sender_user_id, sender_device_id, type_, r.content_json,
          now_ms) for r in recipients],
    )
    return recipients, False


@dataclass(frozen=True)
class SyncBatch:
    events: list[StoredEvent]
    to_device: list[ToDeviceMessage]
    next_token: SyncToken
    limited: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "next": str(self.next_token), "limited": self.limited,
            "events": [e.to_wire() for e in self.events],
            "to_device": [m.to_wire() for m in self.to_device],
        }


def acknowledge_to_device(conn: sqlite3.Connection, device_id: str, up_to: int) -> int:
    """Delete what the device has confirmed receiving (positions <= ``up_to``)."""
    if up_to <= 0:
        return 0
    return conn.execute(
        "DELETE FROM to_device WHERE recipient_device_id = ? AND msg_id <= ?", (device_id, up_to)
    ).rowcount


def read_batch(
    conn: sqlite3.Connection, *, user_id: Any, device_id: str, since: SyncToken, limit: int,
    now_ms: int,
) -> SyncBatch:
    """Everything after ``since`` that this device may see, at most ``limit`` of each kind.

    Run inside one transaction so the stream heads and the rows come from one snapshot.
    """
    head_ev = conn.execute("SELECT COALESCE(MAX(pos), 0) FROM events").fetchone()[0]
    head_ev = max(head_ev, since.events)
    rows = conn.execute(
        "SELECT e.* FROM events e JOIN room_members m"
        " ON m.room_id = e.room_id AND m.user_id = ?"
        " WHERE e.pos > ? AND e.pos <= ? AND e.pos >= m.visible_from_pos AND ("
        "   (m.state = 'joined' AND (m.expires_ms IS NULL OR m.expires_ms > ?))"
        "   OR (m.state = 'left' AND (e.pos = m.visible_until_pos OR e.pos <= COALESCE("
        "       m.content_until_pos, m.visible_until_pos))))"
        " ORDER BY e.pos LIMIT ?",
        (user_id, since.events, head_ev, now_ms, limit + 1),
    ).fetchall()
    events = [StoredEvent.from_row(r) for r in rows[:limit]]
    events_limited = len(rows) > limit
    # Positions skipped here (other rooms) are passed over for good: a joined room's events
    # before the join are invisible by design (visible_from_pos).
    next_ev = events[-1].pos if events_limited else head_ev
    msgs = conn.execute(
        "SELECT * FROM to_device WHERE recipient_device_id = ? AND recipient_user_id = ?"
        " AND msg_id > ? ORDER BY msg_id LIMIT ?",
        (device_id, user_id, since.to_device, limit + 1),
    ).fetchall()
    to_device = [
        ToDeviceMessage(r["msg_id"], r["sender_user_id"], r["sender_device_id"], r["type"],
                        r["content"])
        for r in msgs[:limit]
    ]
    next_td = to_device[-1].msg_id if to_device else since.to_device
    return SyncBatch(events, to_device, SyncToken(next_ev, next_td),
                     limited=events_limited or len(msgs) > limit)


def stream_head(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(pos), 0) FROM events").fetchone()[0]
