"""Signed checkpoints and retention purge: the key is private to the data directory, a chain
rewritten consistently after a checkpoint is caught, a forged checkpoint is caught, and a
purge past retention keeps the rest verifiable from the cut."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from server_stub.core import audit_checkpoint as cp
from server_stub.crud.audit import GENESIS_HASH, append_audit, entry_hash
from tests.server.test_audit_chain import _cli, _seed, _tamper
from tests.support.clients import server_db

YEAR_MS = 365 * 86_400_000


def test_key_is_created_private_and_checkpoints_verify(server):
    _seed(server, 5)
    db = server_db(server)
    first = cp.create_checkpoint(db, server.data_dir)
    assert first is not None and first.seq == 5
    assert cp.create_checkpoint(db, server.data_dir) is None  # head already signed
    key = cp.key_path(server.data_dir)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    _seed(server, 3)
    assert cp.create_checkpoint(db, server.data_dir).seq == 8
    report = cp.verify_log(db, server.data_dir)
    assert report.ok and report.checkpoints == 2, report
    with pytest.raises(sqlite3.IntegrityError):
        db.connection().execute("DELETE FROM audit_checkpoints")


def test_a_consistent_rewrite_after_a_checkpoint_is_caught(server):
    _seed(server, 6)
    db = server_db(server)
    cp.create_checkpoint(db, server.data_dir)  # signs entry 6
    # The attacker edits entry 3 and recomputes every hash after it and the head: the bare
    # chain is self-consistent again, the signed checkpoint is not.
    conn = sqlite3.connect(db.path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("DROP TRIGGER audit_log_no_update")
    prev = conn.execute("SELECT entry_hash FROM audit_log WHERE seq = 2").fetchone()[0]
    for seq in range(3, 7):
        row = dict(conn.execute("SELECT * FROM audit_log WHERE seq = ?", (seq,)).fetchone())
        if seq == 3:
            row["object_id"] = "rewritten"
        row["prev_hash"] = prev
        prev = entry_hash(row)
        conn.execute("UPDATE audit_log SET object_id = ?, prev_hash = ?, entry_hash = ?"
                     " WHERE seq = ?", (row["object_id"], row["prev_hash"], prev, seq))
    conn.execute("UPDATE server_meta SET value = ? WHERE key = 'audit_head'", (f"6:{prev}",))
    conn.close()
    from server_stub.crud.audit import verify_chain

    assert verify_chain(db.connection()).ok  # the chain alone cannot tell
    report = cp.verify_log(db, server.data_dir)
    assert not report.ok and report.first_bad_seq == 1, report
    assert "checkpoint" in report.problem and "rewritten" in report.problem
    result = _cli(server.data_dir, "audit", "verify")
    assert result.returncode == 1 and "rewritten" in result.stderr


def test_a_forged_checkpoint_is_caught(server):
    _seed(server, 3)
    db = server_db(server)
    cp.create_checkpoint(db, server.data_dir)
    conn = sqlite3.connect(db.path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_checkpoints_no_update")
    conn.execute("UPDATE audit_checkpoints SET entry_hash = ?", ("f" * 64,))
    conn.close()
    report = cp.verify_log(db, server.data_dir)
    assert not report.ok and "signature invalid" in report.problem


def _backdate(db_path, through_seq: int, years: int) -> None:
    """Entries 1..through_seq were written ``years`` ago (rehashed, as if they had been)."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("DROP TRIGGER audit_log_no_update")
    prev = GENESIS_HASH
    rows = [dict(r) for r in conn.execute("SELECT * FROM audit_log ORDER BY seq")]
    for row in rows:
        if row["seq"] <= through_seq:
            row["ts_ms"] -= years * YEAR_MS + row["seq"]
        row["prev_hash"] = prev
        prev = row["entry_hash"] = entry_hash(row)
        conn.execute("UPDATE audit_log SET ts_ms = ?, prev_hash = ?, entry_hash = ?"
                     " WHERE seq = ?", (row["ts_ms"], row["prev_hash"], prev, row["seq"]))
    conn.execute("UPDATE server_meta SET value = ? WHERE key = 'audit_head'",
                 (f"{rows[-1]['seq']}:{prev}",))
    conn.execute("CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                 "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")
    conn.close()


def test_purge_keeps_six_years_and_the_rest_verifies_from_the_cut(server):
    _seed(server, 10)
    db = server_db(server)
    _backdate(db.path, 4, years=7)
    with pytest.raises(cp.PurgeRefused):
        cp.purge(db, server.data_dir, retention_days=365)  # below the six-year floor
    # Before the cut, deleting is still refused by the trigger.
    with pytest.raises(sqlite3.IntegrityError):
        db.connection().execute("DELETE FROM audit_log WHERE seq = 1")
    result = cp.purge(db, server.data_dir)
    assert (result.purged, result.through_seq) == (4, 4)
    conn = db.connection()
    assert conn.execute("SELECT MIN(seq) FROM audit_log").fetchone()[0] == 5
    last = conn.execute("SELECT action, detail FROM audit_log ORDER BY seq DESC").fetchone()
    assert last[0] == "audit.purge" and '"entries":4' in last[1]
    report = cp.verify_log(db, server.data_dir)
    assert report.ok and report.anchor_seq == 4, report
    # Entries after the cut are still append-only.
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM audit_log WHERE seq = 5")
    # The log goes on growing and verifying; the CLI starts from the cut.
    _seed(server, 2)
    ok = _cli(server.data_dir, "audit", "verify")
    assert ok.returncode == 0 and "from checkpoint at entry 4" in ok.stdout, ok.stderr
    assert cp.purge(db, server.data_dir).purged == 0  # nothing else is old enough
    # Tampering after a purge is still named.
    _tamper(db.path, "UPDATE audit_log SET outcome = 'failed' WHERE seq = 7")
    report = cp.verify_log(db, server.data_dir)
    assert not report.ok and report.first_bad_seq == 7


def test_purge_refuses_a_log_that_does_not_verify(server):
    _seed(server, 5)
    db = server_db(server)
    _backdate(db.path, 2, years=7)
    _tamper(db.path, "UPDATE audit_log SET object_id = 'x' WHERE seq = 4")
    with pytest.raises(cp.PurgeRefused, match="does not verify"):
        cp.purge(db, server.data_dir)
    assert db.connection().execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == 5


def test_cli_checkpoint_and_purge(server):
    _seed(server, 3)
    out = _cli(server.data_dir, "audit", "checkpoint")
    assert out.returncode == 0 and out.stdout.startswith("checkpoint 1: entry 3"), out.stderr
    short = _cli(server.data_dir, "audit", "purge", "--days", "30")
    assert short.returncode == 1 and "below" in short.stderr
    nothing = _cli(server.data_dir, "audit", "purge")
    assert nothing.returncode == 0 and "nothing older" in nothing.stdout
    db = server_db(server)
    with db.transaction() as conn:  # audit entries written by the same helper work on
        append_audit(conn, actor_user_id=None, device_id=None, action="test.after",
                     object_type=None, object_id=None, outcome="ok", source="test")
    assert cp.verify_log(db, server.data_dir).ok


def test_the_running_server_has_its_key_and_signs_periodically(open_server, tmp_path):
    import asyncio
    from types import SimpleNamespace

    from server_stub.api.routes.audit import audit_lifespan

    assert cp.key_path(open_server.data_dir).exists()  # made at start
    _seed(open_server, 2)
    db = server_db(open_server)
    app = SimpleNamespace(state=SimpleNamespace(
        db=db, settings=SimpleNamespace(data_dir=open_server.data_dir,
                                        audit_checkpoint_interval_s=0.05)))

    async def run() -> None:
        async with audit_lifespan(app):
            for _ in range(100):
                await asyncio.sleep(0.05)
                if cp.list_checkpoints(db.connection()):
                    break

    asyncio.run(run())
    [first] = cp.list_checkpoints(db.connection())
    assert first.head == db.connection().execute(
        "SELECT value FROM server_meta WHERE key = 'audit_head'").fetchone()[0]
