"""What the GUI shell shows about the application as a whole, as one evented object.

Services write these fields; widgets observe them (``state.events.<field>.connect(...)``) and
never poll. The object is Qt-free so the headless client and the tests can use it too. The
user and device types are the domain's own (``app.core.session``), so the session service's
snapshots drop in without translation.

Threading: psygnal calls observers synchronously in the thread that sets a field. Services
run on the asyncio loop, which in the GUI is the Qt main thread (qasync), so widgets may be
updated directly from observers. Code in a worker thread must not set fields here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from app.core.session import DeviceState, SignedInUser

if TYPE_CHECKING:
    from psygnal import SignalGroupDescriptor

__all__ = ["ADMIN_ROLES", "AppState", "ConnectionState", "DeviceState", "SignedInUser",
           "is_admin"]


class ConnectionState(StrEnum):
    OFFLINE = "offline"
    CONNECTING = "connecting"
    ONLINE = "online"
    # TLS verification against the pinned CA failed: a possible interception, not a
    # network hiccup. Shown differently so nobody "just retries".
    CERTIFICATE_ERROR = "certificate_error"


# Roles (app.core.session.ROLES) that see the Admin area: device approval, wipe, audit trail.
# The server enforces access; the client only avoids showing what the user cannot use.
ADMIN_ROLES = frozenset({"it_admin", "auditor"})


def is_admin(user: SignedInUser | None) -> bool:
    return user is not None and user.role in ADMIN_ROLES


class _EventsOnFirstUse:
    """``AppState.events``, made at first use: importing psygnal costs ~30 ms of CPU (it reads
    its own version through importlib.metadata), and the sign-in window is painted before
    anything observes the state (docs/performance.md, "Start-up (client)"). The first access
    puts psygnal's own descriptor in its place; fields set before that had no observers."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, instance: Any, owner: type) -> Any:
        from psygnal import SignalGroupDescriptor

        descriptor = SignalGroupDescriptor()
        setattr(owner, self._name, descriptor)
        descriptor.__set_name__(owner, self._name)
        return descriptor.__get__(instance, owner)


@dataclass
class AppState:
    if TYPE_CHECKING:
        events: ClassVar[SignalGroupDescriptor]

    connection: ConnectionState = ConnectionState.OFFLINE
    device: DeviceState = DeviceState.UNENROLLED
    # The device key's fingerprint while IT must approve it (read out over the phone).
    device_fingerprint: str = ""
    # Seconds until auto-lock; None while no session is open (nothing to lock).
    lock_seconds_left: int | None = None
    user: SignedInUser | None = None
    # The session is open but locked (idle, OS lock, suspend, offline grace): every PHI
    # widget is hidden behind the lock screen until the password is entered again.
    locked: bool = False
    # Non-empty when the machine policy was refused and safe defaults are in force.
    policy_problem: str = ""


# Set after @dataclass, which reads every class attribute (and would import psygnal now).
_events = _EventsOnFirstUse()
_events.__set_name__(AppState, "events")
AppState.events = _events  # type: ignore[misc]
