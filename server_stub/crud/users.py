"""Users, their TOTP step and the per-username login throttle.

Password hashing is slow (argon2id) and is done by the caller *outside* any write
transaction; these functions only read and write rows.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from server_stub.core.security import backoff_ms, new_id, now_ms

ROLES = ("physician", "nurse", "consultant", "it_admin", "auditor")
USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")


@dataclass(frozen=True)
class User:
    id: str
    username: str
    role: str
    password_hash: str
    totp_sealed: str  # core.security.SecretBox, context = username
    totp_last_step: int
    disabled: bool
    device_list_version: int
    created_ms: int


def normalize_username(username: str) -> str:
    return username.strip().lower()


def _user(row: sqlite3.Row | None) -> User | None:
    if row is None:
        return None
    return User(row["id"], row["username"], row["role"], row["password_hash"],
                row["totp_sealed"], row["totp_last_step"], bool(row["disabled"]),
                row["device_list_version"], row["created_ms"])


def create_user(
    conn: sqlite3.Connection, *, username: str, role: str, password_hash: str,
    totp_sealed: str,
) -> User:
    """Raises ValueError for a bad name/role, sqlite3.IntegrityError for a taken name."""
    if not USERNAME_RE.fullmatch(username):
        raise ValueError("username must be 2-32 of a-z 0-9 . _ - starting with a letter")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    user_id = new_id()
    conn.execute(
        "INSERT INTO users (id, username, role, password_hash, totp_sealed, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (user_id, username, role, password_hash, totp_sealed, now_ms()),
    )
    user = get_user(conn, user_id)
    assert user is not None
    return user


def get_user(conn: sqlite3.Connection, user_id: str) -> User | None:
    return _user(conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())


def get_user_by_username(conn: sqlite3.Connection, username: str) -> User | None:
    return _user(conn.execute("SELECT * FROM users WHERE username = ?",
                              (normalize_username(username),)).fetchone())


def list_users(conn: sqlite3.Connection) -> list[User]:
    return [u for u in map(_user, conn.execute("SELECT * FROM users ORDER BY username"))
            if u is not None]


def set_disabled(conn: sqlite3.Connection, user_id: str, disabled: bool) -> None:
    conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user_id))


def set_totp(conn: sqlite3.Connection, user_id: str, totp_sealed: str) -> None:
    """A new TOTP seed; every step is usable again with it."""
    conn.execute("UPDATE users SET totp_sealed = ?, totp_last_step = 0 WHERE id = ?",
                 (totp_sealed, user_id))


def consume_totp_step(conn: sqlite3.Connection, user_id: str, step: int) -> bool:
    """Record ``step`` as used; False when it (or a newer one) was used already. A single
    conditional UPDATE, so two concurrent submissions of one code cannot both win."""
    cur = conn.execute(
        "UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?",
        (step, user_id, step),
    )
    return cur.rowcount == 1


def device_list_versions(conn: sqlite3.Connection, user_ids: Iterable[str]) -> dict[str, int]:
    """:func:`device_list_version` for many users in one query."""
    return {r[0]: int(r[1]) for r in conn.execute(
        "SELECT id, device_list_version FROM users WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted(user_ids)),))}


def device_list_version(conn: sqlite3.Connection, user_id: str) -> int:
    """Bumped whenever the user's set of active devices or their keys change; clients poll
    it (or get it pushed) to know when to refetch the user's devices."""
    row = conn.execute("SELECT device_list_version FROM users WHERE id = ?", (user_id,)).fetchone()
    return int(row[0]) if row else 0


def bump_device_list_version(conn: sqlite3.Connection, user_id: str) -> int:
    conn.execute("UPDATE users SET device_list_version = device_list_version + 1 WHERE id = ?",
                 (user_id,))
    return device_list_version(conn, user_id)


# --- throttle (keyed by the submitted username, known or not) ---------------------------------

THROTTLE_MEMORY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Throttle:
    failures: int
    next_attempt_ms: int
    locked_until_ms: int


def get_throttle(conn: sqlite3.Connection, username: str) -> Throttle:
    row = conn.execute(
        "SELECT failures, next_attempt_ms, locked_until_ms FROM login_throttle"
        " WHERE username = ?", (normalize_username(username)[:64],),
    ).fetchone()
    return Throttle(*row) if row else Throttle(0, 0, 0)


def record_login_failure(
    conn: sqlite3.Connection, username: str, *, max_failures: int, lockout_ms: int,
    backoff_base_ms: int,
) -> Throttle:
    """Count one more consecutive failure; lock when it reaches ``max_failures``. The lock
    clears the count, so after the cooling period the account gets a fresh budget."""
    name, now = normalize_username(username)[:64], now_ms()
    # Rows exist for any submitted name; forget the idle, unlocked ones after a day.
    conn.execute("DELETE FROM login_throttle WHERE updated_ms < ? AND locked_until_ms < ?",
                 (now - THROTTLE_MEMORY_MS, now))
    previous = get_throttle(conn, name)
    failures = previous.failures + 1
    locked_until = previous.locked_until_ms
    if failures >= max_failures:
        locked_until, failures = now + lockout_ms, 0
    next_attempt = now + backoff_ms(failures, backoff_base_ms)
    conn.execute(
        "INSERT INTO login_throttle (username, failures, next_attempt_ms, locked_until_ms,"
        " updated_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET"
        " failures = excluded.failures, next_attempt_ms = excluded.next_attempt_ms,"
        " locked_until_ms = excluded.locked_until_ms, updated_ms = excluded.updated_ms",
        (name, failures, next_attempt, locked_until, now),
    )
    return Throttle(failures, next_attempt, locked_until)


def reset_login_failures(conn: sqlite3.Connection, username: str) -> None:
    conn.execute("DELETE FROM login_throttle WHERE username = ?",
                 (normalize_username(username)[:64],))


def unlock(conn: sqlite3.Connection, username: str) -> None:
    reset_login_failures(conn, username)
