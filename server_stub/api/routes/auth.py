"""Login, refresh, logout, session info (docs/protocol.md, "Authentication")."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server_stub.api.credentials import check_credentials
from server_stub.api.deps import (
    Auth,
    Db,
    Proven,
    Settings,
    client_source,
    refuse_unusable_device,
)
from server_stub.api.errors import ApiError
from server_stub.crud import sessions as sessions_crud
from server_stub.crud import users as users_crud
from server_stub.crud.audit import append_audit
from server_stub.models.auth import (
    LoginRequest,
    LoginResponse,
    RefreshRequest,
    SessionInfo,
    SessionTokens,
)

router = APIRouter(prefix="/v1/auth", tags=["auth"])


def tokens_model(tokens: sessions_crud.IssuedTokens) -> SessionTokens:
    return SessionTokens(
        session_id=tokens.session_id, access_token=tokens.access_token,
        access_expires_ms=tokens.access_expires_ms, refresh_token=tokens.refresh_token,
        refresh_expires_ms=tokens.refresh_expires_ms,
        session_expires_ms=tokens.session_expires_ms,
    )


@router.post("/login", response_model=LoginResponse)
def login(
    body: LoginRequest, request: Request, proven: Proven,
    db: Db, settings: Settings,
) -> LoginResponse:
    """Password + TOTP from an enrolled device (proof required, no token)."""
    device = proven.device
    # Before the credentials, so a revoked device learns it must wipe and no code is spent.
    refuse_unusable_device(device)
    user = check_credentials(
        db, settings, request.app.state.login_limiter, username=body.username,
        password=body.password, totp_code=body.totp_code, source=proven.source,
        action="login",
    )
    with db.transaction() as conn:
        if user.disabled or user.id != device.user_id:
            reason = "disabled" if user.disabled else "device_of_other_user"
            append_audit(conn, actor_user_id=user.id, device_id=device.device_id,
                         action="login", object_type="user", object_id=user.id,
                         outcome="refused", source=proven.source, detail={"reason": reason})
            refusal = reason
        else:
            refusal = ""
            tokens = sessions_crud.start_login_session(conn, settings, user_id=user.id,
                                                       device_id=device.device_id)
            append_audit(conn, actor_user_id=user.id, device_id=device.device_id,
                         action="login", object_type="session", object_id=tokens.session_id,
                         outcome="ok", source=proven.source)
    if refusal == "disabled":
        raise ApiError(403, "account_disabled", "this account is disabled")
    if refusal:
        raise ApiError(403, "forbidden", "this device is enrolled to another user")
    return LoginResponse(user_id=user.id, username=user.username, role=user.role,
                         device_id=device.device_id, session=tokens_model(tokens))


@router.post("/refresh", response_model=SessionTokens)
def refresh(
    body: RefreshRequest, proven: Proven,
    db: Db, settings: Settings,
) -> SessionTokens:
    """Rotate the token pair. A refresh token works once; reusing one ends the session."""
    refuse_unusable_device(proven.device)
    refused: sessions_crud.RefreshRefused | None = None
    with db.transaction() as conn:
        try:
            tokens = sessions_crud.rotate_refresh_token(
                conn, settings, refresh_token=body.refresh_token,
                device_id=proven.device.device_id)
        except sessions_crud.RefreshRefused as exc:
            refused = exc
            if exc.code == "refresh_reused":
                append_audit(conn, actor_user_id=proven.device.user_id,
                             device_id=proven.device.device_id, action="session.refresh_reused",
                             object_type="device", object_id=proven.device.device_id,
                             outcome="refused", source=proven.source)
        else:
            user = users_crud.get_user(conn, proven.device.user_id)
            if user is None or user.disabled:
                sessions_crud.revoke_session(conn, tokens.session_id, "user_disabled")
                refused = sessions_crud.RefreshRefused("account_disabled", "account disabled")
    if refused is not None:
        status = 403 if refused.code == "account_disabled" else 401
        raise ApiError(status, refused.code, refused.message)
    return tokens_model(tokens)


@router.post("/logout", status_code=204)
def logout(
    request: Request, auth: Auth, db: Db,
) -> None:
    with db.transaction() as conn:
        sessions_crud.revoke_session(conn, auth.session_id, "logout")
        append_audit(conn, actor_user_id=auth.user_id, device_id=auth.device_id,
                     action="logout", object_type="session", object_id=auth.session_id,
                     outcome="ok", source=client_source(request))


@router.get("/session", response_model=SessionInfo)
def session_info(
    auth: Auth, db: Db,
) -> SessionInfo:
    session = sessions_crud.get_session(db.connection(), auth.session_id)
    assert session is not None
    return SessionInfo(user_id=auth.user_id, username=auth.username, role=auth.role,
                       device_id=auth.device_id, session_id=auth.session_id,
                       access_expires_ms=session.access_expires_ms,
                       session_expires_ms=session.absolute_expires_ms)
