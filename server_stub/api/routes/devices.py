"""Enrollment, device status, order acknowledgement, own device list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from server_stub.api.credentials import check_credentials
from server_stub.api.deps import (
    Auth,
    Db,
    Proven,
    Settings,
    bearer_token,
    client_source,
    signed_path,
    verify_proof_for_key,
)
from server_stub.api.errors import ApiError
from server_stub.api.routes.auth import tokens_model
from server_stub.core.audit_devices import final_head_problem, wipe_ack_message
from server_stub.core.security import (
    enrollment_message,
    is_key_b64,
    now_ms,
    order_ack_message,
    verify_ed25519,
)
from server_stub.crud import devices as devices_crud
from server_stub.crud import sessions as sessions_crud
from server_stub.crud.audit import append_audit
from server_stub.models.devices import (
    DeviceStatus,
    EnrollRequest,
    EnrollResponse,
    OrderAck,
    OwnDevice,
    OwnDevices,
)

router = APIRouter(prefix="/v1/devices", tags=["devices"])


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post("/enroll", response_model=EnrollResponse, status_code=201)
def enroll(
    body: EnrollRequest, request: Request, raw: Annotated[bytes, Depends(_raw_body)],
    db: Db, settings: Settings,
) -> EnrollResponse:
    """A new device registers its identity keys with the user's password and TOTP code.
    Active at once (with a session) unless the server requires approval."""
    source = client_source(request)
    if not (is_key_b64(body.ed25519) and is_key_b64(body.curve25519)):
        raise ApiError(422, "malformed", "keys must be 32 bytes, unpadded standard base64")
    if abs(now_ms() - body.ts_ms) > settings.proof_window_s * 1000:
        raise ApiError(400, "enrollment_invalid", "enrollment timestamp is outside the window")
    message = enrollment_message(body.device_id, body.username, body.ed25519,
                                 body.curve25519, body.ts_ms)
    if not verify_ed25519(body.ed25519, message, body.signature):
        raise ApiError(400, "enrollment_invalid", "enrollment signature does not verify")
    verify_proof_for_key(
        db, settings, device_id=body.device_id, ed25519=body.ed25519, headers=request.headers,
        method=request.method, path=signed_path(request), body=raw,
        token=bearer_token(request.headers, required=False),
    )
    if devices_crud.device_exists(db.connection(), body.device_id, body.ed25519):
        raise ApiError(409, "device_exists", "this device id or key is already enrolled")
    user = check_credentials(
        db, settings, request.app.state.login_limiter, username=body.username,
        password=body.password, totp_code=body.totp_code, source=source,
        action="device.enroll",
    )
    if user.disabled:
        raise ApiError(403, "account_disabled", "this account is disabled")
    active = not settings.require_device_approval
    tokens = None
    with db.transaction() as conn:
        if devices_crud.device_exists(conn, body.device_id, body.ed25519):
            raise ApiError(409, "device_exists", "this device id or key is already enrolled")
        devices_crud.create_device(
            conn, device_id=body.device_id, user_id=user.id, ed25519=body.ed25519,
            curve25519=body.curve25519, display_name=body.display_name,
            enroll_ts_ms=body.ts_ms, enroll_signature=body.signature, active=active,
        )
        append_audit(conn, actor_user_id=user.id, device_id=body.device_id,
                     action="device.enroll", object_type="device", object_id=body.device_id,
                     outcome="ok", source=source,
                     detail={"state": "active" if active else "pending"})
        if active:
            tokens = sessions_crud.create_session(conn, settings, user_id=user.id,
                                                  device_id=body.device_id)
            append_audit(conn, actor_user_id=user.id, device_id=body.device_id,
                         action="login", object_type="session", object_id=tokens.session_id,
                         outcome="ok", source=source, detail={"via": "enroll"})
    return EnrollResponse(device_id=body.device_id, user_id=user.id,
                          state="active" if active else "pending",
                          session=tokens_model(tokens) if tokens else None)


@router.get("/self/status", response_model=DeviceStatus)
def own_status(proven: Proven,
               db: Db) -> DeviceStatus:
    """Needs only the device's proof, so a device whose sessions were revoked can still
    learn that it must log out or wipe."""
    order = devices_crud.pending_order_for(db.connection(), proven.device.device_id)
    return DeviceStatus(device_id=proven.device.device_id, state=proven.device.state,
                        order=order.order, order_id=order.order_id)


@router.post("/self/ack", response_model=DeviceStatus)
def acknowledge_order(
    body: OrderAck, proven: Proven,
    db: Db, settings: Settings,
) -> DeviceStatus:
    """The device confirms it carried out an order (signed, so the audit entry is proof)."""
    device = proven.device
    if abs(now_ms() - body.ts_ms) > settings.proof_window_s * 1000:
        raise ApiError(400, "ack_invalid", "acknowledgement timestamp is outside the window")
    if (body.audit_seq is None) != (body.audit_hash is None) or (
            body.order != "wipe" and body.audit_seq is not None):
        raise ApiError(422, "malformed", "audit_seq and audit_hash go together, with a wipe")
    head = (body.audit_seq, body.audit_hash) if body.audit_seq is not None else None
    if body.order == "wipe":  # it also signs its audit chain's final head
        message = wipe_ack_message(device.device_id, body.order_id, body.ts_ms, head)
    else:
        message = order_ack_message(body.order, device.device_id, body.order_id, body.ts_ms)
    if not verify_ed25519(device.ed25519, message, body.signature):
        raise ApiError(400, "ack_invalid", "acknowledgement signature does not verify")
    with db.transaction() as conn:
        pending = devices_crud.pending_order_for(conn, device.device_id)
        if pending.order != body.order or pending.order_id != body.order_id:
            raise ApiError(409, "no_such_order", "no such pending order for this device")
        problem = final_head_problem(conn, device.device_id, head) if body.order == "wipe" \
            else None
        if problem is not None:
            raise ApiError(400, "ack_invalid", problem)
        if body.order == "wipe":
            devices_crud.mark_wiped(conn, device.device_id)
        else:
            devices_crud.clear_order(conn, device.device_id)
        sessions_crud.revoke_device_sessions(conn, device.device_id, f"{body.order}_ack")
        append_audit(conn, actor_user_id=device.user_id, device_id=device.device_id,
                     action=f"device.{body.order}_ack", object_type="device",
                     object_id=device.device_id, outcome="ok", source=proven.source,
                     detail={"order_id": body.order_id, "ts_ms": body.ts_ms,
                             "signature": body.signature, **_head_detail(body)})
        updated = devices_crud.get_device(conn, device.device_id)
    assert updated is not None
    return DeviceStatus(device_id=updated.device_id, state=updated.state,
                        order=updated.pending_order, order_id=updated.order_id)


def _head_detail(body: OrderAck) -> dict[str, int | str]:
    if body.order != "wipe":
        return {}
    if body.audit_seq is None or body.audit_hash is None:
        return {"audit_head": "unknown"}
    return {"audit_seq": body.audit_seq, "audit_hash": body.audit_hash}


@router.get("", response_model=OwnDevices)
def own_devices(auth: Auth,
                db: Db) -> OwnDevices:
    """The caller's devices in every state (for a 'your devices' screen)."""
    devices = devices_crud.list_devices(db.connection(), user_id=auth.user_id)
    return OwnDevices(devices=[
        OwnDevice(device_id=d.device_id, display_name=d.display_name, state=d.state,
                  created_ms=d.created_ms, approved_ms=d.approved_ms,
                  last_seen_ms=d.last_seen_ms, current=d.device_id == auth.device_id)
        for d in devices
    ])
