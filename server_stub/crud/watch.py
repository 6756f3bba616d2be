"""The relay watch's change counter (``server_stub/core/schema_watch.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def change_counter(conn: sqlite3.Connection) -> int:
    """Bumped by triggers on every write the watch must react to, from any process."""
    row = conn.execute("SELECT counter FROM watch_changes WHERE id = 1").fetchone()
    return int(row[0]) if row else -1


def open_reader(path: Path, *, timeout_s: float) -> sqlite3.Connection:
    """A read-only connection for the event loop thread: a short busy timeout, so a locked
    database costs the loop at most ``timeout_s`` (the caller then falls back to a scan in
    the thread pool) rather than the request connections' 30 s."""
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    return conn
