"""Key directory: publish and claim one-time/fallback keys; users' device lists."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server_stub.api.deps import (
    Auth,
    Db,
    client_source,
)
from server_stub.api.errors import ApiError
from server_stub.core.security import is_key_b64, one_time_key_message, verify_ed25519
from server_stub.crud import devices as devices_crud
from server_stub.crud import keys as keys_crud
from server_stub.crud import users as users_crud
from server_stub.crud.audit import append_audit
from server_stub.models.keys import (
    ClaimedKey,
    ClaimRequest,
    ClaimResponse,
    DirectoryDevice,
    KeyCounts,
    KeyUpload,
    SignedKey,
    UserDevices,
    UserSummary,
    VersionsRequest,
    VersionsResponse,
)

router = APIRouter(tags=["keys"])


def _check_signed(device: devices_crud.Device, key: SignedKey) -> None:
    if not is_key_b64(key.key):
        raise ApiError(422, "malformed", "keys must be 32 bytes, unpadded standard base64")
    message = one_time_key_message(device.device_id, key.key_id, key.key)
    if not verify_ed25519(device.ed25519, message, key.signature):
        raise ApiError(400, "signature_invalid", "a key's signature does not verify")


@router.post("/v1/keys/upload", response_model=KeyCounts)
def upload_keys(body: KeyUpload, request: Request, auth: Auth,
                db: Db) -> KeyCounts:
    conn = db.connection()
    device = devices_crud.get_device(conn, auth.device_id)
    assert device is not None
    for key in [*body.one_time_keys, *([body.fallback_key] if body.fallback_key else [])]:
        _check_signed(device, key)
    if len({k.key_id for k in body.one_time_keys}) != len(body.one_time_keys):
        raise ApiError(422, "malformed", "duplicate key_id in upload")
    with db.transaction() as wconn:
        added = keys_crud.add_one_time_keys(
            wconn, device.device_id, [(k.key_id, k.key, k.signature) for k in body.one_time_keys])
        if body.fallback_key is not None:
            fb = body.fallback_key
            keys_crud.set_fallback_key(wconn, device.device_id, fb.key_id, fb.key, fb.signature)
        append_audit(wconn, actor_user_id=auth.user_id, device_id=auth.device_id,
                     action="keys.publish", object_type="device", object_id=auth.device_id,
                     outcome="ok", source=client_source(request),
                     detail={"one_time_keys": added, "fallback": body.fallback_key is not None})
        return KeyCounts(one_time_key_count=keys_crud.one_time_key_count(wconn, device.device_id),
                         has_fallback_key=keys_crud.has_fallback_key(wconn, device.device_id))


@router.get("/v1/keys/count", response_model=KeyCounts)
def key_counts(auth: Auth,
               db: Db) -> KeyCounts:
    conn = db.connection()
    return KeyCounts(one_time_key_count=keys_crud.one_time_key_count(conn, auth.device_id),
                     has_fallback_key=keys_crud.has_fallback_key(conn, auth.device_id))


@router.post("/v1/keys/claim", response_model=ClaimResponse)
def claim_keys(body: ClaimRequest, auth: Auth,
               db: Db) -> ClaimResponse:
    """One key per listed device: a one-time key if any is left, else its fallback key.
    Devices that are not active, or have no key at all, are listed in ``missing``."""
    claimed: dict[str, ClaimedKey] = {}
    missing: list[str] = []
    with db.transaction() as conn:
        for device_id in dict.fromkeys(body.device_ids):
            device = devices_crud.get_device(conn, device_id)
            key = (keys_crud.claim_key(conn, device_id)
                   if device is not None and device.state == "active" else None)
            if key is None:
                missing.append(device_id)
            else:
                claimed[device_id] = ClaimedKey(key_id=key.key_id, key=key.key,
                                                signature=key.signature, fallback=key.fallback)
    return ClaimResponse(keys=claimed, missing=missing)


def _summary(user: users_crud.User) -> UserSummary:
    return UserSummary(user_id=user.id, username=user.username, role=user.role,
                       device_list_version=user.device_list_version)


@router.get("/v1/users/by-name/{username}", response_model=UserSummary)
def user_by_name(username: str, auth: Auth,
                 db: Db) -> UserSummary:
    user = users_crud.get_user_by_username(db.connection(), username[:64])
    if user is None or user.disabled:
        raise ApiError(404, "not_found", "no such user")
    return _summary(user)


@router.get("/v1/users/{user_id}/devices", response_model=UserDevices)
def user_devices(user_id: str, auth: Auth,
                 db: Db) -> UserDevices:
    """A user's active devices with their keys and self-signatures, which clients verify
    (docs/protocol.md, "Enrollment") before trusting the keys."""
    conn = db.connection()
    user = users_crud.get_user(conn, user_id)
    if user is None:
        raise ApiError(404, "not_found", "no such user")
    devices = devices_crud.list_devices(conn, user_id=user_id, states=("active",))
    return UserDevices(
        user_id=user.id, username=user.username, role=user.role,
        device_list_version=user.device_list_version,
        devices=[DirectoryDevice(device_id=d.device_id, display_name=d.display_name,
                                 ed25519=d.ed25519, curve25519=d.curve25519,
                                 enroll_ts_ms=d.enroll_ts_ms, enroll_signature=d.enroll_signature)
                 for d in devices],
    )


@router.post("/v1/users/device-versions", response_model=VersionsResponse)
def device_versions(body: VersionsRequest, auth: Auth,
                    db: Db) -> VersionsResponse:
    """Poll: which of these users' device lists changed since the client last looked.
    Unknown user ids are left out."""
    conn = db.connection()
    versions: dict[str, int] = {}
    for user_id in dict.fromkeys(body.user_ids):
        user = users_crud.get_user(conn, user_id)
        if user is not None:
            versions[user_id] = user.device_list_version
    return VersionsResponse(versions=versions)
