"""Cached chat messages: insert, list a room, keyword search (FTS5, trigram)."""

from __future__ import annotations

from collections.abc import Iterable

from app.core.messages import CachedMessage
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
