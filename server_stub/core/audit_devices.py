"""Verifying each device's own audit chain from the server's log.

A client entry (``client.<action>``) carries its chain fields in ``detail``: ``device_seq``,
``device_ts_ms``, ``prev_hash``, ``entry_hash``, ``signature`` (app/core/audit_queue.py;
docs/protocol.md, "Audit"). The server re-computes each entry's hash from what it stored::

    SHA-256( JSON [1, device_id, device_seq, device_ts_ms, action, object_type, object_id,
                   outcome, caller detail (sorted keys), prev_hash] )

and checks the device's Ed25519 signature over ``SC-CLIENT-AUDIT-v1\\n<entry_hash>`` with
the key the device enrolled with. Per device it reports: entries whose hash or signature
does not check, broken ``prev_hash`` links, and gaps (``device_seq`` numbers that never
arrived -- entries deleted on the device or held back). A gap at the end cannot be seen
(the device may simply not have uploaded yet); ``last_seq`` is reported for comparison
with the device's own head -- except for a wiped device: its signed wipe acknowledgement
(``device.wipe_ack``) carries the final head of its chain (``audit_seq``/``audit_hash`` in
its detail), so entries up to that head that never arrived are a named gap, the stored
entry at the head must have the head's hash, and nothing may follow it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from server_stub.core.security import verify_ed25519
from server_stub.crud import audit as audit_crud

ENTRY_VERSION = 1
GENESIS_HASH = "0" * 64
SIGNATURE_CONTEXT = b"SC-CLIENT-AUDIT-v1\n"
CHAIN_KEYS = ("device_seq", "device_ts_ms", "prev_hash", "entry_hash", "signature")
WIPE_ACK_CONTEXT = "SC-WIPE-ACK-v2"


def wipe_ack_message(device_id: str, order_id: str, ts_ms: int,
                     head: tuple[int, str] | None) -> bytes:
    """What a device signs to acknowledge a wipe order: the order and its audit chain's
    final head (``None``, signed as ``unknown``: the device could not read its log). Same
    bytes as ``app.core.audit_queue.wipe_ack_message``."""
    final = f"{head[0]}:{head[1]}" if head is not None else "unknown"
    return "\n".join([WIPE_ACK_CONTEXT, device_id, order_id, str(ts_ms), final]).encode()


# A device under a wipe order uploads its own chain entries on its key proof alone, until it
# acknowledges. A device that never does (a thief keeping it from wiping) may not fill the
# log: at most this many entries after the order. The client's own queue is far shorter
# (it sends for at most 10 s).
MAX_ENTRIES_UNDER_WIPE_ORDER = 10_000


def final_uploads_left(conn: sqlite3.Connection, device_id: str) -> int:
    """How many more entries a device under a wipe order may upload."""
    row = conn.execute("SELECT max(seq) FROM audit_log WHERE action = 'device.wipe'"
                       " AND object_id = ?", (device_id,)).fetchone()
    since = row[0] if row and row[0] is not None else 0
    taken = conn.execute("SELECT count(*) FROM audit_log WHERE device_id = ? AND seq > ?"
                         " AND action LIKE 'client.%'", (device_id, since)).fetchone()[0]
    return MAX_ENTRIES_UNDER_WIPE_ORDER - taken


def final_head_problem(conn: sqlite3.Connection, device_id: str, head: tuple[int, str] | None,
                       ) -> str | None:
    """Why the server refuses ``head`` as the end of this device's chain, or None. It
    cannot be behind an entry the device already uploaded, and where the entry at the head
    arrived, its hash must be the head's. (A head past the uploaded entries is taken: the
    entries in between are the gap the check then names.)"""
    if head is None:
        return None
    seq, digest = head
    row = conn.execute(
        "SELECT max(json_extract(detail, '$.device_seq')) FROM audit_log"
        " WHERE device_id = ? AND action LIKE 'client.%' AND detail IS NOT NULL",
        (device_id,)).fetchone()
    uploaded = row[0] if row and isinstance(row[0], int) else 0
    if seq < uploaded:
        return f"the audit head {seq} is behind entry {uploaded}, already uploaded"
    if seq == 0:
        return None if digest == GENESIS_HASH else "an empty chain's head is the genesis hash"
    stored = audit_crud.find_client_entry(conn, device_id, seq)
    if stored is not None and stored[1] != digest:
        return f"the audit head's hash is not that of entry {seq}"
    return None


def final_heads(conn: sqlite3.Connection, device_id: str | None = None,
                ) -> dict[str, tuple[int, str]]:
    """device_id -> the final head its (latest) wipe acknowledgement recorded."""
    sql = ("SELECT device_id, json_extract(detail, '$.audit_seq'),"
           " json_extract(detail, '$.audit_hash') FROM audit_log"
           " WHERE action = 'device.wipe_ack' AND device_id IS NOT NULL")
    args: tuple[str, ...] = ()
    if device_id is not None:
        sql += " AND device_id = ?"
        args = (device_id,)
    heads: dict[str, tuple[int, str]] = {}
    for dev, seq, digest in conn.execute(sql + " ORDER BY seq", args):
        if isinstance(seq, int) and isinstance(digest, str):
            heads[dev] = (seq, digest)
    return heads


def client_entry_hash(device_id: str, detail: dict[str, Any], action: str,
                      object_type: str | None, object_id: str | None, outcome: str) -> str:
    caller = {k: v for k, v in sorted(detail.items()) if k not in CHAIN_KEYS}
    encoded = json.dumps(
        [ENTRY_VERSION, device_id, detail["device_seq"], detail["device_ts_ms"], action,
         object_type, object_id, outcome, caller, detail["prev_hash"]],
        separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


@dataclass
class DeviceChainReport:
    device_id: str
    user_id: str | None
    entries: int = 0
    first_seq: int = 0
    last_seq: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # inclusive missing ranges
    problems: list[tuple[int, str]] = field(default_factory=list)  # (device_seq, what)
    unsigned: list[int] = field(default_factory=list)  # server seqs without chain fields
    final_seq: int | None = None  # the chain's end, from the device's wipe acknowledgement

    @property
    def ok(self) -> bool:
        return not self.gaps and not self.problems and not self.unsigned

    def summary(self) -> str:
        if self.ok:
            closed = (f"; closed by the wipe acknowledgement at {self.final_seq}"
                      if self.final_seq is not None else "")
            return (f"OK: {self.entries} entries, device_seq {self.first_seq}..{self.last_seq}"
                    + closed)
        parts = [f"missing {a}" if a == b else f"missing {a}..{b}" for a, b in self.gaps]
        parts += [f"entry {s}: {p}" for s, p in self.problems]
        if self.unsigned:
            parts.append(f"{len(self.unsigned)} unsigned entries (server entries "
                         f"{self.unsigned[0]}..{self.unsigned[-1]})")
        return "BROKEN: " + "; ".join(parts)


def _rows(conn: sqlite3.Connection, device_id: str | None):
    sql = ("SELECT seq, device_id, actor_user_id, action, object_type, object_id, outcome,"
           " detail FROM audit_log WHERE action LIKE 'client.%' AND device_id IS NOT NULL")
    args: tuple[str, ...] = ()
    if device_id is not None:
        sql += " AND device_id = ?"
        args = (device_id,)
    return conn.execute(sql + " ORDER BY device_id, seq", args)


def verify_devices(conn: sqlite3.Connection, device_id: str | None = None,
                   ) -> list[DeviceChainReport]:
    """One report per device that uploaded entries (or only ``device_id``)."""
    keys = {r[0]: r[1] for r in conn.execute("SELECT device_id, ed25519 FROM devices")}
    purged = audit_crud.purge_anchor(conn)[0] > 0
    heads = final_heads(conn, device_id)
    by_device: dict[str, list[tuple[int, dict[str, Any], Any]]] = {}
    reports: dict[str, DeviceChainReport] = {}
    for row in _rows(conn, device_id):
        dev = row["device_id"]
        report = reports.setdefault(dev, DeviceChainReport(dev, row["actor_user_id"]))
        detail = json.loads(row["detail"]) if row["detail"] else {}
        if not all(k in detail for k in CHAIN_KEYS) or not isinstance(
                detail.get("device_seq"), int):
            report.unsigned.append(row["seq"])
            continue
        by_device.setdefault(dev, []).append((detail["device_seq"], detail, row))
    for dev, items in by_device.items():
        report = reports[dev]
        items.sort(key=lambda item: item[0])
        report.entries = len(items)
        report.first_seq, report.last_seq = items[0][0], items[-1][0]
        # After a retention purge the device's oldest entries may be gone: start where the
        # stored ones start. Otherwise a device's chain starts at 1 with the genesis hash.
        expected_seq = items[0][0] if purged else 1
        expected_prev = items[0][1]["prev_hash"] if purged else GENESIS_HASH
        key = keys.get(dev)
        for seq, detail, row in items:
            if seq > expected_seq:
                report.gaps.append((expected_seq, seq - 1))
            elif seq < expected_seq:
                report.problems.append((seq, "device_seq stored twice"))
                continue
            if seq == expected_seq and detail["prev_hash"] != expected_prev:
                report.problems.append((seq, "previous-hash link broken"))
            action = row["action"].removeprefix("client.")
            computed = client_entry_hash(dev, detail, action, row["object_type"],
                                         row["object_id"], row["outcome"])
            if computed != detail["entry_hash"]:
                report.problems.append((seq, "entry altered (hash mismatch)"))
            elif key is None or not verify_ed25519(
                    key, SIGNATURE_CONTEXT + detail["entry_hash"].encode(),
                    str(detail["signature"])):
                report.problems.append((seq, "signature invalid for the device key"))
            expected_seq, expected_prev = seq + 1, detail["entry_hash"]
    for dev, (head_seq, head_hash) in heads.items():
        _close(reports, by_device.get(dev, []), dev, head_seq, head_hash, conn)
    return sorted(reports.values(), key=lambda r: r.device_id)


def _close(reports: dict[str, DeviceChainReport], items: list, dev: str, head_seq: int,
           head_hash: str, conn: sqlite3.Connection) -> None:
    """Check a wiped device's chain against the final head its acknowledgement carried."""
    report = reports.get(dev)
    if report is None:  # nothing uploaded at all
        if head_seq == 0:
            return
        row = conn.execute("SELECT user_id FROM devices WHERE device_id = ?", (dev,)).fetchone()
        report = reports[dev] = DeviceChainReport(dev, row[0] if row else None)
    report.final_seq = head_seq
    if report.last_seq < head_seq:
        # Recorded before the wipe, never uploaded: the device's queue was erased with it.
        report.gaps.append((report.last_seq + 1, head_seq))
    for seq, detail, _row in items:
        if seq == head_seq and detail["entry_hash"] != head_hash:
            report.problems.append((seq, "not the final head the wipe acknowledgement names"))
        elif seq > head_seq:
            report.problems.append((seq, "entry after the wipe acknowledgement's final head"))
