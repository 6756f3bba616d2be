"""SQLite storage: one file, WAL, foreign keys on, schema by numbered migrations.

Each thread gets its own connection (FastAPI runs sync routes in a thread pool); writes
are short transactions, so SQLite's own locking is enough at this server's scale.

In WAL mode with ``synchronous=NORMAL`` a commit does not wait for the disk; a checkpoint
does (two fsyncs). By default SQLite checkpoints inside whichever commit takes the log past
1,000 pages. The server turns that off (``autocheckpoint=False``) and checkpoints from a
background task instead (:meth:`Database.checkpoint`), so no request -- and no room event,
whose pushes wait for its commit -- ever waits for an fsync.

``NORMAL`` loses nothing when the server process dies, but an OS crash or a power cut can
take back the transactions committed since the log was last synced. Where the relay tells a
client that something is stored (a ``sent`` reply, a POST's answer) or hands out a sync
token, it first calls :meth:`Database.sync_wal` -- one fsync covers every commit before
it, so under load one serves many (``core/durability.py``) -- while pushes to the other
devices go out at commit, not waiting for the disk.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from os import fsync
from pathlib import Path


class Database:
    def __init__(self, path: Path, migrations: Sequence[str], *,
                 autocheckpoint: bool = True) -> None:
        self.path = path
        self.autocheckpoint = autocheckpoint
        self._local = threading.local()
        self._sync_cond = threading.Condition()
        self._sync_asked = self._sync_done = 0  # group commit tickets (sync_wal)
        self._syncing = False
        self._migrations = migrations
        path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (made on first use; waits up to 30 s for a lock)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.open_connection()
            self._local.conn = conn
        return conn

    def open_connection(self, *, timeout_s: float = 30) -> sqlite3.Connection:
        """A new connection, set up like every other; the caller owns (and closes) it. The
        event loop's own uses ``timeout_s=0``: it never waits for another writer."""
        conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if not self.autocheckpoint:
            conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    @contextmanager
    def transaction(self, conn: sqlite3.Connection | None = None
                    ) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: serialises writers, so read-check-write is atomic.
        On this thread's connection unless ``conn`` is given."""
        conn = self.connection() if conn is None else conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def checkpoint(self) -> None:
        """Copy the write-ahead log back into the database (PASSIVE: never blocks readers or
        writers; what a reader still needs is left for the next time)."""
        self.connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def sync_wal(self) -> None:
        """Blocking: when this returns, every transaction committed before the call (by any
        connection, of this process or another) survives a power cut. It fsyncs the
        write-ahead log, where WAL mode commits land (a complete checkpoint syncs the
        database file before the log is reused); without a log, the database file.
        Callers that arrive while an fsync runs share the next one (group commit)."""
        with self._sync_cond:
            self._sync_asked += 1
            ticket = self._sync_asked
            while self._sync_done < ticket:
                if self._syncing:
                    self._sync_cond.wait()
                    continue
                self._syncing, covered = True, self._sync_asked
                try:
                    self._sync_cond.release()
                    try:
                        self._fsync_log()
                    finally:
                        self._sync_cond.acquire()
                    self._sync_done = covered
                finally:
                    self._syncing = False
                    self._sync_cond.notify_all()

    def _fsync_log(self) -> None:
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:
            fd = os.open(self.path, os.O_RDONLY)
        try:
            fsync(fd)
        finally:
            os.close(fd)

    def _migrate(self) -> None:
        conn = self.connection()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(self._migrations[version:], start=version + 1):
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
