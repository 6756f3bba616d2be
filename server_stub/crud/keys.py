"""One-time and fallback keys of devices (Olm session set-up), and claims on them."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from server_stub.core.security import now_ms


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    key: str
    signature: str
    fallback: bool


def add_one_time_keys(
    conn: sqlite3.Connection, device_id: str, keys: list[tuple[str, str, str]],
) -> int:
    """Insert (key_id, key, signature) rows; a key id already held is kept as it was (a
    re-upload after a lost response is harmless). Returns how many were new."""
    now = now_ms()
    added = 0
    for key_id, key, signature in keys:
        cur = conn.execute(
            "INSERT OR IGNORE INTO one_time_keys (device_id, key_id, key, signature, created_ms)"
            " VALUES (?, ?, ?, ?, ?)", (device_id, key_id, key, signature, now))
        added += cur.rowcount
    return added


def set_fallback_key(conn: sqlite3.Connection, device_id: str, key_id: str, key: str,
                     signature: str) -> None:
    conn.execute(
        "INSERT INTO fallback_keys (device_id, key_id, key, signature, created_ms)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET key_id = excluded.key_id,"
        " key = excluded.key, signature = excluded.signature, created_ms = excluded.created_ms",
        (device_id, key_id, key, signature, now_ms()))


def one_time_key_count(conn: sqlite3.Connection, device_id: str) -> int:
    return conn.execute("SELECT COUNT(*) FROM one_time_keys WHERE device_id = ?",
                        (device_id,)).fetchone()[0]


def has_fallback_key(conn: sqlite3.Connection, device_id: str) -> bool:
    return conn.execute("SELECT 1 FROM fallback_keys WHERE device_id = ?",
                        (device_id,)).fetchone() is not None


def claim_key(conn: sqlite3.Connection, device_id: str) -> StoredKey | None:
    """Take one one-time key (deleted: each is handed out once), else the fallback key (kept).
    Call inside a write transaction so two claimers never get the same key."""
    if not conn.in_transaction:
        raise RuntimeError("claim_key must run inside a write transaction")
    row = conn.execute(
        "SELECT key_id, key, signature FROM one_time_keys WHERE device_id = ?"
        " ORDER BY created_ms, key_id LIMIT 1", (device_id,)).fetchone()
    if row is not None:
        conn.execute("DELETE FROM one_time_keys WHERE device_id = ? AND key_id = ?",
                     (device_id, row[0]))
        return StoredKey(row[0], row[1], row[2], False)
    row = conn.execute("SELECT key_id, key, signature FROM fallback_keys WHERE device_id = ?",
                       (device_id,)).fetchone()
    return StoredKey(row[0], row[1], row[2], True) if row is not None else None
