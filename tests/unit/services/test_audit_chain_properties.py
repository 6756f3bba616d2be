"""Property: any change to the stored chain -- a field edited, a row deleted, two rows
swapped, a row renumbered -- is caught by the check, and an untouched chain always passes."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.audit_queue import (
    AuditEntry,
    ChainHead,
    QueuedAudit,
    seal,
    verify_chain,
)
from app.crypto.identity import DeviceIdentity, verify_ed25519

IDENTITY = DeviceIdentity.generate()
ACTIONS = ["session.lock", "session.unlock", "file.export", "snapshot"]


def build(n: int, actions: list[str]) -> tuple[list[QueuedAudit], ChainHead]:
    rows, prev = [], "0" * 64
    for i in range(n):
        entry = seal(AuditEntry(IDENTITY.device_id, i + 1, 1000 + i, actions[i % len(actions)],
                                None, f"obj-{i}", "ok", {"n": i}, prev), IDENTITY.sign)
        rows.append(QueuedAudit(i + 1, entry.action, entry.to_bytes(), entry.ts_ms))
        prev = entry.entry_hash
    return rows, ChainHead(n, prev)


def check(rows, head):
    return verify_chain(rows, anchor=ChainHead(), head=head, device_id=IDENTITY.device_id,
                        verify_signature=lambda m, s: verify_ed25519(IDENTITY.ed25519, m, s))


FIELD_EDITS = {
    "ts_ms": lambda v: v + 1,
    "action": lambda v: "file.print",
    "object_id": lambda v: v + "x",
    "outcome": lambda v: "failed",
    "detail": lambda v: {**v, "n": v["n"] + 1},
    "prev_hash": lambda v: "f" * 64,
    "device_id": lambda v: v + "Z",
}


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 8), actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=4),
       data=st.data())
def test_every_tampering_is_caught(n, actions, data):
    rows, head = build(n, actions)
    assert check(rows, head).ok
    kind = data.draw(st.sampled_from(["edit", "delete", "swap", "renumber"]))
    i = data.draw(st.integers(0, n - 1))
    if kind == "edit":
        name = data.draw(st.sampled_from(sorted(FIELD_EDITS)))
        payload = json.loads(rows[i].payload)
        payload[name] = FIELD_EDITS[name](payload[name])
        rows[i] = QueuedAudit(rows[i].seq, rows[i].kind, json.dumps(payload).encode(),
                              rows[i].created_ms)
    elif kind == "delete":
        del rows[i]
    elif kind == "swap":
        if n < 2:
            return
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
        a, b = rows[i], rows[j]
        rows[i] = QueuedAudit(a.seq, b.kind, b.payload, b.created_ms)
        rows[j] = QueuedAudit(b.seq, a.kind, a.payload, a.created_ms)
    else:
        new_seq = data.draw(st.integers(0, 20).filter(lambda s: s != rows[i].seq))
        rows[i] = QueuedAudit(new_seq, rows[i].kind, rows[i].payload, rows[i].created_ms)
        rows.sort(key=lambda r: r.seq)
    assert not check(rows, head).ok
