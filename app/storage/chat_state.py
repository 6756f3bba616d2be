"""What the chat service remembers besides messages: the sync token, rooms with unread
counts, the membership it has seen, and room events it could not show (yet)."""

from __future__ import annotations

import json
from typing import Any

from app.core.chat import EventState, RoomEvent, UndecryptedEvent
from app.storage.cache import Cache, db_errors

SYNC_TOKEN = "sync_token"  # noqa: S105 (a row name, not a secret)


class ChatState:
    """One per cache (the chat service's): the only writer of these tables, so it may keep
    in memory what every message asks -- a room's state, whether any event waits
    undecrypted -- and forget it when a transaction rolls back."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self._aborted = cache.aborted
        self._room_states: dict[str, str | None] = {}
        self._maybe_undecrypted: bool | None = None  # None: not asked yet

    def _kept(self) -> None:
        """Forget the memory if a transaction was rolled back since it was filled."""
        if self._cache.aborted != self._aborted:
            self._room_states.clear()
            self._maybe_undecrypted = None
            self._aborted = self._cache.aborted

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with db_errors():
            return self._cache.conn.execute(sql, args).fetchall()

    # -- named values ----------------------------------------------------------------------

    def get(self, name: str) -> str | None:
        rows = self._all("SELECT value FROM chat_state WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def put(self, name: str, value: str) -> None:
        with self._cache.write() as conn:
            conn.execute("INSERT INTO chat_state (name, value) VALUES (?, ?) ON CONFLICT (name) "
                         "DO UPDATE SET value = excluded.value", (name, value))

    def named(self, prefix: str) -> list[tuple[str, str]]:
        """Every (name, value) whose name starts with ``prefix`` (e.g. ``attachment:``)."""
        return [(r[0], r[1]) for r in self._all(
            "SELECT name, value FROM chat_state WHERE substr(name, 1, ?) = ? ORDER BY name",
            (len(prefix), prefix))]

    def delete(self, name: str) -> None:
        with self._cache.write() as conn:
            conn.execute("DELETE FROM chat_state WHERE name = ?", (name,))

    # -- rooms and members -----------------------------------------------------------------

    def set_room(self, room_id: str, state: str) -> None:
        with self._cache.write() as conn:
            conn.execute("INSERT INTO chat_rooms (room_id, state) VALUES (?, ?) "
                         "ON CONFLICT (room_id) DO UPDATE SET state = excluded.state",
                         (room_id, state))
        self._kept()
        self._room_states[room_id] = state

    def room_state(self, room_id: str) -> str | None:
        self._kept()
        if room_id not in self._room_states:
            rows = self._all("SELECT state FROM chat_rooms WHERE room_id = ?", (room_id,))
            self._room_states[room_id] = rows[0][0] if rows else None
        return self._room_states[room_id]

    def rooms(self) -> list[tuple[str, str, int, int]]:
        """(room_id, state, unread, last_ts_ms) for every room seen."""
        return [(r[0], r[1], int(r[2]), int(r[3])) for r in self._all(
            "SELECT room_id, state, unread, last_ts_ms FROM chat_rooms ORDER BY room_id")]

    def bump_unread(self, room_id: str, ts_ms: int, *, unread: bool) -> None:
        with self._cache.write() as conn:
            conn.execute("INSERT OR IGNORE INTO chat_rooms (room_id, state) VALUES (?, 'joined')",
                         (room_id,))
            conn.execute("UPDATE chat_rooms SET unread = unread + ?, last_ts_ms = "
                         "max(last_ts_ms, ?) WHERE room_id = ?", (int(unread), ts_ms, room_id))
        self._kept()
        if self._room_states.get(room_id, "") is None:
            del self._room_states[room_id]  # the row made above: read it again

    def mark_read(self, room_id: str) -> None:
        with self._cache.write() as conn:
            conn.execute("UPDATE chat_rooms SET unread = 0 WHERE room_id = ?", (room_id,))

    def set_member(self, room_id: str, user_id: str, state: str) -> None:
        with self._cache.write() as conn:
            conn.execute("INSERT INTO chat_members (room_id, user_id, state) VALUES (?, ?, ?) "
                         "ON CONFLICT (room_id, user_id) DO UPDATE SET state = excluded.state",
                         (room_id, user_id, state))

    def replace_members(self, room_id: str, members: dict[str, str]) -> None:
        with self._cache.write() as conn:
            conn.execute("DELETE FROM chat_members WHERE room_id = ?", (room_id,))
            conn.executemany("INSERT INTO chat_members (room_id, user_id, state) "
                             "VALUES (?, ?, ?)", [(room_id, u, s) for u, s in members.items()])

    def members(self, room_id: str, state: str = "joined") -> list[str]:
        return [r[0] for r in self._all("SELECT user_id FROM chat_members WHERE room_id = ? "
                                        "AND state = ? ORDER BY user_id", (room_id, state))]

    def all_member_ids(self) -> list[str]:
        return [r[0] for r in self._all(
            "SELECT DISTINCT m.user_id FROM chat_members m JOIN chat_rooms r "
            "ON r.room_id = m.room_id WHERE m.state = 'joined' AND r.state = 'joined'")]

    # -- events not shown ------------------------------------------------------------------

    def keep_undecrypted(self, event: RoomEvent, state: EventState, reason: str,
                         session_id: str | None) -> bool:
        """Keep ``event`` (its ciphertext) with why it is not shown. Returns False if it was
        kept already in the same state (a re-sync)."""
        self._maybe_undecrypted = True  # before the write: a rollback leaves it on the safe side
        with self._cache.write() as conn:
            row = conn.execute("SELECT state, reason FROM chat_undecrypted WHERE event_id = ?",
                               (event.event_id,)).fetchone()
            if row is not None and (row[0], row[1]) == (state.value, reason):
                return False
            conn.execute(
                "INSERT INTO chat_undecrypted (event_id, room_id, sender, sender_device, "
                "origin_ms, content, state, reason, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (event_id) DO UPDATE SET state = excluded.state, "
                "reason = excluded.reason",
                (event.event_id, event.room_id, event.sender, event.sender_device,
                 event.origin_ms, json.dumps(event.content, separators=(",", ":")),
                 state.value, reason, session_id))
            return True

    def waiting_for(self, session_id: str | None = None) -> list[RoomEvent]:
        """Events waiting for a key (for one session, or all)."""
        sql = ("SELECT event_id, room_id, sender, sender_device, origin_ms, content "
               "FROM chat_undecrypted WHERE state = ?")
        args: tuple[Any, ...] = (EventState.WAITING_FOR_KEY.value,)
        if session_id is not None:
            sql += " AND session_id = ?"
            args += (session_id,)
        return [RoomEvent(0, r[1], r[0], "sc.encrypted", r[2], r[3], int(r[4]),
                          json.loads(r[5])) for r in self._all(sql + " ORDER BY origin_ms", args)]

    def forget_undecrypted(self, event_id: str) -> None:
        """Asked for every message shown; the usual answer (nothing waits) costs no query."""
        self._kept()
        if self._maybe_undecrypted is None:
            self._maybe_undecrypted = bool(self._all(
                "SELECT 1 FROM chat_undecrypted LIMIT 1"))
        if not self._maybe_undecrypted:
            return
        with self._cache.write() as conn:
            conn.execute("DELETE FROM chat_undecrypted WHERE event_id = ?", (event_id,))

    def mark_requested(self, event_id: str, now_ms: int) -> None:
        with self._cache.write() as conn:
            conn.execute("UPDATE chat_undecrypted SET requested_ms = ? WHERE event_id = ?",
                         (now_ms, event_id))

    def requested(self, event_id: str) -> bool:
        rows = self._all("SELECT requested_ms FROM chat_undecrypted WHERE event_id = ?",
                         (event_id,))
        return bool(rows and rows[0][0] is not None)

    def undecrypted(self, room_id: str | None = None, *,
                    user_messages: dict[str, str] | None = None) -> list[UndecryptedEvent]:
        """Events not shown; ``user_messages`` maps a reason to the text for the user."""
        user_messages = user_messages or {}
        sql = "SELECT room_id, event_id, sender, origin_ms, state, reason FROM chat_undecrypted"
        args: tuple[Any, ...] = ()
        if room_id is not None:
            sql += " WHERE room_id = ?"
            args = (room_id,)
        return [UndecryptedEvent(r[0], r[1], r[2], int(r[3]), EventState(r[4]), r[5],
                                 user_messages.get(r[5], ""))
                for r in self._all(sql + " ORDER BY origin_ms", args)]

    # -- receipts (migration 4) ------------------------------------------------------------

    def record_receipt(self, room_id: str, user_id: str, kind: str, up_to_ts: int) -> bool:
        """Keep ``user_id``'s receipt if it reaches further than the one held; True if so."""
        with self._cache.write() as conn:
            cur = conn.execute(
                "INSERT INTO chat_receipts (room_id, user_id, kind, up_to_ts) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (room_id, user_id, kind) DO UPDATE SET "
                "up_to_ts = excluded.up_to_ts WHERE excluded.up_to_ts > up_to_ts",
                (room_id, user_id, kind, up_to_ts))
            return cur.rowcount > 0

    def receipts(self, room_id: str) -> dict[str, dict[str, int]]:
        """``{user_id: {kind: up_to_ts}}`` for the room."""
        found: dict[str, dict[str, int]] = {}
        for user_id, kind, ts in self._all(
                "SELECT user_id, kind, up_to_ts FROM chat_receipts WHERE room_id = ?",
                (room_id,)):
            found.setdefault(user_id, {})[kind] = ts
        return found

    def delete_undecrypted_older_than(self, ts_ms: int, room_id: str | None = None) -> int:
        """Retention also covers the ciphertexts kept for events not shown."""
        with self._cache.write() as conn:
            if room_id is None:
                return conn.execute("DELETE FROM chat_undecrypted WHERE origin_ms < ?",
                                    (ts_ms,)).rowcount
            return conn.execute("DELETE FROM chat_undecrypted WHERE room_id = ? AND "
                                "origin_ms < ?", (room_id, ts_ms)).rowcount
