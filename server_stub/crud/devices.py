"""Devices: enrollment records, state machine, admin orders, proof nonces.

States: ``pending`` (enrolled, awaiting approval) -> ``active`` -> ``revoked`` (no longer
trusted; the client must wipe) -> ``wiped`` (the device acknowledged a wipe order).
Orders (``logout`` | ``wipe``) carry an ``order_id`` the device signs when acknowledging.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from server_stub.core.security import new_id, now_ms
from server_stub.crud.users import bump_device_list_version

STATES = ("pending", "active", "revoked", "wiped")
ORDERS = ("none", "logout", "wipe")


@dataclass(frozen=True)
class Device:
    device_id: str
    user_id: str
    ed25519: str
    curve25519: str
    display_name: str
    enroll_ts_ms: int
    enroll_signature: str
    state: str
    pending_order: str
    order_id: str | None
    created_ms: int
    approved_ms: int | None
    last_seen_ms: int | None


@dataclass(frozen=True)
class PendingOrder:
    order: str  # none | logout | wipe
    order_id: str | None


def _device(row: sqlite3.Row | None) -> Device | None:
    return None if row is None else Device(**dict(row))


def create_device(
    conn: sqlite3.Connection, *, device_id: str, user_id: str, ed25519: str, curve25519: str,
    display_name: str, enroll_ts_ms: int, enroll_signature: str, active: bool,
) -> Device:
    now = now_ms()
    conn.execute(
        "INSERT INTO devices (device_id, user_id, ed25519, curve25519, display_name,"
        " enroll_ts_ms, enroll_signature, state, created_ms, approved_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (device_id, user_id, ed25519, curve25519, display_name, enroll_ts_ms,
         enroll_signature, "active" if active else "pending", now, now if active else None),
    )
    if active:
        bump_device_list_version(conn, user_id)
    device = get_device(conn, device_id)
    assert device is not None
    return device


def get_device(conn: sqlite3.Connection, device_id: str) -> Device | None:
    return _device(conn.execute("SELECT * FROM devices WHERE device_id = ?",
                                (device_id,)).fetchone())


def device_exists(conn: sqlite3.Connection, device_id: str, ed25519: str) -> bool:
    return conn.execute("SELECT 1 FROM devices WHERE device_id = ? OR ed25519 = ?",
                        (device_id, ed25519)).fetchone() is not None


def list_devices(
    conn: sqlite3.Connection, *, user_id: str | None = None,
    states: tuple[str, ...] | None = None,
) -> list[Device]:
    sql, args = "SELECT * FROM devices WHERE 1=1", []
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    if states:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        args.extend(states)
    sql += " ORDER BY created_ms, device_id"
    return [d for d in map(_device, conn.execute(sql, args)) if d is not None]


def approve_device(conn: sqlite3.Connection, device_id: str) -> bool:
    cur = conn.execute(
        "UPDATE devices SET state = 'active', approved_ms = ? WHERE device_id = ?"
        " AND state = 'pending'", (now_ms(), device_id))
    if cur.rowcount:
        device = get_device(conn, device_id)
        assert device is not None
        bump_device_list_version(conn, device.user_id)
    return cur.rowcount == 1


def revoke_device(conn: sqlite3.Connection, device_id: str, *, order_wipe: bool) -> str | None:
    """Mark revoked (and optionally order a wipe); returns the new order id, if any.
    Sessions are the caller's to revoke (crud.sessions.revoke_device_sessions)."""
    device = get_device(conn, device_id)
    if device is None or device.state == "wiped":
        return None
    order_id = new_id() if order_wipe else device.order_id
    order = "wipe" if order_wipe else device.pending_order
    if order == "logout":  # revocation already ends every session; nothing to log out
        order, order_id = "none", None
    conn.execute(
        "UPDATE devices SET state = 'revoked', pending_order = ?, order_id = ?"
        " WHERE device_id = ?", (order, order_id, device_id))
    conn.execute("DELETE FROM one_time_keys WHERE device_id = ?", (device_id,))
    conn.execute("DELETE FROM fallback_keys WHERE device_id = ?", (device_id,))
    if device.state == "active":
        bump_device_list_version(conn, device.user_id)
    return order_id if order_wipe else None


