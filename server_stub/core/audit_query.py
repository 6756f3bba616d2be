"""Access review: selecting audit entries by user, device, consult (patient), action, time.

The server knows no patient: a consult room is about one patient, so "patient" and "room"
select the same thing -- entries whose object is that room (``object_type`` room or
consult) or whose detail names it (``room_id``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AuditFilter:
    user_id: str | None = None      # the actor, or the user acted upon
    device_id: str | None = None
    room_id: str | None = None      # also "patient": one consult is one patient's
    action: str | None = None       # exact, or a prefix ending in "*" ("client.file.*")
    from_ms: int | None = None      # inclusive
    to_ms: int | None = None        # exclusive
    outcome: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.user_id is not None:
            clauses.append("(actor_user_id = ? OR (object_type = 'user' AND object_id = ?))")
            args += [self.user_id, self.user_id]
        if self.device_id is not None:
            clauses.append("(device_id = ? OR (object_type = 'device' AND object_id = ?))")
            args += [self.device_id, self.device_id]
        if self.room_id is not None:
            clauses.append("((object_type IN ('room', 'consult') AND object_id = ?)"
                           " OR (detail IS NOT NULL AND json_extract(detail, '$.room_id') = ?))")
            args += [self.room_id, self.room_id]
        if self.action is not None:
            if self.action.endswith("*"):
                clauses.append("substr(action, 1, ?) = ?")
                prefix = self.action[:-1]
                args += [len(prefix), prefix]
            else:
                clauses.append("action = ?")
                args.append(self.action)
        if self.from_ms is not None:
            clauses.append("ts_ms >= ?")
            args.append(self.from_ms)
        if self.to_ms is not None:
            clauses.append("ts_ms < ?")
            args.append(self.to_ms)
        if self.outcome is not None:
            clauses.append("outcome = ?")
            args.append(self.outcome)
        return (" AND ".join(clauses) or "1"), args


def search(conn: sqlite3.Connection, flt: AuditFilter, *, after_seq: int = 0,
           limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Matching entries in ``seq`` order, ``detail`` decoded."""
    where, args = flt.where()
    sql = f"SELECT * FROM audit_log WHERE seq > ? AND {where} ORDER BY seq"  # noqa: S608
    params: list[Any] = [after_seq, *args]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    for row in conn.execute(sql, params):
        entry = dict(row)
        entry["detail"] = json.loads(entry["detail"]) if entry["detail"] else None
        yield entry


def usernames(conn: sqlite3.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT id, username FROM users")}


def resolve_user(conn: sqlite3.Connection, name_or_id: str) -> str | None:
    row = conn.execute("SELECT id FROM users WHERE username = ? OR id = ?",
                       (name_or_id.strip().lower(), name_or_id)).fetchone()
    return row[0] if row else None
