"""IT administration of devices over HTTP: list, approve, revoke, wipe, log out.

For the ``it_admin`` role only (auditors read the audit log; they do not manage devices).
The same operations as ``python -m server_stub admin device ...`` (``crud.device_admin``),
audited with the administrator as actor. An administrator cannot revoke, wipe or log out the
device they are using: that would end their own session mid-action; use another device or
the command line.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from server_stub.api.deps import AuthContext, Db, client_source, require_role
from server_stub.api.errors import ApiError
from server_stub.crud import device_admin
from server_stub.crud import devices as devices_crud
from server_stub.crud import users as users_crud
from server_stub.models.devices import AdminDevice, AdminDevices, AdminOrder, DeviceId

router = APIRouter(prefix="/v1/admin/devices", tags=["admin"])
ItAdmin = Annotated[AuthContext, Depends(require_role("it_admin"))]
State = Literal["pending", "active", "revoked", "wiped"]


@router.get("", response_model=AdminDevices)
def list_devices(auth: ItAdmin, db: Db,
                 state: Annotated[list[State] | None, Query()] = None) -> AdminDevices:
    conn = db.connection()
    devices = devices_crud.list_devices(conn, states=tuple(state) if state else None)
    names: dict[str, str] = {}
    for d in devices:
        if d.user_id not in names:
            user = users_crud.get_user(conn, d.user_id)
            names[d.user_id] = user.username if user else "?"
    return AdminDevices(devices=[
        AdminDevice(device_id=d.device_id, user_id=d.user_id, username=names[d.user_id],
                    display_name=d.display_name, state=d.state, order=d.pending_order,
                    ed25519=d.ed25519, created_ms=d.created_ms, approved_ms=d.approved_ms,
                    last_seen_ms=d.last_seen_ms)
        for d in devices
    ])


def _apply(request: Request, auth: AuthContext, db: Db, device_id: str, action: str) -> AdminOrder:
    if action != "approve" and device_id == auth.device_id:
        raise ApiError(409, "own_device",
                       "you cannot do this to the device you are signed in on")
    actor = device_admin.Actor(auth.user_id, auth.device_id, client_source(request))
    try:
        with db.transaction() as conn:
            if action == "approve":
                device_admin.approve(conn, device_id, actor)
            elif action == "logout":
                device_admin.logout(conn, device_id, actor)
            else:
                device_admin.revoke(conn, device_id, actor, wipe=action == "wipe")
            device = devices_crud.get_device(conn, device_id)
    except device_admin.DeviceAdminRefused as exc:
        status = 404 if exc.code == "not_found" else 409
        raise ApiError(status, exc.code, str(exc)) from None
    assert device is not None
    return AdminOrder(device_id=device.device_id, state=device.state,
                      order=device.pending_order, order_id=device.order_id)


@router.post("/{device_id}/{action}", response_model=AdminOrder)
def act_on_device(device_id: DeviceId, action: Literal["approve", "revoke", "wipe", "logout"],
                  request: Request, auth: ItAdmin, db: Db) -> AdminOrder:
    """Approve a pending device; revoke one (it must wipe); revoke and order a wipe; or end
    its sessions and order a logout."""
    return _apply(request, auth, db, device_id, action)
