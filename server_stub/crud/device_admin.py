"""IT administration of devices: approve, revoke, wipe, log out -- one implementation for the
admin command line and the HTTP routes (``/v1/admin/devices``).

Each operation runs inside the caller's write transaction, ends the device's sessions where
the order requires it, and appends exactly one audit entry naming the actor (an IT admin's
user and device for HTTP; none for the command line, whose ``source`` says ``admin-cli``).
The orders reach a running client through the relay's watch (a change counter bumped by
triggers on the devices table, from any process) and through the device's status poll.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from server_stub.crud import devices as devices_crud
from server_stub.crud import sessions as sessions_crud
from server_stub.crud.audit import append_audit


class DeviceAdminRefused(Exception):
    """Not possible in the device's state (or unknown device). ``code`` names the case."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Actor:
    user_id: str | None  # None: the admin command line on the server itself
    device_id: str | None
    source: str


def _device(conn: sqlite3.Connection, device_id: str) -> devices_crud.Device:
    device = devices_crud.get_device(conn, device_id)
    if device is None:
        raise DeviceAdminRefused("not_found", f"no device {device_id!r}")
    return device


def _audit(conn: sqlite3.Connection, actor: Actor, action: str, device_id: str,
           detail: dict[str, object] | None = None) -> None:
    append_audit(conn, actor_user_id=actor.user_id,
                 device_id=actor.device_id if actor.user_id else device_id,
                 action=action, object_type="device", object_id=device_id, outcome="ok",
                 source=actor.source, detail=detail)


def approve(conn: sqlite3.Connection, device_id: str, actor: Actor) -> None:
    device = _device(conn, device_id)
    if not devices_crud.approve_device(conn, device_id):
        raise DeviceAdminRefused("wrong_state", f"device is {device.state}, not pending")
    _audit(conn, actor, "device.approve", device_id)


def revoke(conn: sqlite3.Connection, device_id: str, actor: Actor, *, wipe: bool) -> str | None:
    """Revoke (the device is told ``device_revoked`` and must wipe); with ``wipe`` also
    issue a wipe order the device acknowledges. Returns the order id."""
    device = _device(conn, device_id)
    if device.state == "wiped":
        raise DeviceAdminRefused("wrong_state", "device is already wiped")
    order_id = devices_crud.revoke_device(conn, device_id, order_wipe=wipe)
    ended = sessions_crud.revoke_device_sessions(conn, device_id, "device_revoked")
    _audit(conn, actor, "device.wipe" if wipe else "device.revoke", device_id,
           {"order_id": order_id, "sessions_revoked": ended})
    return order_id


def logout(conn: sqlite3.Connection, device_id: str, actor: Actor) -> str:
    device = _device(conn, device_id)
    order_id = devices_crud.order_logout(conn, device_id)
    if order_id is None:
        raise DeviceAdminRefused(
            "wrong_state", f"device is {device.state} (order {device.pending_order})")
    ended = sessions_crud.revoke_device_sessions(conn, device_id, "logout_order")
    _audit(conn, actor, "device.logout", device_id,
           {"order_id": order_id, "sessions_revoked": ended})
    return order_id
