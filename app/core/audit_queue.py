"""Client audit entries: their canonical encoding, hash chain and signature, and the check.

Pure (stdlib only). The I/O is in :mod:`app.storage.audit_queue` (the encrypted cache) and
:mod:`app.services.audit` (the one ``record`` call and the upload loop).

Each entry the device records gets the next *device sequence number* (1, 2, ... per cache,
never reused), the previous entry's hash, and

    entry_hash = SHA-256( canonical JSON array [v, device_id, device_seq, ts_ms, action,
                          object_type, object_id, outcome, detail, prev_hash] )
    signature  = Ed25519(device identity, "SC-CLIENT-AUDIT-v1\\n" + entry_hash)

``detail`` is the caller's detail only (sorted keys); the first ``prev_hash`` is 64 zeros.
Everything hashed is also sent to the server (the chain fields go in the event's ``detail``),
so an auditor holding the device's public key can re-check a device's entries from the
server's log alone, and a gap in ``device_seq`` there shows an entry that never arrived.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

ENTRY_VERSION = 1
GENESIS_HASH = "0" * 64
SIGNATURE_CONTEXT = b"SC-CLIENT-AUDIT-v1\n"

# What the client may report (docs/protocol.md, "Audit"); the server refuses anything else,
# and a test keeps this list inside the server's.
CLIENT_ACTIONS = frozenset({
    "record.start", "record.stop", "file.send", "file.download", "file.export", "file.print",
    "screen.share.start", "screen.share.stop", "break_glass", "session.lock",
    "session.unlock", "session.pin_set", "wipe.local", "policy.change", "image.open",
    "image.export",
    "kiosk.attest", "cache.rebuilt", "device.verify", "snapshot", "message.recall",
    "update.check", "record.purge", "room.patient_link", "patient.open",
    "call.admit", "call.deny", "call.invite", "call.drop",
})
OUTCOMES = frozenset({"ok", "refused", "failed"})

# The server's limits on a client event's detail (server_stub/api/routes/audit.py).
MAX_DETAIL_ENTRIES = 16
MAX_TEXT = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Detail keys the chain itself uses; a caller's detail may not use them.
CHAIN_KEYS = ("device_seq", "device_ts_ms", "prev_hash", "entry_hash", "signature")
MAX_CALLER_DETAIL = MAX_DETAIL_ENTRIES - len(CHAIN_KEYS)

DetailValue = str | int | bool
Detail = Mapping[str, DetailValue]


class AuditEntryError(ValueError):
    """A caller asked for an entry the server would refuse (a programming error: raised at
    ``record`` time, so it never becomes an upload that fails forever)."""


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise AuditEntryError(f"{name} must be a string")
    if len(value) > MAX_TEXT or _CONTROL.search(value):
        raise AuditEntryError(f"{name} must be at most {MAX_TEXT} printable characters")


def validate(action: str, object_type: str | None, object_id: str | None, outcome: str,
             detail: Detail | None) -> dict[str, DetailValue]:
    """The caller's detail as a plain dict, or :class:`AuditEntryError`. Messages name the
    field, never its value (which could be anything a caller passed by mistake)."""
    if action not in CLIENT_ACTIONS:
        raise AuditEntryError(f"unknown client audit action {action!r}")
    if outcome not in OUTCOMES:
        raise AuditEntryError("outcome must be ok, refused or failed")
    for name, value in (("object_type", object_type), ("object_id", object_id)):
        if value is not None:
            _check_text(name, value)
    clean: dict[str, DetailValue] = {}
    for key, value in (detail or {}).items():
        _check_text("detail key", key)
        if key in CHAIN_KEYS:
            raise AuditEntryError(f"detail key {key!r} is reserved for the audit chain")
        if isinstance(value, str):
            _check_text(f"detail[{key}]", value)
        elif not isinstance(value, int | bool):
            raise AuditEntryError(f"detail[{key}] must be str, int or bool")
        clean[key] = value
    if len(clean) > MAX_CALLER_DETAIL:
        raise AuditEntryError(f"at most {MAX_CALLER_DETAIL} detail entries")
    return clean


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One signed entry of the device's chain. Identifiers and codes only: no PHI."""

    device_id: str
    device_seq: int
    ts_ms: int
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    detail: dict[str, DetailValue]
    prev_hash: str
    entry_hash: str = ""
    signature: str = ""

    def canonical(self) -> bytes:
        return json.dumps(
            [ENTRY_VERSION, self.device_id, self.device_seq, self.ts_ms, self.action,
             self.object_type, self.object_id, self.outcome,
             dict(sorted(self.detail.items())), self.prev_hash],
            separators=(",", ":"), ensure_ascii=False,
        ).encode()

    def computed_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def signed_message(self) -> bytes:
        return SIGNATURE_CONTEXT + self.entry_hash.encode()

    def to_bytes(self) -> bytes:
        """The stored form (a JSON object; the hash does not depend on it)."""
        return json.dumps({
            "v": ENTRY_VERSION, "device_id": self.device_id, "device_seq": self.device_seq,
            "ts_ms": self.ts_ms, "action": self.action, "object_type": self.object_type,
            "object_id": self.object_id, "outcome": self.outcome, "detail": self.detail,
            "prev_hash": self.prev_hash, "entry_hash": self.entry_hash,
            "signature": self.signature,
        }, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> AuditEntry:
        """Raises ValueError for anything that is not a stored entry."""
        try:
            d = json.loads(raw)
            if d["v"] != ENTRY_VERSION or not isinstance(d["detail"], dict):
                raise ValueError("not a v1 entry")
            return cls(str(d["device_id"]), int(d["device_seq"]), int(d["ts_ms"]),
                       str(d["action"]), d["object_type"], d["object_id"], str(d["outcome"]),
                       dict(d["detail"]), str(d["prev_hash"]), str(d["entry_hash"]),
                       str(d["signature"]))
        except (KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError(f"stored audit entry unreadable ({exc.__class__.__name__})") from None

    def server_detail(self) -> dict[str, DetailValue]:
        """``detail`` for POST /v1/audit/events: the chain fields plus the caller's."""
        return {**self.detail, "device_seq": self.device_seq, "device_ts_ms": self.ts_ms,
                "prev_hash": self.prev_hash, "entry_hash": self.entry_hash,
                "signature": self.signature}


def seal(entry: AuditEntry, sign: Callable[[bytes], str]) -> AuditEntry:
    """The entry with its hash and the device's signature filled in."""
    hashed = replace(entry, entry_hash=entry.computed_hash(), signature="")
    return replace(hashed, signature=sign(hashed.signed_message()))


@dataclass(frozen=True, slots=True)
class QueuedAudit:
    """One row of the device's queue: ``seq`` is the device sequence number, ``payload``
    the stored entry (:meth:`AuditEntry.to_bytes`)."""

    seq: int  # local, increasing: the order they happened in
    kind: str  # the action, e.g. "session.lock"
    payload: bytes
    created_ms: int


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last entry appended (kept after its row is uploaded and dropped)."""

    device_seq: int = 0
    entry_hash: str = GENESIS_HASH

    def to_bytes(self) -> bytes:
        return f"{self.device_seq}:{self.entry_hash}".encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> ChainHead:
        """None (nothing recorded yet) is the genesis head."""
        if raw is None:
            return cls()
        seq, _, digest = raw.decode("ascii", "replace").partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise ValueError("stored audit chain head unreadable")
        return cls(int(seq), digest)


WIPE_ACK_CONTEXT = "SC-WIPE-ACK-v2"


def wipe_ack_message(device_id: str, order_id: str, ts_ms: int, head: ChainHead | None,
                     ) -> bytes:
    """What a device signs to acknowledge a wipe order (docs/protocol.md, "Device status
    and orders"): the order, and the final head of its audit chain -- the last entry it
    appended before erasing -- so the server knows where the chain ends and names any
    entries up to it that never arrived. ``None`` (the device could not read its log) is
    signed as ``unknown``."""
    final = f"{head.device_seq}:{head.entry_hash}" if head is not None else "unknown"
    return "\n".join([WIPE_ACK_CONTEXT, device_id, order_id, str(ts_ms), final]).encode()


@dataclass
class ChainReport:
    ok: bool = True
    entries: int = 0
    first_bad_seq: int | None = None
    problem: str = ""
    problems: list[tuple[int, str]] = field(default_factory=list)


def verify_chain(
    rows: Iterable[QueuedAudit], *, anchor: ChainHead, head: ChainHead,
    verify_signature: Callable[[bytes, str], bool], device_id: str | None = None,
) -> ChainReport:
    """Check the queued rows (in ``seq`` order) as a chain.

    ``anchor`` is the last entry before the first row (the upload watermark: rows up to it
    were uploaded and dropped); ``head`` the last entry appended. Caught: an edited row (its
    hash or signature), a row moved or renumbered (``device_seq`` is hashed and must equal
    the row's seq), a deleted row (a gap, or a broken ``prev_hash``), a cut-off tail (the
    last row is not the head) and rows signed by another key or device.
    """
    report = ChainReport()
    expected_seq, expected_prev = anchor.device_seq + 1, anchor.entry_hash

    def bad(seq: int, problem: str) -> None:
        if report.ok:
            report.ok, report.first_bad_seq, report.problem = False, seq, problem
        report.problems.append((seq, problem))

    for row in rows:
        report.entries += 1
        try:
            entry = AuditEntry.from_bytes(row.payload)
        except ValueError:
            bad(row.seq, "unreadable entry")
            expected_seq, expected_prev = row.seq + 1, ""
            continue
        if row.seq != expected_seq:
            bad(row.seq, f"expected entry {expected_seq} (missing or moved entries)")
        if entry.device_seq != row.seq or entry.action != row.kind:
            bad(row.seq, "row does not match its entry (moved or edited)")
        if device_id is not None and entry.device_id != device_id:
            bad(row.seq, "entry of another device")
        if entry.prev_hash != expected_prev:
            bad(row.seq, "previous-hash link broken")
        if entry.computed_hash() != entry.entry_hash:
            bad(row.seq, "entry edited (hash mismatch)")
        elif not verify_signature(entry.signed_message(), entry.signature):
            bad(row.seq, "signature invalid")
        expected_seq, expected_prev = row.seq + 1, entry.entry_hash
    last = ChainHead(expected_seq - 1, expected_prev)
    if last != head:
        bad(head.device_seq, "last entry is not the recorded head (entries cut off or added)")
    return report
