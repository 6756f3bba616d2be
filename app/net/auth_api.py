"""Enrollment, login, refresh, logout and device status (docs/protocol.md).

Requests are built here and responses validated into core types, so nothing above this
module handles raw JSON from the server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from app.core.audit_queue import ChainHead, wipe_ack_message
from app.core.errors import SafeConsultError
from app.core.session import DeviceState, DeviceStatus, Order, SignedInUser, Tokens
from app.crypto.identity import DeviceIdentity
from app.crypto.proof import enrollment_message, order_ack_message
from app.net.transport import Transport


class ProtocolError(SafeConsultError):
    user_message = "The server sent an answer this version of SafeConsult does not understand."


def response_field(data: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get(name), kind) or (
        kind is int and isinstance(data.get(name), bool)
    ):
        raise ProtocolError(f"response field {name!r} missing or not {kind}")
    return data[name]


def optional_field(data: Any, name: str, kind: type) -> Any:
    """``data[name]`` when present and not null (then of ``kind``), else None."""
    value = data.get(name) if isinstance(data, dict) else None
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"response field {name!r} is not {kind.__name__}")
    return value


def parse_tokens(data: Any) -> Tokens:
    return Tokens(
        session_id=response_field(data, "session_id", str),
        access_token=response_field(data, "access_token", str),
        access_expires_ms=response_field(data, "access_expires_ms", int),
        refresh_token=response_field(data, "refresh_token", str),
        refresh_expires_ms=response_field(data, "refresh_expires_ms", int),
        session_expires_ms=response_field(data, "session_expires_ms", int),
    )


def parse_user(data: Any) -> SignedInUser:
    return SignedInUser(
        user_id=response_field(data, "user_id", str),
        username=response_field(data, "username", str),
        role=response_field(data, "role", str),
        device_id=response_field(data, "device_id", str),
    )


def _enum(kind: type, value: Any, name: str):
    try:
        return kind(value)
    except ValueError:
        raise ProtocolError(f"response field {name!r} has an unknown value") from None


@dataclass(frozen=True)
class EnrollResult:
    user_id: str
    state: DeviceState
    tokens: Tokens | None


async def enroll(
    transport: Transport, identity: DeviceIdentity, *, username: str, password: str,
    totp_code: str, display_name: str,
) -> EnrollResult:
    ts_ms = int(time.time() * 1000)
    signature = identity.sign(enrollment_message(
        identity.device_id, username, identity.ed25519, identity.curve25519, ts_ms))
    data = await transport.post_json("/v1/devices/enroll", {
        "username": username, "password": password, "totp_code": totp_code,
        "device_id": identity.device_id, "ed25519": identity.ed25519,
        "curve25519": identity.curve25519, "display_name": display_name, "ts_ms": ts_ms,
        "signature": signature,
    })
    session = data.get("session") if isinstance(data, dict) else None
    return EnrollResult(
        user_id=response_field(data, "user_id", str),
        state=_enum(DeviceState, response_field(data, "state", str), "state"),
        tokens=parse_tokens(session) if session is not None else None,
    )


async def login(
    transport: Transport, *, username: str, password: str, totp_code: str,
) -> tuple[SignedInUser, Tokens]:
    data = await transport.post_json("/v1/auth/login", {
        "username": username, "password": password, "totp_code": totp_code,
    })
    return parse_user(data), parse_tokens(response_field(data, "session", dict))


async def session_info(transport: Transport) -> SignedInUser:
    data = await transport.get_json("/v1/auth/session")
    return parse_user(data)


async def refresh(transport: Transport, refresh_token: str) -> Tokens:
    return parse_tokens(await transport.post_json("/v1/auth/refresh",
                                                  {"refresh_token": refresh_token}))


async def logout(transport: Transport) -> None:
    await transport.request("POST", "/v1/auth/logout")


async def device_status(transport: Transport) -> DeviceStatus:
    data = await transport.get_json("/v1/devices/self/status")
    order_id = data.get("order_id") if isinstance(data, dict) else None
    return DeviceStatus(
        state=_enum(DeviceState, response_field(data, "state", str), "state"),
        order=_enum(Order, response_field(data, "order", str), "order"),
        order_id=order_id if isinstance(order_id, str) else None,
    )


async def acknowledge_wipe(
    transport: Transport, identity: DeviceIdentity, order_id: str, head: ChainHead | None,
) -> None:
    """Confirm a wipe order, signing the final head of the device's audit chain with it
    (``None``: the device could not read its log)."""
    ts_ms = int(time.time() * 1000)
    body: dict[str, Any] = {"order": Order.WIPE.value, "order_id": order_id, "ts_ms": ts_ms,
                            "signature": identity.sign(wipe_ack_message(
                                identity.device_id, order_id, ts_ms, head))}
    if head is not None:
        body |= {"audit_seq": head.device_seq, "audit_hash": head.entry_hash}
    await transport.post_json("/v1/devices/self/ack", body)


async def acknowledge_order(
    transport: Transport, identity: DeviceIdentity, order: Order, order_id: str,
) -> None:
    ts_ms = int(time.time() * 1000)
    message = order_ack_message(order.value, identity.device_id, order_id, ts_ms)
    await transport.post_json("/v1/devices/self/ack", {
        "order": order.value, "order_id": order_id, "ts_ms": ts_ms,
        "signature": identity.sign(message),
    })

