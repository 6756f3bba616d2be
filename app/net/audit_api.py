"""The audit trail and access control over the wire (docs/protocol.md, "Audit" and
"Break-glass"): the client's own events, and -- for the auditor role -- search, chain
verification, anomaly alerts, the break-glass review queue and exports; for IT admins the
two-person approvals; for clinicians break-glass itself and their grants' expiry.

Answers are validated into the frozen types below, so nothing above this module handles raw
JSON. Free text a person typed (a break-glass reason, a reviewer's note) may name a patient:
it is wrapped in :class:`~app.core.phi.Phi` here and never shows in a log line or an error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urlencode

from app.core.phi import Phi
from app.net.auth_api import ProtocolError, optional_field, response_field
from app.net.transport import Transport

# -- client events ---------------------------------------------------------------------------


async def record_client_event(
    transport: Transport, action: str, *, object_type: str | None = None,
    object_id: str | None = None, outcome: str = "ok",
    detail: dict[str, str | int | bool] | None = None,
) -> int:
    """Append a client-side event to the server's audit log; returns its sequence number."""
    data = await transport.post_json("/v1/audit/events", {
        "action": action, "object_type": object_type, "object_id": object_id,
        "outcome": outcome, "detail": detail,
    })
    return response_field(data, "seq", int)


# -- validation helpers ----------------------------------------------------------------------


def _int(data: Any, name: str) -> int:
    return int(response_field(data, name, int))


_opt = optional_field


def _objects(data: Any, name: str) -> list[dict[str, Any]]:
    items = response_field(data, name, list)
    if not all(isinstance(item, dict) for item in items):
        raise ProtocolError(f"entries of {name!r} must be objects")
    return items


def _seg(value: str | int) -> str:
    return quote(str(value), safe="")


