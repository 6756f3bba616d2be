"""What the GUI shell shows about the application as a whole, as one evented object.

Services write these fields; widgets observe them (``state.events.<field>.connect(...)``) and
never poll. The object is Qt-free so the headless client and the tests can use it too.

Threading: psygnal calls observers synchronously in the thread that sets a field. Services
run on the asyncio loop, which in the GUI is the Qt main thread (qasync), so widgets may be
updated directly from observers. Code in a worker thread must not set fields here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from psygnal import SignalGroupDescriptor


class ConnectionState(StrEnum):
    OFFLINE = "offline"
    CONNECTING = "connecting"
    ONLINE = "online"
    # TLS verification against the pinned CA failed: a possible interception, not a
    # network hiccup. Shown differently so nobody "just retries".
    CERTIFICATE_ERROR = "certificate_error"


class DeviceState(StrEnum):
    UNENROLLED = "unenrolled"
    PENDING = "pending"  # enrolled, waiting for IT's approval
    ACTIVE = "active"
    REVOKED = "revoked"


class Role(StrEnum):
    CLINICIAN = "clinician"
    IT_ADMIN = "it_admin"
    AUDITOR = "auditor"


# Roles that see the Admin area (device approval, wipe, audit trail). The server enforces
# access; the client only avoids showing what the user cannot use.
ADMIN_ROLES = frozenset({Role.IT_ADMIN, Role.AUDITOR})


@dataclass(frozen=True)
class SignedInUser:
    """A member of staff (not a patient): their name may appear in the shell."""

    username: str
    role: Role
    display_name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES


@dataclass
class AppState:
    events: ClassVar[SignalGroupDescriptor] = SignalGroupDescriptor()

    connection: ConnectionState = ConnectionState.OFFLINE
    device: DeviceState = DeviceState.UNENROLLED
    # Seconds until auto-lock; None while no session is open (nothing to lock).
    lock_seconds_left: int | None = None
    user: SignedInUser | None = None
    # Non-empty when the machine policy was refused and safe defaults are in force.
    policy_problem: str = ""
