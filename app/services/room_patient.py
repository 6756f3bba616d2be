"""A consult room linked to a patient (issue #5: "a room may be linked to a patient (name,
MRN -- PHI-tagged, members only)"), Qt-free. See docs/e2ee.md, "Patient link".

The link is patient data, so it travels like a message: an ``sc.patient_link`` room event,
Megolm-encrypted to the members' devices by :meth:`ChatService.send_room_event` (through
the outbox: kept encrypted, sent once). The relay never sees the name or the MRN -- the
server's own ``linked_patient`` slot is not used. Each member's device keeps the current
link in its SQLCipher cache (a ``chat_state`` row) and returns it as :class:`Phi` values.

Rules:

* **Who may set, change or clear it**: a joined member whose clinical role is physician or
  consultant (nurses, IT and auditors may not; a break-glass observer may not post at all).
  Checked on the sending device, and again by every receiver: the sender must be *joined in
  the receiver's own view* of the room (so a removed member, or anyone the relay invents,
  changes nothing), and the link's setter must hold one of those roles as the key directory
  states it (looked up once per user and session; a link waits in memory for the answer).
* **Ordering**: the newest setting by its setter's clock (``set_ms``, then ``link_id``)
  wins on every device, however the events arrive (late, twice, replayed).
* **Audit**: the device that sets, changes or clears the link records ``room.patient_link``
  once (``detail.op``: set / change / clear; ids only, never the name or MRN). Receivers
  and replays record nothing.
* **Late joiners and new devices**: a member who joins after the link was set cannot read
  earlier events (the room key rotates on membership changes), nor can a member's new
  device. So when a device sees, at a room change (membership, a message), devices it gives
  room keys to that have not been sent the current link yet, *one* member re-sends it (a
  ``replay`` with the original setter and time, so it never overrides a newer change): the
  setter if still joined, else the first joined member by user id that held it. Which
  devices have been sent it is kept with the link, so this survives restarts.
* **Leaving**: when this device's user leaves or is removed, the link is forgotten here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from psygnal import Signal

from app.core.errors import SafeConsultError
from app.core.phi import Phi
from app.net import relay_api

log = logging.getLogger(__name__)

PATIENT_LINK_EVENT = "sc.patient_link"
AUDIT_ACTION = "room.patient_link"
LINK_ROLES = frozenset({"physician", "consultant"})
OBSERVER = "observer"  # the room role that may read but not post (break-glass, watching)
STATE_PREFIX = "patient_link:"  # chat_state row per room: the current link (JSON)
MAX_NAME = 200
MAX_MRN = 64
_MRN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./_-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_FIELDS = {"link_id", "set_ms", "set_by", "patient", "replay"}


class MalformedLink(ValueError):
    """An ``sc.patient_link`` content that is not one (the reason names no value)."""


class LinkNotAllowed(SafeConsultError):
    """This user may not set the room's patient link."""

    user_message = "Only physicians and consultants in this room can link it to a patient."


class InvalidPatient(SafeConsultError):
    """The name or MRN given is not one the members' devices would accept."""

    user_message = "Enter the patient's name and an MRN of letters, digits, spaces or . / _ -"


@dataclass(frozen=True, slots=True)
class PatientLink:
    """The room's current link. ``name`` and ``mrn`` are None when it was cleared."""

    room_id: str
    link_id: str
    set_ms: int
    set_by: str
    name: Phi[str] | None = field(repr=False)
    mrn: Phi[str] | None = field(repr=False)

    @property
    def linked(self) -> bool:
        return self.name is not None

    @property
    def order(self) -> tuple[int, str]:
        return (self.set_ms, self.link_id)


def check_patient(name: str, mrn: str) -> tuple[str, str]:
    """The name and MRN as they will be sent, or :class:`MalformedLink`."""
    name, mrn = name.strip(), mrn.strip()
    if not 1 <= len(name) <= MAX_NAME or _CONTROL.search(name):
        raise MalformedLink("name must be 1-200 characters without control characters")
    if not 1 <= len(mrn) <= MAX_MRN or not _MRN.match(mrn):
        raise MalformedLink("MRN must be 1-64 letters, digits, spaces or . / _ -")
    return name, mrn


def to_wire(link: PatientLink, *, replay: bool = False) -> dict[str, Any]:
    patient = None if link.name is None or link.mrn is None else {
        "name": link.name.reveal(), "mrn": link.mrn.reveal()}
    return {"link_id": link.link_id, "set_ms": link.set_ms, "set_by": link.set_by,
            "patient": patient, "replay": replay}


