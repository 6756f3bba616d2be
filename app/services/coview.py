"""Co-viewing a shared study in a consult room ("view together"), Qt-free.

The presenter's viewer state (app/core/coview.py) goes to the room as ``sc.coview`` events,
end-to-end encrypted in the room's Megolm channel by :meth:`ChatService.send_room_event`;
followers apply it and render their own full-quality pixels. Sending is coalesced: at most
one update per ``interval_s`` (0.1 s: 10 updates/s), always the newest state, one send in
flight at a time. Received updates pass the validated parser (malformed ones are logged
with a PHI-free reason and ignored) and a per-sender sequence gate (last writer wins);
stale ones (older than ``stale_after_ms``, e.g. history replayed at sign-in) are ignored.
A presenter sends its current view again when a follower joins, so a late follower (who
may first have to fetch and open the study) starts from what the presenter shows now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from psygnal import Signal

from app.core.coview import (
    COVIEW_EVENT,
    FOLLOWER,
    LEFT,
    PRESENTER,
    CoviewState,
    CoviewUpdate,
    MalformedCoview,
    PaneState,
    SequenceGate,
    parse_update,
)

log = logging.getLogger(__name__)


class RoomEvents(Protocol):
    """What co-viewing needs of the chat service (ChatService provides it)."""

    room_event: Any  # psygnal SignalInstance emitting RoomEventReceived
    user_id: str

    async def send_room_event(self, room_id: str, event_type: str,
                              content: dict[str, Any]) -> str: ...


@dataclass(frozen=True, slots=True)
class Participant:
    user_id: str
    device_id: str
    role: str  # PRESENTER or FOLLOWER


@dataclass(frozen=True, slots=True)
class RemoteView:
    """A presenter's state as received (apply it when following)."""

    user_id: str
    device_id: str
    state: CoviewState


class CoviewService:
    remote_view = Signal(object)  # RemoteView: a presenter's newer state
    participants_changed = Signal(object)  # tuple[Participant, ...]
    ignored = Signal(str)  # a PHI-free reason an update was not applied (for tests, logs)

    def __init__(self, chat: RoomEvents, room_id: str, device_id: str, *,
                 interval_s: float = 0.1, stale_after_ms: int = 120_000,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.chat = chat
        self.room_id = room_id
        self.device_id = device_id
        self.interval_s = interval_s
        self.stale_after_ms = stale_after_ms
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.session = ""
        self.role = ""
        self._seq = 0
        self._gate = SequenceGate()
        self._participants: dict[tuple[str, str], Participant] = {}
        self._latest: CoviewState | None = None
        self._sent: CoviewState | None = None
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self.sent_count = 0
        self.last_remote: RemoteView | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return bool(self.role)

    async def start(self, role: str = PRESENTER, state: CoviewState | None = None) -> None:
        """Join the room's co-view as ``role``; a presenter sends ``state`` at once."""
        if role not in (PRESENTER, FOLLOWER):
            raise ValueError("role is presenter or follower")
        if not self.active:
            self.session = secrets.token_hex(8)
            self.chat.room_event.connect(self._on_room_event)
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        self.role = role
        self._sent = None
        if state is not None:
            self._latest = state
        self._wake.set()

    async def set_role(self, role: str) -> None:
        await self.start(role)

    async def stop(self) -> None:
        """Leave: tell the room, stop sending and listening."""
        if not self.active:
            return
        with contextlib.suppress(Exception):
            self.chat.room_event.disconnect(self._on_room_event)
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
            self._sender = None
        self.role = ""
        try:
            await self._send(CoviewUpdate(self.session, self._next_seq(), LEFT, None))
        except Exception as exc:  # leaving must not fail: the room times the session out
            log.info("co-view leave not sent", extra={"event": "coview_leave_failed",
                                                      "reason_code": type(exc).__name__})
        self._participants.clear()
        self.participants_changed.emit(())

    # -- sending -----------------------------------------------------------------------------

    def publish(self, state: CoviewState) -> None:
        """The local view changed (call from the event loop's thread). Only a presenter
        sends; the newest state wins, at most one update per ``interval_s``."""
        self._latest = state
        if self.role == PRESENTER:
            self._wake.set()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _send(self, update: CoviewUpdate) -> None:
        await self.chat.send_room_event(self.room_id, COVIEW_EVENT, update.to_wire())
        self.sent_count += 1

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = -float("inf")
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait = last + self.interval_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # coalesce: whatever arrives meanwhile replaces it
            state = self._latest
            if self.role == FOLLOWER:
                if self._sent is None:  # announce ourselves once
                    self._sent = state or CoviewState("none", (PaneState("none"),))
                    await self._send_safe(CoviewUpdate(self.session, self._next_seq(),
                                                       FOLLOWER, self._sent))
                    last = loop.time()
                continue
            if state is None or state == self._sent:
                continue
            self._sent = state
            await self._send_safe(CoviewUpdate(self.session, self._next_seq(), PRESENTER,
                                               state))
            last = loop.time()

    async def _send_safe(self, update: CoviewUpdate) -> None:
        try:
            await self._send(update)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # offline: the next change tries again
            self._sent = None
            log.warning("co-view update not sent", extra={"event": "coview_send_failed",
                                                          "reason_code": type(exc).__name__})

    # -- receiving ---------------------------------------------------------------------------

    def participants(self) -> tuple[Participant, ...]:
        return tuple(self._participants.values())

    def presenter(self) -> Participant | None:
        for p in self._participants.values():
            if p.role == PRESENTER:
                return p
        return None

    def _ignore(self, reason: str) -> None:
        log.info("co-view update ignored", extra={"event": "coview_ignored",
                                                  "reason_code": reason})
        self.ignored.emit(reason)

    def _on_room_event(self, event: Any) -> None:
        if event.room_id != self.room_id or event.event_type != COVIEW_EVENT:
            return
        if event.sender == self.chat.user_id and event.sender_device == self.device_id:
            return  # our own echo
        if self._clock_ms() - event.origin_ms > self.stale_after_ms:
            self._ignore("stale")
            return
        try:
            update = parse_update(event.content.reveal())
        except MalformedCoview as exc:
            self._ignore(str(exc))
            return
        if not self._gate.accept(event.sender, event.sender_device, update):
            self._ignore("out of order")
            return
        key = (event.sender, event.sender_device)
        before = self.participants()
        if update.role == LEFT:
            self._participants.pop(key, None)
        else:
            self._participants[key] = Participant(event.sender, event.sender_device,
                                                  update.role)
        if self.participants() != before:
            self.participants_changed.emit(self.participants())
            if (self.role == PRESENTER and update.role == FOLLOWER
                    and key not in {(p.user_id, p.device_id) for p in before}):
                self._sent = None  # a newcomer: send the whole current view again
                self._wake.set()
        if update.role == PRESENTER and update.state is not None:
            view = RemoteView(event.sender, event.sender_device, update.state)
            self.last_remote = view
            if self.role == FOLLOWER:
                self.remote_view.emit(view)
