"""Who is signed in on this device, and in what state the device is."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DeviceState(StrEnum):
    UNENROLLED = "unenrolled"  # no identity for this user on this workstation yet
    PENDING = "pending"  # enrolled, waiting for IT's approval
    ACTIVE = "active"
    REVOKED = "revoked"  # IT revoked it: the device must wipe
    WIPED = "wiped"


class Order(StrEnum):
    NONE = "none"
    LOGOUT = "logout"
    WIPE = "wipe"


ROLES = ("physician", "nurse", "consultant", "it_admin", "auditor")


@dataclass(frozen=True)
class Tokens:
    session_id: str
    access_token: str
    access_expires_ms: int
    refresh_token: str
    refresh_expires_ms: int
    session_expires_ms: int


@dataclass(frozen=True)
class SignedInUser:
    user_id: str
    username: str
    role: str
    device_id: str


@dataclass(frozen=True)
class DeviceStatus:
    state: DeviceState
    order: Order
    order_id: str | None = None
