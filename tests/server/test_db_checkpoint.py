"""SQLite checkpoints: the server's commits never checkpoint (never wait for the disk); the
relay's background task does it."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3

from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS
from tests.server import relay_support
from tests.server.relay_support import make_room, post

crowd = relay_support.crowd  # fixture

PAGE = 4096
ROWS = 400  # ~1,600 pages of log: past SQLite's default 1,000-page autocheckpoint


def _fill(db: Database) -> None:
    blob = os.urandom(3 * PAGE)
    with db.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
    for _ in range(ROWS):
        with db.transaction() as conn:
            conn.execute("INSERT INTO filler (b) VALUES (?)", (blob,))


def _wal_pages(db: Database) -> int:
    return os.path.getsize(str(db.path) + "-wal") // PAGE


def test_commits_checkpoint_only_when_allowed(tmp_path):
    default = Database(tmp_path / "a.sqlite3", MIGRATIONS)
    _fill(default)
    assert _wal_pages(default) < 1300  # checkpointed and restarted the log along the way

    quiet = Database(tmp_path / "b.sqlite3", MIGRATIONS, autocheckpoint=False)
    _fill(quiet)
    assert _wal_pages(quiet) > 1500  # every frame still in the log: no commit checkpointed
    quiet.checkpoint()
    busy, logged, copied = quiet.connection().execute(
        "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, logged) == (0, copied)


async def test_running_server_checkpoints_in_the_background(make_server, crowd, tmp_path):
    server = make_server(require_device_approval=False, login_backoff_base_ms=0,
                         wal_checkpoint_interval_s=0.2)
    alice, bob = await crowd(server, "alice", "bob")
    room_id = await make_room(alice, bob)
    for k in range(20):
        await post(alice, room_id, f"ckpt-event-{k:03d}")
    await asyncio.sleep(0.8)  # a few checkpoint rounds; then nothing is left to copy
    # The database file alone, without its log: the events are there only if a
    # checkpoint copied them (20 small commits are far from any automatic one).
    alone = tmp_path / "alone.sqlite3"
    shutil.copyfile(server.data_dir / "server.sqlite3", alone)
    conn = sqlite3.connect(alone)
    try:
        stored = conn.execute(
            "SELECT COUNT(*) FROM events WHERE event_id LIKE 'ckpt-%'").fetchone()[0]
    finally:
        conn.close()
    assert stored == 20