# -- reading the log (auditor) ---------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """Search filters (all optional; ``action`` exact or a prefix ending in ``*``; the time
    range is ``from_ms`` inclusive, ``to_ms`` exclusive). ``room_id`` is the consult, and so
    the patient."""

    user_id: str | None = None
    device_id: str | None = None
    room_id: str | None = None
    action: str | None = None
    outcome: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None

    def body(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


@dataclass(frozen=True)
class LogEntry:
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

    @property
    def room_id(self) -> str | None:
        """The consult (hence the patient) this entry is about, if any."""
        if self.object_type in ("room", "consult"):
            return self.object_id
        value = (self.detail or {}).get("room_id")
        return value if isinstance(value, str) else None


def parse_entry(data: Any) -> LogEntry:
    detail = _opt(data, "detail", dict)
    return LogEntry(
        seq=_int(data, "seq"), ts_ms=_int(data, "ts_ms"),
        actor_user_id=_opt(data, "actor_user_id", str), device_id=_opt(data, "device_id", str),
        action=response_field(data, "action", str),
        object_type=_opt(data, "object_type", str), object_id=_opt(data, "object_id", str),
        outcome=response_field(data, "outcome", str), source=response_field(data, "source", str),
        detail=detail,
    )


@dataclass(frozen=True)
class LogPage:
    entries: list[LogEntry]
    next_after_seq: int


async def search(transport: Transport, flt: AuditFilter, *, after_seq: int = 0,
                 limit: int = 200) -> LogPage:
    query = urlencode({"after_seq": after_seq, "limit": limit})
    data = await transport.post_json(f"/v1/audit/search?{query}", flt.body())
    return LogPage([parse_entry(e) for e in _objects(data, "entries")],
                   _int(data, "next_after_seq"))


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None
    problem: str


async def verify(transport: Transport) -> ChainStatus:
    data = await transport.get_json("/v1/audit/verify")
    return ChainStatus(
        ok=response_field(data, "ok", bool), entries=_int(data, "entries"),
        head=response_field(data, "head", str), first_bad_seq=_opt(data, "first_bad_seq", int),
        problem=response_field(data, "problem", str))


@dataclass(frozen=True)
class DeviceChain:
    device_id: str
    user_id: str | None
    ok: bool
    entries: int
    gaps: list[tuple[int, int]]
    problems: list[tuple[int, str]]
    unsigned_entries: int


async def device_chains(transport: Transport) -> list[DeviceChain]:
    data = await transport.get_json("/v1/audit/devices")
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ProtocolError("device chains must be a list of objects")
    out = []
    for d in data:
        gaps = response_field(d, "gaps", list)
        problems = response_field(d, "problems", list)
        try:
            gap_pairs = [(int(a), int(b)) for a, b in gaps]
            problem_pairs = [(int(a), str(b)) for a, b in problems]
        except (TypeError, ValueError):
            raise ProtocolError("gaps and problems must be pairs") from None
        out.append(DeviceChain(
            device_id=response_field(d, "device_id", str), user_id=_opt(d, "user_id", str),
            ok=response_field(d, "ok", bool), entries=_int(d, "entries"), gaps=gap_pairs,
            problems=problem_pairs, unsigned_entries=_int(d, "unsigned_entries")))
    return out


@dataclass(frozen=True)
class Alert:
    rule: str
    ts_ms: int
    user_id: str | None
    username: str | None
    device_id: str | None
    count: int
    first_seq: int
    last_seq: int
    message: str


async def alerts(transport: Transport, *, from_ms: int | None = None,
                 to_ms: int | None = None) -> list[Alert]:
    params = {k: v for k, v in (("from_ms", from_ms), ("to_ms", to_ms)) if v is not None}
    path = "/v1/audit/alerts" + (f"?{urlencode(params)}" if params else "")
    data = await transport.get_json(path)
    return [Alert(
        rule=response_field(a, "rule", str), ts_ms=_int(a, "ts_ms"),
        user_id=_opt(a, "user_id", str), username=_opt(a, "username", str),
        device_id=_opt(a, "device_id", str), count=_int(a, "count"),
        first_seq=_int(a, "first_seq"), last_seq=_int(a, "last_seq"),
        message=response_field(a, "message", str)) for a in _objects(data, "alerts")]


# -- exports under the two-person rule -------------------------------------------------------

EXPORT_FORMATS = ("csv", "jsonl", "fhir")


@dataclass(frozen=True)
class ExportResult:
    """Either the file (``content``) or a request waiting for an IT admin (``request_id``)."""

    content: bytes | None
    media_type: str
    request_id: int | None = None

    @property
    def pending(self) -> bool:
        return self.content is None


async def request_export(transport: Transport, fmt: str, flt: AuditFilter) -> ExportResult:
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    response = await transport.request("POST", "/v1/audit/exports",
                                       json_body={**flt.body(), "format": fmt})
    if response.status_code == 202:
        return ExportResult(None, "", _int(response.json(), "request_id"))
    return ExportResult(response.content, response.headers.get("content-type", ""))


async def take_export(transport: Transport, request_id: int) -> ExportResult:
    """An approved export, once (``409 not_approved`` before the approval)."""
    response = await transport.request("GET", f"/v1/audit/exports/{_seg(request_id)}")
    return ExportResult(response.content, response.headers.get("content-type", ""),
                        request_id)


@dataclass(frozen=True)
class AuditPolicy:
    export_approval: bool
    policy_approval: bool


async def audit_policy(transport: Transport) -> AuditPolicy:
    data = await transport.get_json("/v1/audit/policy")
    return AuditPolicy(response_field(data, "export_approval", bool),
                       response_field(data, "policy_approval", bool))


@dataclass(frozen=True)
class ApprovalRequest:
    id: int
    kind: str
    params: dict[str, Any]
    requested_by: str
    requested_ms: int
    state: str
    decided_by: str | None
    decided_ms: int | None


def parse_request(data: Any) -> ApprovalRequest:
    return ApprovalRequest(
        id=_int(data, "id"), kind=response_field(data, "kind", str),
        params=response_field(data, "params", dict),
        requested_by=response_field(data, "requested_by", str),
        requested_ms=_int(data, "requested_ms"), state=response_field(data, "state", str),
        decided_by=_opt(data, "decided_by", str), decided_ms=_opt(data, "decided_ms", int))


async def approval_requests(transport: Transport, state: str | None = None
                            ) -> list[ApprovalRequest]:
    path = "/v1/audit/requests" + (f"?{urlencode({'state': state})}" if state else "")
    data = await transport.get_json(path)
    return [parse_request(r) for r in _objects(data, "requests")]


async def decide_request(transport: Transport, request_id: int, *, approve: bool
                         ) -> ApprovalRequest:
    """The second person's decision (an IT admin who is not the requester)."""
    decision = "approve" if approve else "deny"
    return parse_request(await transport.post_json(
        f"/v1/audit/requests/{_seg(request_id)}/{decision}", {}))


