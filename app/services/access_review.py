"""Access review and emergency access, Qt-free (issue #8).

:class:`AccessReviewService` is what the auditor's review view and the IT admin's approvals
panel call: search the server's log by user, device, consult (patient), action and time;
check the chain; list anomaly alerts; sign off break-glass entries; export under the
two-person rule; decide approval requests. The server enforces every role rule; the views
only avoid offering what it would refuse (:func:`capabilities`).

:class:`BreakGlassService` is the clinician's side: request emergency access with a reason,
know which grants are active and when they end (the banner), and record the request through
the one client audit call as well as the server's own entry.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from psygnal import Signal

from app.core.errors import SafeConsultError, ServerError
from app.core.phi import Phi
from app.net import audit_api, relay_api
from app.net.audit_api import (
    Alert,
    ApprovalRequest,
    AuditFilter,
    AuditPolicy,
    BreakGlassEntry,
    BreakGlassGrant,
    ChainStatus,
    DeviceChain,
    ExportResult,
    LogEntry,
    RoomAccess,
)
from app.net.transport import Transport

__all__ = [
    "MAX_REASON_CHARS", "MIN_REASON_CHARS", "AccessReviewService", "Alert", "ApprovalRequest",
    "AuditFilter", "AuditPolicy", "BreakGlassEntry", "BreakGlassGrant", "BreakGlassRefused",
    "BreakGlassService", "Capabilities", "ChainReport", "ExportResult", "LogEntry", "NotSignedIn",
    "NoteRefused", "ReasonRefused",
    "ReviewFilter", "RoomAccess", "SearchResult", "capabilities", "clean_reason", "review_decision",
]

TransportSource = Callable[[], "Transport | None"]
"""Gives the signed-in session's transport now (it changes when the user signs in again)."""


class NotSignedIn(SafeConsultError):
    user_message = "You are not signed in. Sign in again and retry."


