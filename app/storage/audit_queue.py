"""Audit entries queued on the device until the server acknowledges them.

Kept in the encrypted cache so that an entry recorded offline survives a restart; entries
leave only when :meth:`AuditQueueRepository.ack` is called with the server's receipt.
"""

from __future__ import annotations

import time

from app.core.audit_queue import QueuedAudit
from app.storage.cache import Cache, db_errors


class AuditQueueRepository:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def enqueue(self, kind: str, payload: bytes, *, created_ms: int | None = None) -> int:
        created = created_ms if created_ms is not None else int(time.time() * 1000)
        with self._cache.write() as conn:
            cursor = conn.execute(
                "INSERT INTO audit_queue (kind, payload, created_ms) VALUES (?, ?, ?)",
                (kind, payload, created),
            )
            return int(cursor.lastrowid)

    def pending(self, limit: int = 100) -> list[QueuedAudit]:
        """The oldest ``limit`` entries, in the order they were queued."""
        with db_errors():
            rows = self._cache.conn.execute(
                "SELECT seq, kind, payload, created_ms FROM audit_queue ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [QueuedAudit(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def ack(self, up_to_seq: int) -> int:
        """The server has stored every entry up to ``up_to_seq``: drop them."""
        with self._cache.write() as conn:
            return conn.execute("DELETE FROM audit_queue WHERE seq <= ?", (up_to_seq,)).rowcount

    def count(self) -> int:
        with db_errors():
            return int(self._cache.conn.execute("SELECT count(*) FROM audit_queue").fetchone()[0])
