"""Audit trail: client-reported events, reading the log, checking its chain."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from server_stub.api.deps import (
    Auditor,
    Auth,
    Db,
    client_source,
)
from server_stub.api.errors import ApiError
from server_stub.crud import audit as audit_crud
from server_stub.models.auth import Strict

router = APIRouter(prefix="/v1/audit", tags=["audit"])

# Actions only the client can observe (docs/protocol.md, "Audit"). Server-side actions are
# recorded by the server itself and cannot be reported by a client.
CLIENT_ACTIONS = (
    "record.start", "record.stop", "file.download", "file.export", "file.print",
    "screen.share.start", "screen.share.stop", "break_glass", "session.lock", "session.unlock",
    "wipe.local", "policy.change", "image.open", "kiosk.attest", "image.export",
    "cache.rebuilt", "device.verify", "snapshot",
)
ShortText = Annotated[str, Field(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]


class ClientEvent(Strict):
    action: Literal[CLIENT_ACTIONS]  # type: ignore[valid-type]
    object_type: ShortText | None = None
    object_id: ShortText | None = None
    outcome: Literal["ok", "refused", "failed"] = "ok"
    detail: dict[str, ShortText | int | bool] | None = Field(default=None, max_length=16)


class Recorded(BaseModel):
    seq: int


class AuditEntry(BaseModel):
    seq: int
    ts_ms: int
    actor_user_id: str | None
    device_id: str | None
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    source: str
    detail: dict[str, Any] | None
    prev_hash: str
    entry_hash: str


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_after_seq: int


class ChainStatus(BaseModel):
    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None
    problem: str


@router.post("/events", response_model=Recorded, status_code=201)
def record_event(body: ClientEvent, request: Request, auth: Auth,
                 db: Db) -> Recorded:
    """Idempotent for entries of a device's own chain: one re-sent with a ``device_seq``
    already stored (and the same ``entry_hash``) gets the stored entry's seq back; the same
    ``device_seq`` with other content is ``409 audit_conflict``."""
    device_seq = (body.detail or {}).get("device_seq")
    with db.transaction() as conn:
        if isinstance(device_seq, int) and not isinstance(device_seq, bool):
            stored = audit_crud.find_client_entry(conn, auth.device_id, device_seq)
            if stored is not None:
                if stored[1] != (body.detail or {}).get("entry_hash"):
                    raise ApiError(409, "audit_conflict",
                                   "another entry was already stored with this device_seq")
                return Recorded(seq=stored[0])
        seq = audit_crud.append_audit(
            conn, actor_user_id=auth.user_id, device_id=auth.device_id,
            action=f"client.{body.action}", object_type=body.object_type,
            object_id=body.object_id, outcome=body.outcome, source=client_source(request),
            detail=body.detail)
    return Recorded(seq=seq)


def entry_model(row: dict[str, Any]) -> AuditEntry:
    detail = json.loads(row["detail"]) if row["detail"] else None
    return AuditEntry(**{**row, "detail": detail})


@router.get("", response_model=AuditPage)
def read_log(
    auth: Auditor, db: Db,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AuditPage:
    rows = list(audit_crud.iter_entries(db.connection(), after_seq=after_seq, limit=limit))
    return AuditPage(entries=[entry_model(r) for r in rows],
                     next_after_seq=rows[-1]["seq"] if rows else after_seq)


@router.get("/verify", response_model=ChainStatus)
def verify(auth: Auditor,
           db: Db) -> ChainStatus:
    report = audit_crud.verify_chain(db.connection())
    return ChainStatus(ok=report.ok, entries=report.entries, head=report.head,
                       first_bad_seq=report.first_bad_seq, problem=report.problem)
