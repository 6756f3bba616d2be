"""Signed checkpoints over the server audit chain, full verification, and retention purge.

The server's audit key (Ed25519) is generated into ``DATA/audit/checkpoint.key`` (mode
0600, directory 0700) on first use, like the TLS CA. A checkpoint is the head of the chain
at one moment, signed::

    SC-AUDIT-CHECKPOINT-v1\\n<seq>:<entry_hash>:<entry_ts_ms>:<created_ms>:<purge_cut 0|1>

Checkpoints are written periodically by the running server (``audit_lifespan`` in
``server_stub.api.routes.audit``), by ``admin audit checkpoint``, and at every purge cut.
Their public value: a checkpoint copied off the server (printed, mailed to the auditor) pins
everything before it, since rewriting the chain consistently needs the audit key too.

A purge deletes the entries older than the retention period up to a new purge-cut
checkpoint, in one transaction with its own audit entry; verification then starts from the
cut (the first remaining entry links to the cut's hash).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server_stub.core.db import Database
from server_stub.core.security import now_ms, verify_ed25519
from server_stub.crud import audit as audit_crud

CONTEXT = b"SC-AUDIT-CHECKPOINT-v1\n"
DAY_MS = 86_400_000
# Retention may not be set below six years (HIPAA's documentation rule, 45 CFR 164.316).
MIN_RETENTION_DAYS = 6 * 365
DEFAULT_RETENTION_DAYS = 6 * 366
CHECKPOINT_INTERVAL_S = 3600.0


def key_path(data_dir: Path) -> Path:
    return data_dir / "audit" / "checkpoint.key"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def ensure_audit_key(data_dir: Path) -> Ed25519PrivateKey:
    """The server's audit signing key, created on first use (0600)."""
    path = key_path(data_dir)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, path)
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    return _b64(key.public_key().public_bytes(serialization.Encoding.Raw,
                                              serialization.PublicFormat.Raw))


def checkpoint_message(seq: int, entry_hash: str, entry_ts_ms: int, created_ms: int,
                       purge_cut: bool) -> bytes:
    return CONTEXT + f"{seq}:{entry_hash}:{entry_ts_ms}:{created_ms}:{int(purge_cut)}".encode()


@dataclass(frozen=True)
class Checkpoint:
    id: int
    seq: int
    entry_hash: str
    entry_ts_ms: int
    created_ms: int
    public_key: str
    signature: str
    purge_cut: bool

    @property
    def head(self) -> str:
        return f"{self.seq}:{self.entry_hash}"

    def verifies(self, public_key: str) -> bool:
        return self.public_key == public_key and verify_ed25519(
            public_key, checkpoint_message(self.seq, self.entry_hash, self.entry_ts_ms,
                                           self.created_ms, self.purge_cut), self.signature)


def list_checkpoints(conn) -> list[Checkpoint]:
    return [Checkpoint(r["id"], r["seq"], r["entry_hash"], r["entry_ts_ms"], r["created_ms"],
                       r["public_key"], r["signature"], bool(r["purge_cut"]))
            for r in conn.execute("SELECT * FROM audit_checkpoints ORDER BY id")]


