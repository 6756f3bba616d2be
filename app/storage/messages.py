"""Cached chat messages: insert, list a room, keyword search (FTS5, trigram)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.storage.cache import Cache

_INSERT = (
    "INSERT OR IGNORE INTO messages (room_id, event_id, sender, ts_ms, body) "
    "VALUES (?, ?, ?, ?, ?)"
)
_LIST_ROOM = (
    "SELECT room_id, event_id, sender, ts_ms, body FROM messages "
    "WHERE room_id = ? AND ts_ms < ? ORDER BY ts_ms DESC, id DESC LIMIT ?"
)
_SELECT = "SELECT m.room_id, m.event_id, m.sender, m.ts_ms, m.body "
_FTS = _SELECT + (
    "FROM messages_fts f JOIN messages m ON m.id = f.rowid WHERE messages_fts MATCH ? "
)
_LIKE = _SELECT + "FROM messages m WHERE m.body LIKE ? ESCAPE '\\' "
_IN_ROOM = "AND m.room_id = ? "
_ORDER = "ORDER BY m.ts_ms DESC LIMIT ?"
# Every query text is one of these fixed strings; only values are bound.
_SEARCH = {
    (True, False): _FTS + _ORDER,
    (True, True): _FTS + _IN_ROOM + _ORDER,
    (False, False): _LIKE + _ORDER,
    (False, True): _LIKE + _IN_ROOM + _ORDER,
}


class MessageMeta(NamedTuple):
    """What the author did to a message after writing it (patient data: ``edit_body``)."""

    reply_to: str | None
    edit_order: int | None  # set once edited
    recalled_ms: int | None
    edit_body: str | None
    urgent: int


class MessageRepository:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def insert(self, message: CachedMessage) -> bool:
        """Store ``message``; False when its event id is already cached (refetch is idempotent)."""
        return self.insert_many([message]) == 1

    def insert_many(self, messages: Iterable[CachedMessage]) -> int:
        """Store messages in one transaction; returns how many were new."""
        rows = list(messages)  # a CachedMessage is its own row
        with self._cache.write() as conn:
            # rowcount sums sqlite3_changes(), which leaves out the FTS trigger's writes.
            return conn.executemany(_INSERT, rows).rowcount

    def list_room(
        self, room_id: str, *, limit: int = 100, before_ts_ms: int | None = None,
    ) -> list[CachedMessage]:
        """The room's latest ``limit`` messages (before ``before_ts_ms``), oldest first."""
        rows = self._cache.fetchall(
            _LIST_ROOM, (room_id, before_ts_ms if before_ts_ms is not None else 2**62, limit))
        rows.reverse()
        return CachedMessage.from_rows(rows)

    def search(
        self, keyword: str, *, room_id: str | None = None, limit: int = 50,
    ) -> list[CachedMessage]:
        """Messages whose body contains ``keyword`` (case-insensitive), newest first.

        Keywords of three or more characters use the trigram index; shorter ones (common in
        Chinese: two-character words) fall back to a scan, which the trigram tokenizer
        cannot serve.
        """
        keyword = keyword.strip()
        if not keyword:
            return []
        indexed = len(keyword) >= 3
        if indexed:
            pattern = '"' + keyword.replace('"', '""') + '"'  # one FTS5 phrase, no operators
        else:
            escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
        room_args: tuple[str, ...] = (room_id,) if room_id is not None else ()
        sql = _SEARCH[(indexed, room_id is not None)]
        return CachedMessage.from_rows(self._cache.fetchall(sql, (pattern, *room_args, limit)))

    def delete_room(self, room_id: str) -> int:
        with self._cache.write() as conn:
            return conn.execute("DELETE FROM messages WHERE room_id = ?", (room_id,)).rowcount

    def delete_older_than(self, ts_ms: int) -> int:
        """Retention (policy.retention_days): drop messages older than ``ts_ms``."""
        with self._cache.write() as conn:
            return conn.execute("DELETE FROM messages WHERE ts_ms < ?", (ts_ms,)).rowcount

    # -- replies, edits, recalls (chat_message_meta, migration 4) ---------------------------

    def get(self, event_id: str) -> CachedMessage | None:
        rows = self._cache.fetchall(
            "SELECT room_id, event_id, sender, ts_ms, body FROM messages WHERE event_id = ?",
            (event_id,))
        return CachedMessage.from_rows(rows)[0] if rows else None

    def set_reply(self, room_id: str, event_id: str, sender: str, reply_to: str | None,
                  *, urgent: bool = False) -> None:
        """What the message itself said besides its text: what it answers, whether urgent."""
        with self._cache.write() as conn:
            conn.execute(
                "INSERT INTO chat_message_meta (event_id, sender, room_id, reply_to, urgent) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id, sender) DO UPDATE SET "
                "reply_to = excluded.reply_to, urgent = excluded.urgent",
                (event_id, sender, room_id, reply_to, int(urgent)))

    def acknowledge(self, event_id: str, user_id: str, acked_ms: int) -> bool:
        """``user_id`` acknowledged the urgent ``event_id``; False if already known."""
        with self._cache.write() as conn:
            return conn.execute(
                "INSERT OR IGNORE INTO chat_acks (event_id, user_id, acked_ms) VALUES (?, ?, ?)",
                (event_id, user_id, acked_ms)).rowcount > 0

    def acks(self, event_id: str) -> list[str]:
        return [r[0] for r in self._cache.fetchall(
            "SELECT user_id FROM chat_acks WHERE event_id = ? ORDER BY acked_ms", (event_id,))]

    def unacknowledged_urgent(self, user_id: str) -> list[CachedMessage]:
        """Urgent messages of others that ``user_id`` (we) did not acknowledge, oldest first
        (recalled ones excluded: their body is gone)."""
        return CachedMessage.from_rows(self._cache.fetchall(
            "SELECT m.room_id, m.event_id, m.sender, m.ts_ms, m.body FROM messages m "
            "JOIN chat_message_meta c ON c.event_id = m.event_id AND c.sender = m.sender "
            "WHERE c.urgent = 1 AND c.recalled_ms IS NULL AND m.sender != ? AND NOT EXISTS "
            "(SELECT 1 FROM chat_acks a WHERE a.event_id = m.event_id AND a.user_id = ?) "
            "ORDER BY m.ts_ms", (user_id, user_id)))

    def record_edit(self, room_id: str, target: str, sender: str, body: Phi[str],
                    order: int) -> bool:
        """Keep ``sender``'s edit of ``target`` if it is their latest (highest ``order``);
        True when it became the current one. Applied to the message only if ``sender``
        wrote it (:meth:`apply_changes`)."""
        with self._cache.write() as conn:
            row = conn.execute(
                "SELECT edit_order, recalled_ms FROM chat_message_meta "
                "WHERE event_id = ? AND sender = ?", (target, sender)).fetchone()
            if row is not None and (row[1] is not None
                                    or (row[0] is not None and row[0] >= order)):
                return False  # recalled, or an older (or the same) edit arriving late
            conn.execute(
                "INSERT INTO chat_message_meta (event_id, sender, room_id, edit_body, "
                "edit_order) VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id, sender) DO UPDATE "
                "SET edit_body = excluded.edit_body, edit_order = excluded.edit_order",
                (target, sender, room_id, body.reveal(), order))
        return True

    def record_recall(self, room_id: str, target: str, sender: str, recalled_ms: int) -> None:
        """Note that ``sender`` recalled ``target``; any edit text is dropped at once."""
        with self._cache.write() as conn:
            conn.execute(
                "INSERT INTO chat_message_meta (event_id, sender, room_id, recalled_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (event_id, sender) DO UPDATE SET "
                "recalled_ms = excluded.recalled_ms, edit_body = NULL",
                (target, sender, room_id, recalled_ms))

    def apply_changes(self, event_id: str, *, recall_window_ms: int) -> None:
        """Bring the cached body of ``event_id`` in line with its author's changes: the
        latest edit's text, or nothing once recalled (within the window)."""
        message = self.get(event_id)
        if message is None:
            return
        meta = self.meta(message.event_id, message.sender)
        if meta is None:
            return
        with self._cache.write() as conn:
            if meta.recalled_ms is not None and \
                    meta.recalled_ms - message.ts_ms <= recall_window_ms:
                conn.execute("UPDATE messages SET body = '' WHERE event_id = ?", (event_id,))
            elif meta.edit_body is not None:
                conn.execute("UPDATE messages SET body = ? WHERE event_id = ?",
                             (meta.edit_body, event_id))

    def meta(self, event_id: str, sender: str) -> MessageMeta | None:
        row = self._cache.fetchall(
            "SELECT reply_to, edit_order, recalled_ms, edit_body, urgent FROM chat_message_meta "
            "WHERE event_id = ? AND sender = ?", (event_id, sender))
        return MessageMeta(*row[0]) if row else None

    def metas(self, messages: Iterable[CachedMessage]) -> dict[str, MessageMeta]:
        """The meta rows of ``messages`` written by their own authors, by event id."""
        found: dict[str, MessageMeta] = {}
        for message in messages:
            meta = self.meta(message.event_id, message.sender)
            if meta is not None:
                found[message.event_id] = meta
        return found

    def delete_room_older_than(self, room_id: str, ts_ms: int) -> int:
        """Disappearing messages: drop the room's messages older than ``ts_ms``."""
        with self._cache.write() as conn:
            return conn.execute("DELETE FROM messages WHERE room_id = ? AND ts_ms < ?",
                                (room_id, ts_ms)).rowcount

    def forget_orphan_meta(self) -> None:
        """Edit texts, replies and acknowledgements of messages no longer cached go too
        (so does a change still waiting for its message: it waited past retention)."""
        with self._cache.write() as conn:
            conn.execute("DELETE FROM chat_message_meta WHERE event_id NOT IN "
                         "(SELECT event_id FROM messages)")
            conn.execute("DELETE FROM chat_acks WHERE event_id NOT IN "
                         "(SELECT event_id FROM messages)")
