"""Password + TOTP check shared by login and enrollment, with throttling and audit.

Order of checks, chosen so that nothing distinguishes an unknown user from a wrong
password (docs/protocol.md, "Login"):

1. the source address's failure budget (``rate_limited``);
2. the submitted username's lock and backoff (``account_locked`` / ``rate_limited``) --
   kept for any submitted name, existing or not;
3. argon2id verification, against a dummy hash for an unknown user (same work);
4. in one write transaction: the TOTP code must match a step within +-1 that is newer than
   the last accepted one, and that step is stored by a conditional UPDATE -- so a code is
   accepted at most once even under concurrent submissions.

Any failure in 3-4 is ``invalid_credentials`` and counts toward backoff and lockout.
"""

from __future__ import annotations

import logging
import time

from server_stub.api.errors import ApiError
from server_stub.core.config import ServerSettings
from server_stub.core.db import Database
from server_stub.core.security import (
    SourceLimiter,
    match_totp_step,
    now_ms,
    secret_box,
    verify_password,
)
from server_stub.crud import users as users_crud
from server_stub.crud.audit import append_audit

log = logging.getLogger("server_stub.credentials")


def _retry_after(ms: int) -> dict[str, str]:
    return {"Retry-After": str(max(1, -(-ms // 1000)))}


def check_credentials(
    db: Database, settings: ServerSettings, limiter: SourceLimiter, *, username: str,
    password: str, totp_code: str, source: str, action: str,
) -> users_crud.User:
    """Return the user on success; raise ApiError otherwise. ``action`` names the audit
    entry (``login`` or ``device.enroll``)."""
    wait_s = limiter.retry_after_s(source, settings.login_ip_max_failures,
                                   settings.login_ip_window_s)
    if wait_s:
        raise ApiError(429, "rate_limited", "too many failed attempts from this address",
                       headers={"Retry-After": str(wait_s)})
    name = users_crud.normalize_username(username)
    conn = db.connection()
    throttle = users_crud.get_throttle(conn, name)
    now = now_ms()
    if throttle.locked_until_ms > now:
        raise ApiError(429, "account_locked", "too many failed attempts; try again later",
                       headers=_retry_after(throttle.locked_until_ms - now))
    if throttle.next_attempt_ms > now:
        raise ApiError(429, "rate_limited", "wait before trying again",
                       headers=_retry_after(throttle.next_attempt_ms - now))

    user = users_crud.get_user_by_username(conn, name)
    password_ok = verify_password(user.password_hash if user else None, password)

    locked = False
    with db.transaction() as wconn:
        if user is not None and password_ok:
            fresh = users_crud.get_user(wconn, user.id)
            assert fresh is not None
            step = None
            try:
                seed = secret_box(settings.data_dir).open(fresh.totp_sealed, fresh.username)
            except ValueError:
                # A seed that does not open (key replaced, row copied) can never succeed.
                log.error("TOTP seed of a user does not open; reset it with the admin CLI")
            else:
                step = match_totp_step(seed, totp_code, time.time(), fresh.totp_last_step)
            if step is not None and users_crud.consume_totp_step(wconn, user.id, step):
                users_crud.reset_login_failures(wconn, name)
                return fresh
        throttle = users_crud.record_login_failure(
            wconn, name, max_failures=settings.login_max_failures,
            lockout_ms=settings.login_lockout_s * 1000,
            backoff_base_ms=settings.login_backoff_base_ms,
        )
        locked = throttle.locked_until_ms > now_ms()
        # Unknown names are not written to the log: they may be mistyped passwords.
        actor = user.id if user is not None else None
        append_audit(wconn, actor_user_id=actor, device_id=None, action=action,
                     object_type="user", object_id=actor, outcome="failed", source=source,
                     detail={"reason": "credentials", "known_user": user is not None})
        if locked:
            append_audit(wconn, actor_user_id=actor, device_id=None, action="login.lockout",
                         object_type="user", object_id=actor, outcome="refused", source=source,
                         detail={"lockout_s": settings.login_lockout_s})
    limiter.record_failure(source, settings.login_ip_window_s)
    raise ApiError(401, "invalid_credentials", "username, password or code is wrong")