def parse(room_id: str, content: Any) -> tuple[PatientLink, bool]:
    """(link, replay) from an event's content; every field is checked."""
    if not isinstance(content, dict) or set(content) != _FIELDS:
        raise MalformedLink("fields wrong")
    link_id, set_ms, set_by = content["link_id"], content["set_ms"], content["set_by"]
    if not isinstance(link_id, str) or not _HEX32.match(link_id):
        raise MalformedLink("link_id")
    if not isinstance(set_ms, int) or isinstance(set_ms, bool) or not 0 < set_ms < 2**53:
        raise MalformedLink("set_ms")
    if not isinstance(set_by, str) or not 1 <= len(set_by) <= 128:
        raise MalformedLink("set_by")
    if not isinstance(content["replay"], bool):
        raise MalformedLink("replay")
    patient = content["patient"]
    if patient is None:
        return PatientLink(room_id, link_id, set_ms, set_by, None, None), content["replay"]
    if not isinstance(patient, dict) or set(patient) != {"name", "mrn"} or not all(
            isinstance(v, str) for v in patient.values()):
        raise MalformedLink("patient")
    name, mrn = check_patient(patient["name"], patient["mrn"])
    if (name, mrn) != (patient["name"], patient["mrn"]):
        raise MalformedLink("patient not trimmed")
    return (PatientLink(room_id, link_id, set_ms, set_by, Phi(name), Phi(mrn)),
            content["replay"])


class LinkChat(Protocol):
    """What the patient link needs of the chat service (ChatService provides it)."""

    room_event: Any
    rooms_changed: Any
    user_id: str
    state: Any  # ChatState: get / put / delete / named / room_state / members
    transport: Any  # the session's Transport (the setters' roles are looked up)
    device: Any  # this device (``device_id``)

    def devices(self, user_id: str) -> list[Any]: ...

    def may_receive_keys(self, record: Any) -> bool: ...

    async def send_room_event(self, room_id: str, event_type: str,
                              content: dict[str, Any]) -> str: ...


