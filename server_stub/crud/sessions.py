"""Sessions: opaque access tokens bound to a device, rotating refresh tokens, revocation.

A session is one login on one device (a refresh-token family). Only SHA-256 hashes of
tokens are stored. Refreshing replaces both tokens; the old refresh token is remembered as
spent, and presenting a spent one revokes the whole session (it was stolen or replayed).
No token outlives ``absolute_expires_ms``: then the user must log in again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from server_stub.core.config import ServerSettings
from server_stub.core.security import new_id, new_token, now_ms, token_hash


@dataclass(frozen=True)
class IssuedTokens:
    session_id: str
    access_token: str
    access_expires_ms: int
    refresh_token: str
    refresh_expires_ms: int
    session_expires_ms: int


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    device_id: str
    access_expires_ms: int
    refresh_expires_ms: int
    absolute_expires_ms: int
    revoked_ms: int | None


def _session(row: sqlite3.Row | None) -> Session | None:
    if row is None:
        return None
    return Session(row["id"], row["user_id"], row["device_id"], row["access_expires_ms"],
                   row["refresh_expires_ms"], row["absolute_expires_ms"], row["revoked_ms"])


def _expiries(settings: ServerSettings, now: int, absolute: int) -> tuple[int, int]:
    return (min(now + settings.access_token_ttl_s * 1000, absolute),
            min(now + settings.refresh_token_ttl_s * 1000, absolute))


def create_session(
    conn: sqlite3.Connection, settings: ServerSettings, *, user_id: str, device_id: str,
) -> IssuedTokens:
    now = now_ms()
    absolute = now + settings.session_absolute_s * 1000
    access_exp, refresh_exp = _expiries(settings, now, absolute)
    access, refresh, session_id = new_token(), new_token(), new_id()
    # Spent refresh tokens only matter while their session could still be refreshed.
    conn.execute("DELETE FROM spent_refresh_tokens WHERE session_id IN"
                 " (SELECT id FROM sessions WHERE absolute_expires_ms < ?)", (now,))
    conn.execute(
        "INSERT INTO sessions (id, user_id, device_id, access_hash, access_expires_ms,"
        " refresh_hash, refresh_expires_ms, absolute_expires_ms, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (session_id, user_id, device_id, token_hash(access), access_exp, token_hash(refresh),
         refresh_exp, absolute, now),
    )
    return IssuedTokens(session_id, access, access_exp, refresh, refresh_exp, absolute)


def start_login_session(
    conn: sqlite3.Connection, settings: ServerSettings, *, user_id: str, device_id: str,
) -> IssuedTokens:
    """A successful login: a pending logout order is fulfilled by it (the device logged in
    again after being logged out), then a new session starts."""
    conn.execute("UPDATE devices SET pending_order = 'none', order_id = NULL"
                 " WHERE device_id = ? AND pending_order = 'logout'", (device_id,))
    return create_session(conn, settings, user_id=user_id, device_id=device_id)


def session_by_access_token(conn: sqlite3.Connection, token: str) -> Session | None:
    return _session(conn.execute("SELECT * FROM sessions WHERE access_hash = ?",
                                 (token_hash(token),)).fetchone())


def get_session(conn: sqlite3.Connection, session_id: str) -> Session | None:
    return _session(conn.execute("SELECT * FROM sessions WHERE id = ?",
                                 (session_id,)).fetchone())


class RefreshRefused(Exception):
    """``code``: unauthenticated (unknown/expired/revoked) or refresh_reused (family revoked)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rotate_refresh_token(
    conn: sqlite3.Connection, settings: ServerSettings, *, refresh_token: str, device_id: str,
) -> IssuedTokens:
    """Issue a new token pair for a live session; call inside a write transaction."""
    digest, now = token_hash(refresh_token), now_ms()
    session = _session(conn.execute("SELECT * FROM sessions WHERE refresh_hash = ?",
                                    (digest,)).fetchone())
    if session is None:
        spent = conn.execute("SELECT session_id FROM spent_refresh_tokens WHERE token_hash = ?",
                             (digest,)).fetchone()
        if spent is not None:
            revoke_session(conn, spent[0], "refresh_reused")
            raise RefreshRefused("refresh_reused",
                                 "refresh token was already used; the session is revoked")
        raise RefreshRefused("unauthenticated", "unknown refresh token")
    if session.device_id != device_id:
        raise RefreshRefused("unauthenticated", "refresh token belongs to another device")
    if session.revoked_ms is not None:
        raise RefreshRefused("unauthenticated", "session revoked")
    if now >= session.refresh_expires_ms or now >= session.absolute_expires_ms:
        raise RefreshRefused("unauthenticated", "session expired; log in again")
    access_exp, refresh_exp = _expiries(settings, now, session.absolute_expires_ms)
    access, refresh = new_token(), new_token()
    conn.execute("INSERT INTO spent_refresh_tokens (token_hash, session_id, spent_ms)"
                 " VALUES (?, ?, ?)", (digest, session.id, now))
    conn.execute(
        "UPDATE sessions SET access_hash = ?, access_expires_ms = ?, refresh_hash = ?,"
        " refresh_expires_ms = ? WHERE id = ?",
        (token_hash(access), access_exp, token_hash(refresh), refresh_exp, session.id),
    )
    return IssuedTokens(session.id, access, access_exp, refresh, refresh_exp,
                        session.absolute_expires_ms)


def revoke_session(conn: sqlite3.Connection, session_id: str, reason: str) -> None:
    conn.execute("UPDATE sessions SET revoked_ms = ?, revoke_reason = ? WHERE id = ?"
                 " AND revoked_ms IS NULL", (now_ms(), reason, session_id))


def revoke_device_sessions(conn: sqlite3.Connection, device_id: str, reason: str) -> int:
    return conn.execute("UPDATE sessions SET revoked_ms = ?, revoke_reason = ?"
                        " WHERE device_id = ? AND revoked_ms IS NULL",
                        (now_ms(), reason, device_id)).rowcount


def revoke_user_sessions(conn: sqlite3.Connection, user_id: str, reason: str) -> int:
    return conn.execute("UPDATE sessions SET revoked_ms = ?, revoke_reason = ?"
                        " WHERE user_id = ? AND revoked_ms IS NULL",
                        (now_ms(), reason, user_id)).rowcount


def next_session_end(conn: sqlite3.Connection, session_ids: Iterable[str], now_ms: int
                     ) -> int | None:
    """The earliest absolute end (ms) after ``now_ms`` among those of ``session_ids`` not
    revoked: such a session ends then without any write, so the watch must look again."""
    row = conn.execute(
        "SELECT MIN(absolute_expires_ms) FROM sessions WHERE revoked_ms IS NULL"
        " AND absolute_expires_ms > ? AND id IN (SELECT value FROM json_each(?))",
        (now_ms, json.dumps(sorted(session_ids))),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def ended_sessions(conn: sqlite3.Connection, session_ids: Iterable[str], now_ms: int
                   ) -> set[str]:
    """Those of ``session_ids`` that were revoked or passed their absolute lifetime."""
    return {r[0] for r in conn.execute(
        "SELECT id FROM sessions WHERE (revoked_ms IS NOT NULL OR absolute_expires_ms <= ?)"
        " AND id IN (SELECT value FROM json_each(?))", (now_ms, json.dumps(sorted(session_ids))))}
