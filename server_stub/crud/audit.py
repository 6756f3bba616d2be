"""The append-only, hash-chained audit log.

Each row's ``entry_hash`` is SHA-256 over a canonical JSON array of the row's fields in a
fixed order -- including its ``seq`` and the previous row's hash -- so editing a row,
deleting one (a gap in ``seq`` or a broken link) or swapping two (their ``seq`` is hashed)
is caught by ``verify_chain``. The last row's ``<seq>:<hash>`` is also kept in
``server_meta('audit_head')``, updated in the same transaction, so cutting off the tail is
caught too unless the attacker also rewrites the head; ``admin audit verify --expect-head``
checks against a head recorded elsewhere.

``append_audit`` must be called inside the caller's write transaction (``db.transaction()``),
so the audited change and its record commit or roll back together.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from server_stub.core.security import now_ms

GENESIS_HASH = "0" * 64
OUTCOMES = frozenset({"ok", "refused", "failed"})
_FIELDS = ("seq", "ts_ms", "actor_user_id", "device_id", "action", "object_type",
           "object_id", "outcome", "source", "detail", "prev_hash")


def canonical_detail(detail: Mapping[str, Any] | None) -> str | None:
    if detail is None:
        return None
    return json.dumps(dict(detail), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(row: Mapping[str, Any]) -> str:
    encoded = json.dumps([row[f] for f in _FIELDS], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _head(conn: sqlite3.Connection) -> tuple[int, str]:
    row = conn.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else purge_anchor(conn)


def append_audit(
    conn: sqlite3.Connection, *, actor_user_id: str | None, device_id: str | None,
    action: str, object_type: str | None, object_id: str | None, outcome: str,
    source: str, detail: Mapping[str, Any] | None = None,
) -> int:
    """Append one entry; returns its seq. ``source`` is where the request came from (client
    address, "admin-cli", "server"). ``detail`` is a small JSON object with no PHI."""
    if not conn.in_transaction:
        raise RuntimeError("append_audit must run inside the caller's write transaction")
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome must be one of {sorted(OUTCOMES)}")
    last_seq, last_hash = _head(conn)
    row = {
        "seq": last_seq + 1, "ts_ms": now_ms(), "actor_user_id": actor_user_id,
        "device_id": device_id, "action": action, "object_type": object_type,
        "object_id": object_id, "outcome": outcome, "source": source,
        "detail": canonical_detail(detail), "prev_hash": last_hash,
    }
    row["entry_hash"] = entry_hash(row)
    conn.execute(
        "INSERT INTO audit_log (seq, ts_ms, actor_user_id, device_id, action, object_type,"
        " object_id, outcome, source, detail, prev_hash, entry_hash) VALUES"
        " (:seq, :ts_ms, :actor_user_id, :device_id, :action, :object_type, :object_id,"
        " :outcome, :source, :detail, :prev_hash, :entry_hash)", row,
    )
    conn.execute(
        "INSERT INTO server_meta (key, value) VALUES ('audit_head', ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (f"{row['seq']}:{row['entry_hash']}",),
    )
    return row["seq"]


def find_client_entry(
    conn: sqlite3.Connection, device_id: str, device_seq: int,
) -> tuple[int, str | None] | None:
    """``(seq, entry_hash in detail)`` of the entry a device already uploaded with this
    ``device_seq`` (its own audit chain's number), or None."""
    row = conn.execute(
        "SELECT seq, json_extract(detail, '$.entry_hash') FROM audit_log"
        " WHERE device_id = ? AND detail IS NOT NULL"
        " AND json_extract(detail, '$.device_seq') = ? AND action LIKE 'client.%'"
        " ORDER BY seq LIMIT 1", (device_id, device_seq)).fetchone()
    return (row[0], row[1]) if row else None


def iter_entries(
    conn: sqlite3.Connection, *, after_seq: int = 0, limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    sql = "SELECT * FROM audit_log WHERE seq > ? ORDER BY seq"
    args: tuple[int, ...] = (after_seq,)
    if limit is not None:
        sql += " LIMIT ?"
        args = (after_seq, limit)
    for row in conn.execute(sql, args):
        yield dict(row)


def purge_anchor(conn: sqlite3.Connection) -> tuple[int, str]:
    """``(seq, entry_hash)`` of the latest purge cut (entries up to it were deleted), or
    ``(0, GENESIS_HASH)``."""
    row = conn.execute("SELECT seq, entry_hash FROM audit_checkpoints WHERE purge_cut = 1"
                       " ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    head: str  # "<seq>:<hash>" of the last good entry
    first_bad_seq: int | None = None  # seq of (or position right after) the first bad row
    problem: str = ""


def verify_chain(conn: sqlite3.Connection, expect_head: str | None = None) -> ChainReport:
    """Walk the log in ``seq`` order (``seq`` is the rowid). Each entry must have the next
    seq, link to its predecessor's hash, and hash to its own ``entry_hash``. After a
    retention purge the walk starts at the latest purge-cut checkpoint (its signature is
    checked by ``server_stub.core.audit_checkpoint.verify_log``)."""
    anchor_seq, anchor_hash = purge_anchor(conn)
    prev_hash, expected_seq, count = anchor_hash, anchor_seq + 1, 0
    head = f"{anchor_seq}:{anchor_hash}"
    for row in conn.execute("SELECT * FROM audit_log ORDER BY rowid"):
        entry = dict(row)
        seq = entry["seq"]
        if seq != expected_seq:
            problem = "entry missing before it" if seq > expected_seq else "entry out of order"
            return ChainReport(False, count, head, seq, problem)
        if entry["prev_hash"] != prev_hash:
            return ChainReport(False, count, head, seq, "link to previous entry broken")
        if entry_hash(entry) != entry["entry_hash"]:
            return ChainReport(False, count, head, seq, "entry content altered")
        prev_hash, expected_seq, count = entry["entry_hash"], seq + 1, count + 1
        head = f"{seq}:{prev_hash}"
    stored = conn.execute("SELECT value FROM server_meta WHERE key = 'audit_head'").fetchone()
    stored_head = stored[0] if stored else f"0:{GENESIS_HASH}"
    if stored_head != head:
        return ChainReport(False, count, head, expected_seq,
                           f"log ends at {head.split(':')[0]} but the recorded head is "
                           f"{stored_head.split(':')[0]} (entries cut off the end)")
    if expect_head is not None:
        # A head recorded earlier must still be in the chain (the log may have grown since).
        exp_seq, _, exp_hash = expect_head.partition(":")
        found = conn.execute("SELECT entry_hash FROM audit_log WHERE seq = ?",
                             (int(exp_seq) if exp_seq.isdigit() else -1,)).fetchone()
        if found is None or found[0] != exp_hash:
            return ChainReport(False, count, head, expected_seq,
                               f"expected head (entry {exp_seq}) is not in the chain")
    return ChainReport(True, count, head)
