"""Separation of duties: the audit policy and the two-person rule.

The policy is a server setting kept in ``server_meta('audit_policy')`` (JSON):

``export_approval``  an audit export (API or CLI) needs an IT admin's approval of the
                     auditor's request before it can be taken (once).
``policy_approval``  a change of this policy needs a second IT admin's approval.

Both are off by default. Who may do what (enforced by the routes and here):
auditors read, search, review and request exports, and cannot approve anything or manage
users and devices; IT admins manage users and devices (admin CLI), approve or deny requests
of *another* person, and cannot read, alter or delete audit data (no route does either).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from server_stub.core.db import Database
from server_stub.core.security import now_ms
from server_stub.crud.audit import append_audit

APPROVER_ROLE = "it_admin"


class PolicyRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class AuditPolicy:
    export_approval: bool = False
    policy_approval: bool = False


@dataclass(frozen=True)
class AuditRequest:
    id: int
    kind: str
    params: dict[str, Any]
    requested_by: str
    requested_ms: int
    state: str
    decided_by: str | None
    decided_ms: int | None

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


def get_policy(conn: sqlite3.Connection) -> AuditPolicy:
    row = conn.execute("SELECT value FROM server_meta WHERE key = 'audit_policy'").fetchone()
    if row is None:
        return AuditPolicy()
    data = json.loads(row[0])
    return AuditPolicy(bool(data.get("export_approval")), bool(data.get("policy_approval")))


def _set_policy(conn: sqlite3.Connection, policy: AuditPolicy) -> None:
    conn.execute("INSERT INTO server_meta (key, value) VALUES ('audit_policy', ?)"
                 " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                 (json.dumps(asdict(policy), sort_keys=True),))


def _request(conn: sqlite3.Connection, request_id: int) -> AuditRequest:
    row = conn.execute("SELECT * FROM audit_requests WHERE id = ?", (request_id,)).fetchone()
    if row is None:
        raise PolicyRefused(404, "not_found", "no such request")
    return AuditRequest(row["id"], row["kind"], json.loads(row["params"]), row["requested_by"],
                        row["requested_ms"], row["state"], row["decided_by"], row["decided_ms"])


def list_requests(conn: sqlite3.Connection, state: str | None = None) -> list[AuditRequest]:
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM audit_requests WHERE ? IS NULL OR state = ? ORDER BY id",
        (state, state))]
    return [_request(conn, i) for i in ids]


def _new_request(conn, kind: str, params: dict[str, Any], user_id: str) -> int:
    cur = conn.execute(
        "INSERT INTO audit_requests (kind, params, requested_by, requested_ms) VALUES (?,?,?,?)",
        (kind, json.dumps(params, sort_keys=True, separators=(",", ":")), user_id, now_ms()))
    return int(cur.lastrowid or 0)


def change_policy(db: Database, new: AuditPolicy, *, user_id: str | None, device_id: str | None,
                  source: str) -> tuple[AuditPolicy, int | None]:
    """Apply now (returns the policy and None) or, under ``policy_approval``, file a request
    for a second IT admin (returns the unchanged policy and the request id). The CLI
    (``user_id`` None) cannot file requests: under ``policy_approval`` it is refused."""
    with db.transaction() as conn:
        current = get_policy(conn)
        if current.policy_approval:
            if user_id is None:
                raise PolicyRefused(403, "approval_required",
                                    "policy changes need a second IT admin's approval: "
                                    "request the change through the API")
            request_id = _new_request(conn, "policy.change", asdict(new), user_id)
            append_audit(conn, actor_user_id=user_id, device_id=device_id,
                         action="policy.change.request", object_type="audit_request",
                         object_id=str(request_id), outcome="ok", source=source,
                         detail=asdict(new))
            return current, request_id
        _set_policy(conn, new)
        append_audit(conn, actor_user_id=user_id, device_id=device_id, action="policy.change",
                     object_type="policy", object_id="audit", outcome="ok", source=source,
                     detail={**{f"old_{k}": v for k, v in asdict(current).items()},
                             **asdict(new)})
    return new, None


def request_export(db: Database, params: dict[str, Any], *, user_id: str, device_id: str | None,
                   source: str) -> int | None:
    """None when no approval is needed (export at once); else the pending request's id."""
    with db.transaction() as conn:
        if not get_policy(conn).export_approval:
            return None
        request_id = _new_request(conn, "audit.export", params, user_id)
        append_audit(conn, actor_user_id=user_id, device_id=device_id,
                     action="audit.export.request", object_type="audit_request",
                     object_id=str(request_id), outcome="ok", source=source,
                     detail={"format": str(params.get("format"))})
    return request_id


def decide(db: Database, request_id: int, *, approve: bool, user_id: str, role: str,
           device_id: str | None, source: str) -> AuditRequest:
    """A second person approves or denies: an IT admin who is not the requester."""
    with db.transaction() as conn:
        req = _request(conn, request_id)
        if role != APPROVER_ROLE:
            raise PolicyRefused(403, "forbidden", "only an IT admin may approve or deny")
        if req.requested_by == user_id:
            raise PolicyRefused(403, "same_person", "a request needs a second person")
        if req.state != "pending":
            raise PolicyRefused(409, "not_pending", f"the request is {req.state}")
        state = "approved" if approve else "denied"
        if approve and req.kind == "policy.change":
            old = get_policy(conn)
            _set_policy(conn, AuditPolicy(**req.params))
            state = "used"
            append_audit(conn, actor_user_id=req.requested_by, device_id=None,
                         action="policy.change", object_type="policy", object_id="audit",
                         outcome="ok", source=source,
                         detail={**{f"old_{k}": v for k, v in asdict(old).items()},
                                 **req.params, "request_id": request_id,
                                 "approved_by": user_id})
        conn.execute("UPDATE audit_requests SET state = ?, decided_by = ?, decided_ms = ?"
                     " WHERE id = ?", (state, user_id, now_ms(), request_id))
        append_audit(conn, actor_user_id=user_id, device_id=device_id,
                     action="approval.grant" if approve else "approval.deny",
                     object_type="audit_request", object_id=str(request_id), outcome="ok",
                     source=source, detail={"kind": req.kind, "requested_by": req.requested_by})
        return _request(conn, request_id)


def take_export(conn: sqlite3.Connection, request_id: int, *, user_id: str | None
                ) -> AuditRequest:
    """Spend an approved export request (inside the caller's transaction). ``user_id`` is
    the requester taking it (None: the server operator's CLI, ``--approval ID``)."""
    req = _request(conn, request_id)
    if req.kind != "audit.export":
        raise PolicyRefused(409, "not_export", "this request is not an export")
    if user_id is not None and req.requested_by != user_id:
        raise PolicyRefused(403, "forbidden", "only the requester may take the export")
    if req.state != "approved":
        raise PolicyRefused(409, "not_approved", f"the request is {req.state}")
    conn.execute("UPDATE audit_requests SET state = 'used' WHERE id = ?", (request_id,))
    return req
