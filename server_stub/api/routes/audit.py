"""Audit trail: client-reported events, reading and searching the log, checking its chain
and every device's chain, anomaly alerts, exports under the two-person rule.

Roles (separation of duties, server_stub/core/audit_policy.py): everything that reads audit
data is for the ``auditor`` role only; approving a request is for an ``it_admin`` who is
not the requester; nothing here alters or deletes an entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from server_stub.api.deps import (
    AuthContext,
    Db,
    Settings,
    authenticated,
    client_source,
    device_proof,
    get_db,
    require_role,
)
from server_stub.api.errors import ApiError
from server_stub.core import audit_checkpoint, audit_devices, audit_policy
from server_stub.core.audit_anomaly import find_alerts
from server_stub.core.audit_devices import verify_devices
from server_stub.core.audit_export import MEDIA_TYPES, export
from server_stub.core.audit_query import AuditFilter, search, usernames
from server_stub.crud import audit as audit_crud
from server_stub.crud import devices as devices_crud
from server_stub.models.auth import Strict

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def audit_lifespan(app: Any) -> AsyncIterator[None]:
    """Creates the audit key on start and signs a checkpoint of the head every
    ``audit_checkpoint_interval_s`` (default an hour) when the log has grown."""
    settings = app.state.settings
    interval = float(settings.audit_checkpoint_interval_s)
    await run_in_threadpool(audit_checkpoint.ensure_audit_key, settings.data_dir)

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await run_in_threadpool(audit_checkpoint.create_checkpoint, app.state.db,
                                        settings.data_dir)
            except Exception as exc:  # keep going; the next round retries
                log.warning("audit checkpoint failed: %s", exc.__class__.__name__)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()


router = APIRouter(prefix="/v1/audit", tags=["audit"], lifespan=audit_lifespan)
Auditor = Annotated[AuthContext, Depends(require_role("auditor"))]
ItAdmin = Annotated[AuthContext, Depends(require_role("it_admin"))]
Staff = Annotated[AuthContext, Depends(require_role("auditor", "it_admin"))]

# Actions only the client can observe (docs/protocol.md, "Audit"). Server-side actions are
# recorded by the server itself and cannot be reported by a client.
CLIENT_ACTIONS = (
    "record.start", "record.stop", "file.send", "file.download", "file.export", "file.print",
    "screen.share.start", "screen.share.stop", "break_glass", "session.lock", "session.unlock",
    "session.pin_set",
    "wipe.local", "policy.change", "image.open", "kiosk.attest", "image.export",
    "cache.rebuilt", "device.verify", "snapshot", "message.recall", "update.check", "record.purge",
    "room.patient_link", "patient.open",
    "call.admit", "call.deny", "call.invite", "call.drop",
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


@dataclass(frozen=True)
class Writer:
    """Who appends a client event: a signed-in device, or -- while a wipe order for it is
    pending -- the device alone, proven by its key (its sessions are already revoked)."""

    user_id: str
    device_id: str
    final: bool  # under a wipe order: only entries of its own chain are taken


async def client_event_writer(request: Request) -> Writer:
    """``authenticated``, except for a device with a pending wipe order: its proof alone
    lets it upload the entries it still held when it erased them (docs/protocol.md,
    "Device status and orders"). The order is checked again in the write's transaction."""
    db = get_db(request)
    device_id = request.headers.get("x-sc-device") or ""
    device = await run_in_threadpool(
        lambda: devices_crud.get_device(db.connection(), device_id))
    if device is not None and device.pending_order == "wipe":
        proven = await device_proof(request)
        return Writer(proven.device.user_id, proven.device.device_id, final=True)
    auth = await authenticated(request)
    return Writer(auth.user_id, auth.device_id, final=False)