# -- who may do what --------------------------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """What the Admin area offers a role: exactly what the server lets it do (docs/protocol.md,
    "Audit"; server_stub/core/audit_policy.py)."""

    read_audit: bool = False        # search, chain, alerts, break-glass queue, exports
    review_break_glass: bool = False
    decide_approvals: bool = False  # the second person for exports and policy changes
    read_policy: bool = False

    @property
    def any(self) -> bool:
        return self.read_audit or self.decide_approvals


def capabilities(role: str | None) -> Capabilities:
    if role == "auditor":
        return Capabilities(read_audit=True, review_break_glass=True, read_policy=True)
    if role == "it_admin":
        return Capabilities(decide_approvals=True, read_policy=True)
    return Capabilities()


# -- access review -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewFilter:
    """What the auditor types: a user *name* (resolved to the server's id), a device id, a
    consult id, an action (``client.file.*`` for a prefix), an outcome and a time range."""

    username: str = ""
    device_id: str = ""
    room_id: str = ""
    action: str = ""
    outcome: str = ""
    from_ms: int | None = None
    to_ms: int | None = None


@dataclass(frozen=True)
class SearchResult:
    entries: list[LogEntry]  # the newest matches, newest first
    matched: int  # matches read in all (at least len(entries))
    complete: bool  # False: the scan stopped early; older matches were not read


@dataclass(frozen=True)
class ChainReport:
    server: ChainStatus
    devices: list[DeviceChain]

    @property
    def ok(self) -> bool:
        return self.server.ok and all(d.ok for d in self.devices)

    @property
    def broken_devices(self) -> list[DeviceChain]:
        return [d for d in self.devices if not d.ok]


# The auditor's sign-off decisions; the server stores the decision in its own field
# (docs/protocol.md, "Break-glass review"), the note is free text beside it.
DECISIONS = ("approved", "flagged")
MAX_NOTE_CHARS = 500


def review_decision(entry: BreakGlassEntry) -> tuple[str, Phi[str] | None]:
    """(``"approved"``/``"flagged"``/``"reviewed"``/``"pending"``, the note). ``reviewed``:
    signed off before the server kept a decision, without one."""
    if entry.reviewed_ms is None:
        return "pending", entry.review_note
    return entry.decision or "reviewed", entry.review_note


class NoteRefused(SafeConsultError):
    user_message = "The note is too long: keep it to 500 characters."


class AccessReviewService:
    def __init__(self, transport: TransportSource) -> None:
        self._transport = transport
        self._names: dict[str, str] = {}

    def _t(self) -> Transport:
        transport = self._transport()
        if transport is None:
            raise NotSignedIn("no session")
        return transport

    # -- names -------------------------------------------------------------------------------

    async def user_id(self, username: str) -> str | None:
        """The server's id for a user name; None when there is no such user."""
        name = username.strip().lower()
        if not name:
            return None
        try:
            user_id, _ = await relay_api.user_by_name(self._t(), name)
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise
        self._names[user_id] = name
        return user_id

    async def usernames(self, user_ids: set[str | None]) -> dict[str, str]:
        """Names for ids (cached; an id the directory does not know shows as itself)."""
        for user_id in sorted(i for i in user_ids if i and i not in self._names):
            try:
                self._names[user_id] = (await relay_api.user_devices(self._t(), user_id)).username
            except ServerError:
                self._names[user_id] = user_id
        return dict(self._names)

    def name(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        return self._names.get(user_id, user_id)

    # -- the log -----------------------------------------------------------------------------

    async def to_filter(self, flt: ReviewFilter) -> AuditFilter | None:
        """The server's filter, or None when the user name matches nobody (no entries)."""
        user_id = None
        if flt.username.strip():
            user_id = await self.user_id(flt.username)
            if user_id is None:
                return None
        return AuditFilter(
            user_id=user_id, device_id=flt.device_id.strip() or None,
            room_id=flt.room_id.strip() or None, action=flt.action.strip() or None,
            outcome=flt.outcome or None, from_ms=flt.from_ms, to_ms=flt.to_ms)

    async def search(self, flt: ReviewFilter, *, limit: int = 1000) -> list[LogEntry]:
        """The newest ``limit`` matching entries, newest first."""
        return (await self.search_newest(flt, limit=limit)).entries

    async def search_newest(self, flt: ReviewFilter, *, limit: int = 1000,
                            max_scan: int = 100_000) -> SearchResult:
        """The newest ``limit`` matches, newest first, and how many matched in all.

        The server pages forward from the oldest entry, so this reads every match (up to
        ``max_scan``, then ``complete`` is False) and keeps the tail: an auditor looking at
        "newest first" must not be shown the oldest thousand of a long log.
        """
        server_filter = await self.to_filter(flt)
        if server_filter is None:
            return SearchResult([], 0, True)
        kept: collections.deque[LogEntry] = collections.deque(maxlen=limit)
        matched, after, complete = 0, 0, True
        while True:
            page = await audit_api.search(self._t(), server_filter, after_seq=after,
                                          limit=1000)
            kept.extend(page.entries)
            matched += len(page.entries)
            if len(page.entries) < 1000 or page.next_after_seq == after:
                break
            if matched >= max_scan:
                complete = False
                break
            after = page.next_after_seq
        entries = sorted(kept, key=lambda e: e.seq, reverse=True)
        await self.usernames({e.actor_user_id for e in entries})
        return SearchResult(entries, matched, complete)

    async def chain(self) -> ChainReport:
        transport = self._t()
        return ChainReport(await audit_api.verify(transport),
                           await audit_api.device_chains(transport))

    async def alerts(self, *, from_ms: int | None = None, to_ms: int | None = None
                     ) -> list[Alert]:
        found = await audit_api.alerts(self._t(), from_ms=from_ms, to_ms=to_ms)
        return sorted(found, key=lambda a: a.ts_ms, reverse=True)

    # -- break-glass review ------------------------------------------------------------------

    async def break_glass_queue(self, *, unreviewed_only: bool = True
                                ) -> list[BreakGlassEntry]:
        entries: list[BreakGlassEntry] = []
        after = 0
        while True:
            page = await audit_api.break_glass_queue(self._t(), unreviewed_only=unreviewed_only,
                                                     after=after, limit=500)
            entries.extend(page)
            if len(page) < 500:
                break
            after = page[-1].id
        await self.usernames({e.user_id for e in entries} | {e.reviewed_by for e in entries})
        return entries

    async def sign_off(self, entry_id: int, decision: str, note: str) -> BreakGlassEntry:
        """Sign a break-glass entry off as ``approved`` (justified) or ``flagged`` (follow
        up). Raises ValueError for an unknown decision, :class:`NoteRefused` for a note that
        does not fit."""
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}")
        text = " ".join(note.split())
        if len(text) > MAX_NOTE_CHARS or not text.isprintable():
            raise NoteRefused("note length or characters")
        return await audit_api.review_break_glass(self._t(), entry_id, decision,
                                                  Phi(text) if text else None)

    # -- exports and approvals ---------------------------------------------------------------

    async def policy(self) -> AuditPolicy:
        return await audit_api.audit_policy(self._t())

    async def export(self, fmt: str, flt: ReviewFilter) -> ExportResult:
        """The file now, or a pending request when policy asks for a second approval."""
        server_filter = await self.to_filter(flt)
        if server_filter is None:
            # Nobody by that name: export nothing rather than everything.
            server_filter = AuditFilter(user_id="-")
        return await audit_api.request_export(self._t(), fmt, server_filter)

    async def my_export_requests(self) -> list[ApprovalRequest]:
        found = await audit_api.approval_requests(self._t())
        return [r for r in found if r.kind == "audit.export"]

    async def collect_export(self, request_id: int) -> ExportResult:
        return await audit_api.take_export(self._t(), request_id)

    async def pending_approvals(self) -> list[ApprovalRequest]:
        found = await audit_api.approval_requests(self._t(), "pending")
        await self.usernames({r.requested_by for r in found})
        return found

    async def decide(self, request_id: int, *, approve: bool) -> ApprovalRequest:
        return await audit_api.decide_request(self._t(), request_id, approve=approve)


# -- break-glass (the clinician's side) -----------------------------------------------------

MIN_REASON_CHARS = 10
MAX_REASON_CHARS = 500


class BreakGlassRefused(ServerError):
    """The server said no; the message says why in words a clinician can act on."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "not_found": "There is no consult with this ID. Check the ID and try again.",
        "not_member": "There is no consult with this ID. Check the ID and try again.",
        "already_member": "You are already a member of this consult: open it from the list.",
        "reason_required": "Give the reason for emergency access (at least 10 characters).",
        "reason_too_long": "The reason is too long: at most 500 characters.",
    }

    def __init__(self, exc: ServerError) -> None:
        super().__init__(exc.status, exc.code)
        self.user_message = self.MESSAGES.get(exc.code, ServerError.user_message)


class ReasonRefused(SafeConsultError):
    user_message = (f"Give the reason for emergency access in {MIN_REASON_CHARS} to "
                    f"{MAX_REASON_CHARS} characters.")


def clean_reason(reason: str) -> str:
    """The reason as the server will keep it (white space collapsed); raises
    :class:`ReasonRefused` for one the server would refuse."""
    text = " ".join(reason.split())
    if not MIN_REASON_CHARS <= len(text) <= MAX_REASON_CHARS or not text.isprintable():
        raise ReasonRefused("reason length or characters")
    return text


Recorder = Callable[..., Any]
"""``AuditService.record`` (the one client audit call)."""


class BreakGlassService:
    """Requests emergency access and keeps the user's active break-glass grants.

    ``changed`` fires when the set of active grants changes (a new grant, a refresh from
    the server, an expiry noticed by :meth:`expire`).
    """

    changed = Signal()

    def __init__(self, transport: TransportSource, *, record: Recorder | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._transport = transport
        self._record = record
        self._clock = clock
        self._grants: dict[str, int] = {}  # room id -> expiry (ms)
        self.rooms: list[RoomAccess] = []

    def _t(self) -> Transport:
        transport = self._transport()
        if transport is None:
            raise NotSignedIn("no session")
        return transport

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def request(self, room_id: str, reason: str) -> BreakGlassGrant:
        """Ask the server for emergency access to ``room_id``. Audited on this device
        (``break_glass``, ok or refused; never the reason) as well as by the server."""
        room_id = room_id.strip()
        text = clean_reason(reason)
        try:
            grant = await audit_api.break_glass(self._t(), room_id, Phi(text))
        except ServerError as exc:
            self._audit(room_id, "refused", {"code": exc.code[:64]})
            raise BreakGlassRefused(exc) from None
        self._audit(room_id, "ok", {"break_glass_id": grant.break_glass_id,
                                    "expires_ms": grant.expires_ms})
        self._grants[grant.room_id] = grant.expires_ms
        self.changed.emit()
        return grant

    def _audit(self, room_id: str, outcome: str, detail: dict[str, Any]) -> None:
        if self._record is not None:
            self._record("break_glass", object_type="room", object_id=room_id or "-",
                         outcome=outcome, detail=detail)

    async def refresh(self) -> list[RoomAccess]:
        """The user's consults and grants from the server (after a restart, a lapse...)."""
        self.rooms = await audit_api.room_access(self._t())
        grants = {r.room_id: r.expires_ms for r in self.rooms
                  if r.break_glass and r.expires_ms is not None}
        if grants != self._grants:
            self._grants = grants
            self.changed.emit()
        self.expire()
        return self.rooms

    def expire(self) -> None:
        """Forget grants whose time is up (the server refuses them already)."""
        now = self.now_ms()
        lapsed = [room for room, expiry in self._grants.items() if expiry <= now]
        for room in lapsed:
            del self._grants[room]
        if lapsed:
            self.rooms = [r for r in self.rooms
                          if r.expires_ms is None or r.expires_ms > now]
            self.changed.emit()

    def active(self) -> dict[str, int]:
        """Room id -> expiry (ms) of each break-glass grant still running."""
        now = self.now_ms()
        return {room: expiry for room, expiry in self._grants.items() if expiry > now}