# -- break-glass ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BreakGlassEntry:
    id: int
    room_id: str
    user_id: str
    device_id: str | None
    reason: Phi[str]
    created_ms: int
    expires_ms: int
    reviewed_ms: int | None
    reviewed_by: str | None
    review_note: Phi[str] | None
    # The auditor's sign-off: "approved" / "flagged"; None while waiting, and for an entry
    # reviewed (by an older CLI) without one.
    decision: str | None = None


def parse_break_glass(data: Any) -> BreakGlassEntry:
    note = _opt(data, "review_note", str)
    return BreakGlassEntry(
        id=_int(data, "id"), room_id=response_field(data, "room_id", str),
        user_id=response_field(data, "user_id", str), device_id=_opt(data, "device_id", str),
        reason=Phi(response_field(data, "reason", str)), created_ms=_int(data, "created_ms"),
        expires_ms=_int(data, "expires_ms"), reviewed_ms=_opt(data, "reviewed_ms", int),
        reviewed_by=_opt(data, "reviewed_by", str),
        review_note=Phi(note) if note is not None else None,
        decision=_decision(data))


REVIEW_DECISIONS = ("approved", "flagged")


def _decision(data: Any) -> str | None:
    decision = _opt(data, "decision", str)
    if decision is not None and decision not in REVIEW_DECISIONS:
        raise ProtocolError("break-glass entry: unknown decision")
    return decision


async def break_glass_queue(transport: Transport, *, unreviewed_only: bool = True,
                            after: int = 0, limit: int = 100) -> list[BreakGlassEntry]:
    query = urlencode({"unreviewed": "true" if unreviewed_only else "false", "after": after,
                       "limit": limit})
    data = await transport.get_json(f"/v1/break_glass?{query}")
    return [parse_break_glass(e) for e in _objects(data, "entries")]


async def review_break_glass(transport: Transport, entry_id: int, decision: str,
                             note: Phi[str] | None) -> BreakGlassEntry:
    """Sign an entry off as ``approved`` or ``flagged`` (``409 already_reviewed``)."""
    if decision not in REVIEW_DECISIONS:
        raise ValueError(f"unknown decision {decision!r}")
    body: dict[str, str] = {"decision": decision}
    if note is not None:
        body["note"] = note.reveal()
    return parse_break_glass(await transport.post_json(
        f"/v1/break_glass/{_seg(entry_id)}/review", body))


@dataclass(frozen=True)
class BreakGlassGrant:
    room_id: str
    break_glass_id: int
    expires_ms: int
    role: str


async def break_glass(transport: Transport, room_id: str, reason: Phi[str]) -> BreakGlassGrant:
    """Emergency access to a consult the user is not a member of (``400 reason_required`` /
    ``reason_too_long``; ``404 not_found`` for a consult that does not exist)."""
    data = await transport.post_json(f"/v1/rooms/{_seg(room_id)}/break_glass",
                                     {"reason": reason.reveal()})
    return BreakGlassGrant(room_id=response_field(data, "room_id", str),
                           break_glass_id=_int(data, "break_glass_id"),
                           expires_ms=_int(data, "expires_ms"),
                           role=response_field(data, "role", str))


@dataclass(frozen=True)
class RoomAccess:
    """The user's own access to one consult: role, state, and when the grant ends."""

    room_id: str
    role: str
    state: str
    expires_ms: int | None
    break_glass: bool


async def room_access(transport: Transport) -> list[RoomAccess]:
    """The consults the user may open now (lapsed grants left out by the server)."""
    data = await transport.get_json("/v1/rooms")
    return [RoomAccess(
        room_id=response_field(r, "room_id", str), role=response_field(r, "role", str),
        state=response_field(r, "state", str), expires_ms=_opt(r, "expires_ms", int),
        break_glass=bool(_opt(r, "break_glass", bool))) for r in _objects(data, "rooms")]
