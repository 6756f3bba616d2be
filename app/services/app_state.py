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
from typing import ClassVar

from psygnal import SignalGroupDescriptor

from app.core.session import DeviceState, SignedInUser

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


@dataclass
class AppState:
    events: ClassVar[SignalGroupDescriptor] = SignalGroupDescriptor()

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