@router.post("/events", response_model=Recorded, status_code=201)
def record_event(body: ClientEvent, request: Request,
                 writer: Annotated[Writer, Depends(client_event_writer)],
                 db: Db) -> Recorded:
    """Idempotent for entries of a device's own chain: one re-sent with a ``device_seq``
    already stored (and the same ``entry_hash``) gets the stored entry's seq back; the same
    ``device_seq`` with other content is ``409 audit_conflict``. A device under a wipe order
    may send only entries of its chain, and only until it acknowledges the order."""
    detail = body.detail or {}
    device_seq = detail.get("device_seq")
    chained = (isinstance(device_seq, int) and not isinstance(device_seq, bool)
               and all(k in detail for k in audit_devices.CHAIN_KEYS))
    if writer.final and not chained:
        raise ApiError(403, "device_revoked", "this device is revoked; wipe local data")
    with db.transaction() as conn:
        if writer.final and devices_crud.pending_order_for(
                conn, writer.device_id).order != "wipe":
            raise ApiError(403, "device_revoked", "this device is revoked; wipe local data")
        if writer.final and audit_devices.final_uploads_left(conn, writer.device_id) <= 0:
            raise ApiError(403, "device_revoked", "this device is revoked; wipe local data")
        if isinstance(device_seq, int) and not isinstance(device_seq, bool):
            stored = audit_crud.find_client_entry(conn, writer.device_id, device_seq)
            if stored is not None:
                if stored[1] != detail.get("entry_hash"):
                    raise ApiError(409, "audit_conflict",
                                   "another entry was already stored with this device_seq")
                return Recorded(seq=stored[0])
        seq = audit_crud.append_audit(
            conn, actor_user_id=writer.user_id, device_id=writer.device_id,
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
def verify(auth: Auditor, db: Db, settings: Settings) -> ChainStatus:
    """The chain, and every signed checkpoint (signature and the entry it covers)."""
    report = audit_checkpoint.verify_log(db, settings.data_dir)
    return ChainStatus(ok=report.ok, entries=report.entries, head=report.head,
                       first_bad_seq=report.first_bad_seq, problem=report.problem)


class DeviceChain(BaseModel):
    device_id: str
    user_id: str | None
    ok: bool
    entries: int
    first_seq: int
    last_seq: int
    gaps: list[tuple[int, int]]
    problems: list[tuple[int, str]]
    unsigned_entries: int  # client entries uploaded without the chain fields
    final_seq: int | None  # where a wiped device's acknowledgement says its chain ends


@router.get("/devices", response_model=list[DeviceChain])
def verify_device_chains(auth: Auditor, db: Db) -> list[DeviceChain]:
    """Each device's own chain: hashes, device signatures, links and gaps (up to the final
    head of a wiped device)."""
    return [DeviceChain(device_id=r.device_id, user_id=r.user_id, ok=r.ok, entries=r.entries,
                        first_seq=r.first_seq, last_seq=r.last_seq, gaps=r.gaps,
                        problems=r.problems, unsigned_entries=len(r.unsigned),
                        final_seq=r.final_seq)
            for r in verify_devices(db.connection())]


Ident = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]
TimeMs = Annotated[int, Field(ge=0, le=2**53)]


class Filters(Strict):
    """``format`` (exports only) is not a filter."""

    user_id: Ident | None = None
    device_id: Ident | None = None
    room_id: Ident | None = None
    action: Ident | None = None
    outcome: Literal["ok", "refused", "failed"] | None = None
    from_ms: TimeMs | None = None
    to_ms: TimeMs | None = None

    def to_filter(self) -> AuditFilter:
        return AuditFilter(**self.model_dump(exclude={"format"}))