def _insert_checkpoint(conn, key: Ed25519PrivateKey, seq: int, entry_hash: str,
                       entry_ts_ms: int, *, purge_cut: bool) -> Checkpoint:
    created = now_ms()
    sig = _b64(key.sign(checkpoint_message(seq, entry_hash, entry_ts_ms, created, purge_cut)))
    pub = public_key_b64(key)
    cur = conn.execute(
        "INSERT INTO audit_checkpoints (seq, entry_hash, entry_ts_ms, created_ms, public_key,"
        " signature, purge_cut) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, entry_hash, entry_ts_ms, created, pub, sig, int(purge_cut)))
    return Checkpoint(int(cur.lastrowid or 0), seq, entry_hash, entry_ts_ms, created, pub, sig,
                      purge_cut)


def create_checkpoint(db: Database, data_dir: Path) -> Checkpoint | None:
    """Sign the current head; None when the log is empty or the head is already signed."""
    key = ensure_audit_key(data_dir)
    with db.transaction() as conn:
        head = conn.execute("SELECT seq, entry_hash, ts_ms FROM audit_log"
                            " ORDER BY seq DESC LIMIT 1").fetchone()
        if head is None:
            return None
        last = conn.execute("SELECT MAX(seq) FROM audit_checkpoints").fetchone()[0]
        if last is not None and last >= head[0]:
            return None
        return _insert_checkpoint(conn, key, head[0], head[1], head[2], purge_cut=False)


@dataclass(frozen=True)
class LogReport:
    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    problem: str = ""
    checkpoints: int = 0
    anchor_seq: int = 0  # verification started after this entry (0: from genesis)


def verify_log(db: Database, data_dir: Path, expect_head: str | None = None) -> LogReport:
    """The chain (``crud.audit.verify_chain``) plus every checkpoint: its signature under
    the server's audit key, and -- for those still covering stored entries -- that the entry
    at its seq still has the signed hash. A chain rewritten consistently after a checkpoint
    (hashes recomputed) is caught here, between the last matching checkpoint and this one."""
    conn = db.connection()
    pub = public_key_b64(ensure_audit_key(data_dir))
    checkpoints = list_checkpoints(conn)
    anchor_seq, _ = audit_crud.purge_anchor(conn)
    for cp in checkpoints:
        if not cp.verifies(pub):
            return LogReport(False, 0, "", cp.seq + (1 if cp.purge_cut else 0),
                             f"checkpoint {cp.id} (entry {cp.seq}) signature invalid",
                             len(checkpoints), anchor_seq)
    chain = audit_crud.verify_chain(conn, expect_head=expect_head)
    if not chain.ok:
        return LogReport(False, chain.entries, chain.head, chain.first_bad_seq, chain.problem,
                         len(checkpoints), anchor_seq)
    good_after = anchor_seq
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if cp.seq <= anchor_seq:
            continue
        row = conn.execute("SELECT entry_hash FROM audit_log WHERE seq = ?", (cp.seq,)).fetchone()
        if row is None or row[0] != cp.entry_hash:
            return LogReport(
                False, chain.entries, chain.head, good_after + 1,
                f"entries {good_after + 1}..{cp.seq} differ from signed checkpoint {cp.id}"
                " (log rewritten)", len(checkpoints), anchor_seq)
        good_after = cp.seq
    return LogReport(True, chain.entries, chain.head, checkpoints=len(checkpoints),
                     anchor_seq=anchor_seq)


@dataclass(frozen=True)
class PurgeResult:
    purged: int
    through_seq: int
    cutoff_ms: int
    checkpoint: Checkpoint | None


class PurgeRefused(Exception):
    pass


def purge(db: Database, data_dir: Path, *, retention_days: int = DEFAULT_RETENTION_DAYS,
          now: int | None = None, source: str = "admin-cli") -> PurgeResult:
    """Delete entries older than ``retention_days`` (at least six years). The log must
    verify first (a purge never destroys evidence of tampering); the cut is signed as a
    purge-cut checkpoint and the purge itself is the next audit entry."""
    if retention_days < MIN_RETENTION_DAYS:
        raise PurgeRefused(f"audit retention may not be below {MIN_RETENTION_DAYS} days")
    cutoff = (now if now is not None else now_ms()) - retention_days * DAY_MS
    report = verify_log(db, data_dir)
    if not report.ok:
        raise PurgeRefused(f"the audit log does not verify (entry {report.first_bad_seq}: "
                           f"{report.problem}); nothing purged")
    key = ensure_audit_key(data_dir)
    with db.transaction() as conn:
        last = conn.execute("SELECT seq, entry_hash, ts_ms FROM audit_log WHERE ts_ms < ?"
                            " ORDER BY seq DESC LIMIT 1", (cutoff,)).fetchone()
        if last is None:
            return PurgeResult(0, 0, cutoff, None)
        cp = _insert_checkpoint(conn, key, last[0], last[1], last[2], purge_cut=True)
        purged = conn.execute("DELETE FROM audit_log WHERE seq <= ?", (last[0],)).rowcount
        audit_crud.append_audit(
            conn, actor_user_id=None, device_id=None, action="audit.purge",
            object_type="audit_log", object_id=str(last[0]), outcome="ok", source=source,
            detail={"through_seq": last[0], "entries": purged, "cutoff_ms": cutoff,
                    "retention_days": retention_days, "checkpoint_id": cp.id})
    return PurgeResult(purged, last[0], cutoff, cp)