def order_logout(conn: sqlite3.Connection, device_id: str) -> str | None:
    """Order a logout (sessions are revoked by the caller); a pending wipe is not replaced."""
    device = get_device(conn, device_id)
    if device is None or device.state not in ("active", "pending"):
        return None
    if device.pending_order == "wipe":
        return None
    order_id = new_id()
    conn.execute("UPDATE devices SET pending_order = 'logout', order_id = ? WHERE device_id = ?",
                 (order_id, device_id))
    return order_id


def clear_order(conn: sqlite3.Connection, device_id: str) -> None:
    conn.execute("UPDATE devices SET pending_order = 'none', order_id = NULL"
                 " WHERE device_id = ?", (device_id,))


def mark_wiped(conn: sqlite3.Connection, device_id: str) -> None:
    device = get_device(conn, device_id)
    conn.execute("UPDATE devices SET state = 'wiped', pending_order = 'none', order_id = NULL"
                 " WHERE device_id = ?", (device_id,))
    conn.execute("DELETE FROM one_time_keys WHERE device_id = ?", (device_id,))
    conn.execute("DELETE FROM fallback_keys WHERE device_id = ?", (device_id,))
    if device is not None and device.state == "active":
        bump_device_list_version(conn, device.user_id)


def pending_order_for(conn: sqlite3.Connection, device_id: str) -> PendingOrder:
    """The order a device must carry out (for the status endpoint and websocket pushes)."""
    row = conn.execute("SELECT pending_order, order_id FROM devices WHERE device_id = ?",
                       (device_id,)).fetchone()
    if row is None:
        return PendingOrder("none", None)
    return PendingOrder(row[0], row[1])


def touch_last_seen(conn: sqlite3.Connection, device_id: str, *, min_interval_ms: int = 60_000
                    ) -> None:
    """Throttled so that every request does not become a write."""
    now = now_ms()
    conn.execute(
        "UPDATE devices SET last_seen_ms = ? WHERE device_id = ?"
        " AND (last_seen_ms IS NULL OR last_seen_ms < ?)", (now, device_id, now - min_interval_ms))


def remember_nonce(conn: sqlite3.Connection, device_id: str, nonce: str, *, window_ms: int
                   ) -> bool:
    """True the first time ``(device, nonce)`` is seen within the window; False on replay.
    Nonces older than twice the window are forgotten: their proofs are stale anyway."""
    now = now_ms()
    conn.execute("DELETE FROM proof_nonces WHERE seen_ms < ?", (now - 2 * window_ms,))
    cur = conn.execute(
        "INSERT OR IGNORE INTO proof_nonces (device_id, nonce, seen_ms) VALUES (?, ?, ?)",
        (device_id, nonce, now))
    return cur.rowcount == 1


def pending_orders(conn: sqlite3.Connection, device_ids: Iterable[str]
                   ) -> dict[str, tuple[str, str]]:
    """{device id: (order, order id)} for those of ``device_ids`` that have an order."""
    return {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT device_id, pending_order, order_id FROM devices WHERE pending_order != 'none'"
        " AND order_id IS NOT NULL AND device_id IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted(device_ids)),))}


def usable_devices(conn: sqlite3.Connection, device_ids: Iterable[str]) -> set[str]:
    """Those of ``device_ids`` that exist and are neither revoked nor wiped."""
    return {r[0] for r in conn.execute(
        "SELECT device_id FROM devices WHERE state NOT IN ('revoked', 'wiped')"
        " AND device_id IN (SELECT value FROM json_each(?))", (json.dumps(sorted(device_ids)),))}
