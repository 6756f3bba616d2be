"""Server audit log benchmark: append 100,000 entries and verify the chain, as ratios to
plain SQLite inserts and raw SHA-256 over the same bytes, measured in the same run.

Run: .venv/bin/python -m pytest -m bench tests/bench/test_audit_bench.py -s
Figures go to docs/performance.md, "Audit (server)".

Ours: ``crud.audit.append_audit`` (read the head, canonical JSON, SHA-256, INSERT, head
update in server_meta, the append-only triggers and indexes) -- one transaction per entry,
as the server writes them, and also 1,000 per transaction (a bulk import). Reference: a
plain ``INSERT`` of the same rows (same columns and values, hashes precomputed) into a
table without triggers, extra indexes or head row, in the same database settings (WAL,
synchronous=NORMAL). Verification: ``verify_log`` (the chain plus signed checkpoints)
against (a) SHA-256 alone over the same canonical bytes, (b) reading the rows alone.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import pytest

from server_stub.core import audit_checkpoint as cp
from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS
from server_stub.crud import audit as audit_crud

pytestmark = pytest.mark.bench
N = 100_000
BATCH = 1_000
ACTIONS = ("login", "client.file.download", "room.join", "client.image.open", "logout")


def _entry(i: int) -> dict:
    return {"actor_user_id": f"user{i % 50:04d}aaaaaaaaaaaa",
            "device_id": f"dev{i % 80:05d}bbbbbbbbbbb",
            "action": ACTIONS[i % len(ACTIONS)], "object_type": "room",
            "object_id": f"room{i % 300:06d}", "outcome": "ok", "source": "10.1.2.3",
            "detail": {"n": i, "format": "pdf"}}


def _append_all(db: Database, per_txn: int) -> float:
    start = time.perf_counter()
    for base in range(0, N, per_txn):
        with db.transaction() as conn:
            for i in range(base, base + per_txn):
                audit_crud.append_audit(conn, **_entry(i))
    return time.perf_counter() - start


def _plain(path: Path, rows: list[tuple], per_txn: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, ts_ms INTEGER, actor_user_id TEXT,"
                 " device_id TEXT, action TEXT, object_type TEXT, object_id TEXT, outcome TEXT,"
                 " source TEXT, detail TEXT, prev_hash TEXT, entry_hash TEXT)")
    sql = "INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    start = time.perf_counter()
    for base in range(0, N, per_txn):
        conn.execute("BEGIN IMMEDIATE")
        for row in rows[base:base + per_txn]:
            conn.execute(sql, row)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def test_append_and_verify_100k(tmp_path):
    # One transaction per entry (how the server appends).
    db1 = Database(tmp_path / "a" / "server.sqlite3", MIGRATIONS)
    t_ours_single = _append_all(db1, 1)
    stored = [tuple(r) for r in db1.connection().execute(
        "SELECT seq, ts_ms, actor_user_id, device_id, action, object_type, object_id, outcome,"
        " source, detail, prev_hash, entry_hash FROM audit_log ORDER BY seq")]
    assert len(stored) == N
    t_plain_single = _plain(tmp_path / "plain1.sqlite3", stored, 1)
    # Bulk: 1,000 per transaction.
    db2 = Database(tmp_path / "b" / "server.sqlite3", MIGRATIONS)
    t_ours_bulk = _append_all(db2, BATCH)
    t_plain_bulk = _plain(tmp_path / "plain2.sqlite3", stored, BATCH)

    # Verification of db2: the chain and checkpoints (one every 10,000 entries).
    data_dir = db2.path.parent
    key = cp.ensure_audit_key(data_dir)
    with db2.transaction() as conn:
        for seq in range(10_000, N + 1, 10_000):
            h, ts = conn.execute("SELECT entry_hash, ts_ms FROM audit_log WHERE seq = ?",
                                 (seq,)).fetchone()
            cp._insert_checkpoint(conn, key, seq, h, ts, purge_cut=False)
    start = time.perf_counter()
    report = cp.verify_log(db2, data_dir)
    t_verify = time.perf_counter() - start
    assert report.ok and report.entries == N, report
    fields = audit_crud._FIELDS
    encoded = [json.dumps([dict(zip(("seq", "ts_ms", "actor_user_id", "device_id", "action",
                                     "object_type", "object_id", "outcome", "source",
                                     "detail", "prev_hash"), r[:11], strict=True))[f]
                           for f in fields], separators=(",", ":"),
                          ensure_ascii=False).encode() for r in stored]
    start = time.perf_counter()
    for b in encoded:
        hashlib.sha256(b).hexdigest()
    t_sha = time.perf_counter() - start
    conn = db2.connection()
    start = time.perf_counter()
    for row in conn.execute("SELECT * FROM audit_log ORDER BY rowid"):
        dict(row)
    t_read = time.perf_counter() - start
    total_bytes = sum(len(b) for b in encoded)

    figures = {
        "entries": N, "canonical_bytes": total_bytes,
        "append_1_per_txn_s": round(t_ours_single, 2),
        "plain_1_per_txn_s": round(t_plain_single, 2),
        "append_ratio_1_per_txn": round(t_ours_single / t_plain_single, 2),
        "append_bulk_s": round(t_ours_bulk, 2), "plain_bulk_s": round(t_plain_bulk, 2),
        "append_ratio_bulk": round(t_ours_bulk / t_plain_bulk, 2),
        "append_per_entry_us": round(t_ours_single / N * 1e6, 1),
        "verify_s": round(t_verify, 2), "sha256_s": round(t_sha, 3),
        "verify_ratio_to_sha256": round(t_verify / t_sha, 1),
        "read_rows_s": round(t_read, 3), "verify_ratio_to_read": round(t_verify / t_read, 1),
    }
    print("\nAUDIT BENCH", json.dumps(figures))
    # Loose bounds: they catch a regression by an order of magnitude, not noise.
    assert figures["append_ratio_1_per_txn"] < 10
    assert figures["append_ratio_bulk"] < 40
    assert t_verify < 60