class RoomPatientService:
    changed = Signal(str)  # room id whose link changed (set, changed, cleared, forgotten)
    ignored = Signal(str)  # a PHI-free reason a received link was not applied

    def __init__(self, chat: LinkChat, *, role: str, audit: Any | None = None,
                 clock_ms: Callable[[], int] | None = None,
                 lookup_role: Callable[[str], Awaitable[str]] | None = None) -> None:
        self.chat = chat
        self.role = role
        self.audit = audit
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._lookup_role = lookup_role or (
            lambda user_id: relay_api.user_role(chat.transport, user_id))
        self._roles: dict[str, str] = {chat.user_id: role}  # setter -> clinical role
        self._held: list[tuple[Any, PatientLink, bool]] = []  # waiting for a setter's role
        self._lookups: dict[str, asyncio.Task[None]] = {}
        self._replays: set[asyncio.Task[None]] = set()
        self._replaying: set[str] = set()  # rooms with a replay under way
        self._room_roles: dict[str, str] = {}  # our room role per room, as last listed
        self._roles_task: asyncio.Task[None] | None = None
        self._roles_asked: set[str] = set()
        self._check_handle: asyncio.Handle | None = None
        chat.room_event.connect(self._on_room_event)
        chat.rooms_changed.connect(self._on_rooms_changed)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.chat.room_event.disconnect(self._on_room_event)
        with contextlib.suppress(Exception):
            self.chat.rooms_changed.disconnect(self._on_rooms_changed)
        for task in [*self._replays, *self._lookups.values(),
                     *([self._roles_task] if self._roles_task else [])]:
            task.cancel()
        if self._check_handle is not None:
            self._check_handle.cancel()
            self._check_handle = None

    # -- reading -------------------------------------------------------------------------

    def _stored(self, room_id: str) -> tuple[PatientLink, list[str]] | None:
        raw = self.chat.state.get(STATE_PREFIX + room_id)
        if not raw:
            return None
        data = json.loads(raw)
        link, _ = parse(room_id, data["link"])
        return link, list(data.get("shared_with", []))

    def link(self, room_id: str) -> PatientLink | None:
        """The room's current patient link (None: never linked here, or cleared)."""
        stored = self._stored(room_id)
        return stored[0] if stored is not None and stored[0].linked else None

    def may_edit(self, room_id: str) -> bool:
        """Whether this user may set, change or clear the room's link (as far as this device
        knows: the room role is checked with the relay again when setting)."""
        return (self.role in LINK_ROLES and self.chat.state.room_state(room_id) == "joined"
                and self.chat.user_id in self.chat.state.members(room_id)
                and self._room_roles.get(room_id) != OBSERVER)

    async def refresh_room_roles(self) -> dict[str, str]:
        """Our role in each room as the relay lists it (an ``observer`` -- break-glass or
        invited to watch -- may read but not post)."""
        rooms = await relay_api.list_rooms(self.chat.transport)
        before, self._room_roles = self._room_roles, {r.room_id: r.role for r in rooms}
        for room_id, role in self._room_roles.items():
            if before.get(room_id) != role:
                self.changed.emit(room_id)
        return self._room_roles

    def _store(self, link: PatientLink, shared_with: list[str]) -> None:
        self.chat.state.put(STATE_PREFIX + link.room_id, json.dumps(
            {"link": to_wire(link), "shared_with": sorted(set(shared_with))}))

    # -- setting ---------------------------------------------------------------------------

    async def set_link(self, room_id: str, name: str, mrn: str) -> PatientLink:
        """Link the room to a patient (or change the link), for every member."""
        try:
            clean_name, clean_mrn = check_patient(name, mrn)
        except MalformedLink as exc:
            raise InvalidPatient(str(exc)) from None
        return await self._send(room_id, Phi(clean_name), Phi(clean_mrn))

    async def clear_link(self, room_id: str) -> PatientLink:
        return await self._send(room_id, None, None)

    async def _send(self, room_id: str, name: Phi[str] | None,
                    mrn: Phi[str] | None) -> PatientLink:
        if self.may_edit(room_id):
            await self.refresh_room_roles()  # the relay's word on our room role, now
        if not self.may_edit(room_id):
            self._audit(room_id, "refused", "set" if name is not None else "clear")
            raise LinkNotAllowed("role may not link patients")
        before = self._stored(room_id)
        previous = before[0] if before is not None else None
        set_ms = max(self._clock_ms(), previous.set_ms + 1 if previous else 0)
        link = PatientLink(room_id, secrets.token_hex(16), set_ms, self.chat.user_id,
                           name, mrn)
        op = ("clear" if name is None else
              "change" if previous is not None and previous.linked else "set")
        await self.chat.send_room_event(room_id, PATIENT_LINK_EVENT, to_wire(link))
        self._store(link, sorted(self._targets(room_id)))
        self._audit(room_id, "ok", op)
        self.changed.emit(room_id)
        return link

    def _audit(self, room_id: str, outcome: str, op: str) -> None:
        if self.audit is None:
            return
        with contextlib.suppress(SafeConsultError):
            self.audit.record(AUDIT_ACTION, object_type="room", object_id=room_id[:128],
                              outcome=outcome, detail={"op": op})

    # -- receiving ---------------------------------------------------------------------------

    def _ignore(self, reason: str) -> None:
        log.info("patient link ignored", extra={"event": "patient_link_ignored",
                                                "reason_code": reason})
        self.ignored.emit(reason)

    def _on_room_event(self, event: Any) -> None:
        if event.event_type != PATIENT_LINK_EVENT:
            return
        room_id = event.room_id
        if (self.chat.state.room_state(room_id) != "joined"
                or event.sender not in self.chat.state.members(room_id)):
            self._ignore("not_member")
            return
        try:
            link, replay = parse(room_id, event.content.reveal())
        except MalformedLink as exc:
            self._ignore(f"malformed: {exc}")
            return
        if not replay and link.set_by != event.sender:
            self._ignore("not_the_setter")
            return
        if link.set_by not in self._roles:
            self._held.append((event, link, replay))
            self._look_up(link.set_by)
            return
        self._apply(event, link)

    def _apply(self, event: Any, link: PatientLink) -> None:
        room_id = event.room_id
        if self._roles.get(link.set_by) not in LINK_ROLES:
            self._ignore("role")  # a nurse's (modified) client, say
            return
        if (self.chat.state.room_state(room_id) != "joined"
                or event.sender not in self.chat.state.members(room_id)):
            self._ignore("not_member")  # left while the role was looked up
            return
        before = self._stored(room_id)
        if before is not None and before[0].order >= link.order:
            return  # our own echo, a replay of what we hold, or an older setting
        shared = self._targets(room_id) | (set(before[1]) if before is not None else set())
        self._store(link, sorted(shared))
        self.changed.emit(room_id)

    def _look_up(self, user_id: str) -> None:
        if user_id in self._lookups:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._fetch_role(user_id))
        self._lookups[user_id] = task

    async def _fetch_role(self, user_id: str) -> None:
        try:
            self._roles[user_id] = await self._lookup_role(user_id)
        except SafeConsultError as exc:  # offline or refused: held until the next event
            log.info("setter role unknown", extra={"event": "patient_link_role_unknown",
                                                   "reason_code": type(exc).__name__})
            return
        finally:
            self._lookups.pop(user_id, None)
        held, self._held = self._held, []
        for event, link, replay in held:
            if link.set_by in self._roles:
                with contextlib.suppress(SafeConsultError):
                    self._apply(event, link)
            else:
                self._held.append((event, link, replay))

    def _on_rooms_changed(self) -> None:
        """Rooms changed (membership, messages): check them soon, once for a burst, off the
        path that shows the message."""
        if self._check_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): check now
            self._run_checks()
            return
        self._check_handle = loop.call_soon(self._run_checks)

    def _run_checks(self) -> None:
        self._check_handle = None
        for _, link, _ in self._held:  # a look-up that failed: try again
            self._look_up(link.set_by)
        with contextlib.suppress(SafeConsultError):
            joined = {r[0] for r in self.chat.state.rooms() if r[1] == "joined"}
            if joined - self._roles_asked and self._roles_task is None:
                self._roles_asked |= joined  # once per room (and again when setting)
                self._start_roles_refresh()
        with contextlib.suppress(SafeConsultError):  # the cache closed under us
            self._check_rooms()

    def _start_roles_refresh(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        async def refresh() -> None:
            try:
                await self.refresh_room_roles()
            except SafeConsultError as exc:  # offline: the next room change asks again
                log.info("room roles unknown", extra={"event": "patient_link_roles_unknown",
                                                      "reason_code": type(exc).__name__})
            finally:
                self._roles_task = None

        self._roles_task = loop.create_task(refresh())

    def _check_rooms(self) -> None:
        for name, _ in self.chat.state.named(STATE_PREFIX):
            room_id = name[len(STATE_PREFIX):]
            if self.chat.state.room_state(room_id) != "joined":
                self.chat.state.delete(name)  # we left or were removed: forget it here
                self.changed.emit(room_id)
                continue
            stored = self._stored(room_id)
            if stored is None:
                continue
            link, shared_with = stored
            if not link.linked:
                continue  # cleared: a newcomer holding nothing is already right
            if room_id in self._replaying:
                continue
            members = self.chat.state.members(room_id)
            targets = self._targets(room_id)
            if not targets - set(shared_with):
                continue
            holders = {t.split("/", 1)[0] for t in shared_with} | {link.set_by}
            replayer = link.set_by if link.set_by in members else min(
                (u for u in members if u in holders), default=None)
            if replayer != self.chat.user_id:
                continue
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a synchronous caller): the next change replays
                return
            self._replaying.add(room_id)
            task = loop.create_task(self._replay(link, targets))
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)

    def _targets(self, room_id: str) -> set[str]:
        """"user/device" of every device of the room's members (our other devices too) that
        this device gives room keys to: whom a link sent now reaches."""
        own = (self.chat.user_id, self.chat.device.device_id)
        return {f"{user_id}/{record.device_id}"
                for user_id in self.chat.state.members(room_id)
                for record in self.chat.devices(user_id)
                if (user_id, record.device_id) != own and self.chat.may_receive_keys(record)}

    async def _replay(self, link: PatientLink, targets: set[str]) -> None:
        try:
            await self._send_replay(link, targets)
        finally:
            self._replaying.discard(link.room_id)

    async def _send_replay(self, link: PatientLink, targets: set[str]) -> None:
        try:
            await self.chat.send_room_event(link.room_id, PATIENT_LINK_EVENT,
                                            to_wire(link, replay=True))
        except SafeConsultError as exc:  # offline: the next membership change tries again
            log.info("patient link replay not sent", extra={
                "event": "patient_link_replay_failed", "reason_code": type(exc).__name__})
            return
        stored = self._stored(link.room_id)
        if stored is not None and stored[0].order == link.order:
            self._store(link, [*stored[1], *targets])

    async def settle(self) -> None:
        """Wait for the role look-ups and replays under way (tests, shutdown)."""
        while True:
            await asyncio.sleep(0)  # a check scheduled by a room change runs first
            pending = [*self._replays, *self._lookups.values(),
                       *([self._roles_task] if self._roles_task else [])]
            if not pending and self._check_handle is None:
                return
            await asyncio.gather(*pending, return_exceptions=True)