@router.post("/search", response_model=AuditPage)
def search_log(
    body: Filters, auth: Auditor, db: Db,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AuditPage:
    """Access review: entries by user, device, consult (patient), action, outcome, time."""
    rows = list(search(db.connection(), body.to_filter(), after_seq=after_seq, limit=limit))
    return AuditPage(entries=[AuditEntry(**r) for r in rows],
                     next_after_seq=rows[-1]["seq"] if rows else after_seq)


@router.get("/alerts")
def alerts(
    auth: Auditor, db: Db,
    from_ms: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    to_ms: Annotated[int | None, Query(ge=0, le=2**53)] = None,
) -> dict[str, Any]:
    """Anomaly alerts (rules and thresholds: server_stub/core/audit_anomaly.py)."""
    conn = db.connection()
    names = usernames(conn)
    return {"alerts": [{**a.to_dict(), "username": names.get(a.user_id or "")}
                       for a in find_alerts(conn, from_ms=from_ms, to_ms=to_ms)]}


class ExportRequest(Filters):
    format: Literal["csv", "jsonl", "fhir"]


def _export_response(db: Any, auth: AuthContext, request: Request, fmt: str,
                     flt: AuditFilter, request_id: int | None) -> Response:
    conn = db.connection()
    entries = list(search(conn, flt))
    body = "".join(export(fmt, entries, usernames(conn)))
    detail: dict[str, Any] = {"format": fmt, "entries": len(entries)}
    detail.update({k: v for k, v in flt.__dict__.items() if v is not None})
    if request_id is not None:
        detail["request_id"] = request_id
    with db.transaction() as wconn:
        audit_crud.append_audit(wconn, actor_user_id=auth.user_id, device_id=auth.device_id,
                                action="audit.export", object_type="audit_log", object_id=None,
                                outcome="ok", source=client_source(request), detail=detail)
    return Response(body, media_type=MEDIA_TYPES[fmt])


def _refused(exc: audit_policy.PolicyRefused) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


@router.post("/exports", responses={202: {"description": "waiting for an approval"}})
def request_export(body: ExportRequest, request: Request, auth: Auditor, db: Db) -> Response:
    """The export at once (200, the file), or -- under the policy's ``export_approval`` --
    202 with a request id: an IT admin approves it, then GET /v1/audit/exports/{id}."""
    params = body.model_dump(exclude_none=True)
    request_id = audit_policy.request_export(db, params, user_id=auth.user_id,
                                             device_id=auth.device_id,
                                             source=client_source(request))
    if request_id is None:
        return _export_response(db, auth, request, body.format, body.to_filter(), None)
    return Response(json.dumps({"request_id": request_id, "state": "pending"}),
                    status_code=202, media_type="application/json")


@router.get("/exports/{request_id}")
def take_export(request_id: Annotated[int, Path(ge=1, le=2**53)], request: Request,
                auth: Auditor, db: Db) -> Response:
    """An approved export, once, to the auditor who requested it."""
    try:
        with db.transaction() as conn:
            req = audit_policy.take_export(conn, request_id, user_id=auth.user_id)
    except audit_policy.PolicyRefused as exc:
        raise _refused(exc) from None
    params = dict(req.params)
    fmt = params.pop("format")
    return _export_response(db, auth, request, fmt, AuditFilter(**params), request_id)


class PolicyBody(Strict):
    export_approval: bool
    policy_approval: bool


@router.get("/policy", response_model=PolicyBody)
def read_policy(auth: Staff, db: Db) -> PolicyBody:
    p = audit_policy.get_policy(db.connection())
    return PolicyBody(export_approval=p.export_approval, policy_approval=p.policy_approval)


@router.put("/policy", responses={202: {"description": "waiting for a second IT admin"}})
def change_policy(body: PolicyBody, request: Request, auth: ItAdmin, db: Db) -> Response:
    applied, request_id = audit_policy.change_policy(
        db, audit_policy.AuditPolicy(**body.model_dump()), user_id=auth.user_id,
        device_id=auth.device_id, source=client_source(request))
    if request_id is not None:
        return Response(json.dumps({"request_id": request_id, "state": "pending"}),
                        status_code=202, media_type="application/json")
    return Response(json.dumps(applied.__dict__), media_type="application/json")


@router.get("/requests")
def list_requests(auth: Staff, db: Db,
                  state: Literal["pending", "approved", "denied", "used"] | None = None,
                  ) -> dict[str, Any]:
    return {"requests": [r.to_wire()
                         for r in audit_policy.list_requests(db.connection(), state)]}


@router.post("/requests/{request_id}/{decision}")
def decide_request(request_id: Annotated[int, Path(ge=1, le=2**53)],
                   decision: Literal["approve", "deny"], request: Request, auth: ItAdmin,
                   db: Db) -> dict[str, Any]:
    """A second person's decision: an IT admin who is not the requester."""
    try:
        req = audit_policy.decide(db, request_id, approve=decision == "approve",
                                  user_id=auth.user_id, role=auth.role,
                                  device_id=auth.device_id, source=client_source(request))
    except audit_policy.PolicyRefused as exc:
        raise _refused(exc) from None
    return req.to_wire()
