"""FastAPI dependencies: settings, database, request proof, authenticated caller.

Use in routes::

    @router.get("/v1/things")
    def list_things(auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db)):
        ...

``authenticated`` accepts a request only with a live bearer token *and* a valid request
proof (docs/protocol.md) signed by the device the token was issued to, that device active
and its user enabled. ``device_proof`` checks the proof alone (login, refresh, device
status, order acknowledgement). ``authenticate_websocket`` does the same as
``authenticated`` for a WebSocket upgrade (proof over ``GET <path>`` with an empty body,
token in the ``Authorization`` header); on failure it raises ``ApiError`` and the caller
should ``await reject_websocket(websocket, err)``.

Every failure raises ``ApiError`` with the protocol's code: ``unauthenticated``,
``token_expired``, ``proof_invalid``, ``proof_replayed`` (401), ``device_pending``,
``device_revoked``, ``account_disabled`` (403).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from server_stub.api.errors import ApiError
from server_stub.core.config import ServerSettings
from server_stub.core.db import Database
from server_stub.core.security import (
    ID_RE,
    ProofError,
    check_proof_signature,
    now_ms,
    parse_proof,
)
from server_stub.crud import devices as devices_crud
from server_stub.crud import sessions as sessions_crud
from server_stub.crud import users as users_crud

_BEARER_RE = re.compile(r"^Bearer ([A-Za-z0-9_-]{20,128})$")


@dataclass(frozen=True)
class AuthContext:
    """Who is calling: the user, the device (proven by its key) and the session."""

    user_id: str
    username: str
    role: str
    device_id: str
    session_id: str


@dataclass(frozen=True)
class ProvenDevice:
    """A request whose proof verified against this registered device's key. ``token`` is the
    bearer token the proof committed to ('' if none); it is not validated here."""

    device: devices_crud.Device
    token: str
    source: str


def get_settings(request: HTTPConnection) -> ServerSettings:
    return request.app.state.settings


def get_db(request: HTTPConnection) -> Database:
    return request.app.state.db


def client_source(conn: HTTPConnection) -> str:
    """The peer address, for throttling and audit (no proxy in front of this server)."""
    return conn.client.host if conn.client else "unknown"


def signed_path(conn: HTTPConnection) -> str:
    """The path and query exactly as the client sent them (what the proof covers)."""
    raw = conn.scope.get("raw_path") or conn.scope["path"].encode()
    query = conn.scope.get("query_string", b"")
    return (raw + (b"?" + query if query else b"")).decode("latin-1")


def bearer_token(headers: Mapping[str, str], *, required: bool) -> str:
    value = headers.get("authorization")
    if value is None:
        if required:
            raise ApiError(401, "unauthenticated", "missing bearer token")
        return ""
    match = _BEARER_RE.fullmatch(value)
    if match is None:
        raise ApiError(401, "unauthenticated", "malformed bearer token")
    return match.group(1)


def verify_proof_for_key(
    db: Database, settings: ServerSettings, *, device_id: str, ed25519: str,
    headers: Mapping[str, str], method: str, path: str, body: bytes, token: str,
    touch: bool = False,
) -> None:
    """Check ``X-SC-Proof`` against ``ed25519`` and spend its nonce (and, with ``touch``,
    note the enrolled device as seen, in the same write). Used directly by enrollment,
    where the key comes from the request itself."""
    if headers.get("x-sc-device") != device_id:
        raise ApiError(401, "proof_invalid", "X-SC-Device does not name this device")
    window_ms = settings.proof_window_s * 1000
    try:
        proof = parse_proof(headers.get("x-sc-proof"))
        check_proof_signature(proof, ed25519=ed25519, method=method, path=path, body=body,
                              token=token, window_ms=window_ms, now=now_ms())
    except ProofError as exc:
        raise ApiError(401, exc.code, exc.message) from None
    with db.transaction() as conn:
        if not devices_crud.remember_nonce(conn, device_id, proof.nonce, window_ms=window_ms):
            raise ApiError(401, "proof_replayed", "request proof was already used")
        if touch:
            devices_crud.touch_last_seen(conn, device_id)


def _prove_device(
    db: Database, settings: ServerSettings, headers: Mapping[str, str], method: str,
    path: str, body: bytes, token: str, source: str,
) -> ProvenDevice:
    device_id = headers.get("x-sc-device") or ""
    if not ID_RE.fullmatch(device_id):
        raise ApiError(401, "proof_invalid", "missing or malformed X-SC-Device")
    device = devices_crud.get_device(db.connection(), device_id)
    if device is None:
        raise ApiError(401, "device_unknown", "this device is not enrolled")
    verify_proof_for_key(db, settings, device_id=device_id, ed25519=device.ed25519,
                         headers=headers, method=method, path=path, body=body, token=token,
                         touch=True)
    return ProvenDevice(device, token, source)


def refuse_unusable_device(device: devices_crud.Device) -> None:
    if device.state in ("revoked", "wiped"):
        raise ApiError(403, "device_revoked", "this device is revoked; wipe local data")
    if device.state == "pending":
        raise ApiError(403, "device_pending", "this device awaits an administrator's approval")


def _authenticate(
    db: Database, settings: ServerSettings, headers: Mapping[str, str], method: str,
    path: str, body: bytes, source: str,
) -> AuthContext:
    token = bearer_token(headers, required=True)
    proven = _prove_device(db, settings, headers, method, path, body, token, source)
    conn = db.connection()
    session = sessions_crud.session_by_access_token(conn, token)
    if session is None:
        raise ApiError(401, "unauthenticated", "unknown or replaced access token")
    if session.device_id != proven.device.device_id:
        raise ApiError(401, "proof_invalid", "token was not issued to this device")
    refuse_unusable_device(proven.device)
    if session.revoked_ms is not None:
        raise ApiError(401, "unauthenticated", "session ended; log in again")
    now = now_ms()
    if now >= session.absolute_expires_ms:
        raise ApiError(401, "unauthenticated", "session expired; log in again")
    if now >= session.access_expires_ms:
        raise ApiError(401, "token_expired", "access token expired; refresh it")
    user = users_crud.get_user(conn, session.user_id)
    if user is None or user.disabled:
        raise ApiError(403, "account_disabled", "this account is disabled")
    return AuthContext(user.id, user.username, user.role, proven.device.device_id, session.id)


async def authenticated(request: Request) -> AuthContext:
    body = await request.body()
    return await run_in_threadpool(
        _authenticate, get_db(request), get_settings(request), request.headers,
        request.method, signed_path(request), body, client_source(request),
    )


async def device_proof(request: Request) -> ProvenDevice:
    body = await request.body()
    token = bearer_token(request.headers, required=False)
    return await run_in_threadpool(
        _prove_device, get_db(request), get_settings(request), request.headers,
        request.method, signed_path(request), body, token, client_source(request),
    )


async def authenticate_websocket(websocket: WebSocket) -> AuthContext:
    """Authenticate an upgrade request before ``accept()``; raises ApiError."""
    return await run_in_threadpool(
        _authenticate, get_db(websocket), get_settings(websocket), websocket.headers,
        "GET", signed_path(websocket), b"", client_source(websocket),
    )


async def reject_websocket(websocket: WebSocket, err: ApiError) -> None:
    """Refuse a not-yet-accepted upgrade. Closing before ``accept()`` makes the ASGI server
    answer the handshake with HTTP 403 (the client learns the precise reason from any HTTP
    request); once accepted, sockets are closed with 4000 + status and the code as reason."""
    await websocket.close(code=4000 + err.status, reason=err.code)


def require_role(*roles: str):
    """Dependency factory: ``Depends(require_role("it_admin", "auditor"))``."""

    def check(auth: Annotated[AuthContext, Depends(authenticated)]) -> AuthContext:
        if auth.role not in roles:
            raise ApiError(403, "forbidden", "your role may not do this")
        return auth

    return check


# Annotated shorthands for route signatures: ``def f(auth: Auth, db: Db): ...``
Auth = Annotated[AuthContext, Depends(authenticated)]
Proven = Annotated[ProvenDevice, Depends(device_proof)]
Db = Annotated[Database, Depends(get_db)]
Settings = Annotated[ServerSettings, Depends(get_settings)]
