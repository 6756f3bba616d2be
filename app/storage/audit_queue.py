"""The device's audit chain, queued in the encrypted cache until the server has it.

Rows of ``audit_queue`` are the signed entries of :mod:`app.core.audit_queue`, with
``seq`` = the entry's device sequence number. An entry is appended (and committed, with
``synchronous=FULL``) before anything is sent, so one recorded offline or just before a
crash survives a restart; it leaves only when :meth:`AuditQueueRepository.ack` is called
with the server's receipt.

Two small records live beside the rows, in the cache's ``secrets`` table (a name -> bytes
store inside the same encrypted database; no schema change needed):

* ``audit:head`` -- the last entry appended (seq and hash), updated in the append's own
  transaction, so the chain continues after every row has been uploaded and dropped;
* ``audit:anchor`` -- the last entry dropped after upload, so the first remaining row's
  ``prev_hash`` can still be checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.core.audit_queue import AuditEntry, ChainHead, QueuedAudit
from app.storage.cache import Cache, db_errors

HEAD = "audit:head"
ANCHOR = "audit:anchor"

EntryFactory = Callable[[int, str], AuditEntry]
"""(device_seq, prev_hash) -> the sealed entry to append."""


class AuditQueueRepository:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    # -- the chain ---------------------------------------------------------------------

    def append(self, make: EntryFactory) -> AuditEntry:
        """Append the next entry of the chain in one transaction (row + head together), so
        two appends can never share a sequence number or a predecessor."""
        with self._cache.write() as conn:
            head = self._read(conn, HEAD)
            entry = make(head.device_seq + 1, head.entry_hash)
            if entry.device_seq != head.device_seq + 1 or entry.prev_hash != head.entry_hash:
                raise ValueError("entry does not continue the chain")
            conn.execute(
                "INSERT INTO audit_queue (seq, kind, payload, created_ms) VALUES (?, ?, ?, ?)",
                (entry.device_seq, entry.action, entry.to_bytes(), entry.ts_ms),
            )
            self._write(conn, HEAD, ChainHead(entry.device_seq, entry.entry_hash))
        return entry

    def head(self) -> ChainHead:
        with db_errors():
            return self._read(self._cache.conn, HEAD)

    def anchor(self) -> ChainHead:
        with db_errors():
            return self._read(self._cache.conn, ANCHOR)

    @staticmethod
    def _read(conn, name: str) -> ChainHead:
        row = conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
        return ChainHead.from_bytes(bytes(row[0]) if row else None)

    @staticmethod
    def _write(conn, name: str, head: ChainHead) -> None:
        conn.execute(
            "INSERT INTO secrets (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, head.to_bytes()),
        )

    # -- the queue ---------------------------------------------------------------------

    def enqueue(self, kind: str, payload: bytes, *, created_ms: int | None = None) -> int:
        """A raw row outside the chain (kept for callers that predate it; the chain's
        check reports such rows as unreadable). New code uses :meth:`append`."""
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
        """The server has stored every entry up to ``up_to_seq``: drop them, and keep the
        last dropped entry as the anchor of what remains (same transaction)."""
        with self._cache.write() as conn:
            row = conn.execute(
                "SELECT seq, payload FROM audit_queue WHERE seq <= ? ORDER BY seq DESC LIMIT 1",
                (up_to_seq,),
            ).fetchone()
            if row is None:
                return 0
            try:
                last = AuditEntry.from_bytes(bytes(row[1]))
                self._write(conn, ANCHOR, ChainHead(row[0], last.entry_hash))
            except ValueError:
                pass  # a raw (enqueue) row: no chain to anchor
            return conn.execute("DELETE FROM audit_queue WHERE seq <= ?", (up_to_seq,)).rowcount

    def count(self) -> int:
        with db_errors():
            return int(self._cache.conn.execute("SELECT count(*) FROM audit_queue").fetchone()[0])
