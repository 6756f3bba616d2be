"""IT administration of devices over the wire (docs/protocol.md, "Device administration"):
list the organisation's devices, approve, revoke, wipe, log out. The server allows it to the
``it_admin`` role only and audits each change with the administrator as actor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode

from app.net.auth_api import ProtocolError, optional_field, response_field
from app.net.transport import Transport

DeviceAction = Literal["approve", "revoke", "wipe", "logout"]
STATES = ("pending", "active", "revoked", "wiped")
ORDERS = ("none", "logout", "wipe")


@dataclass(frozen=True)
class ManagedDevice:
    device_id: str
    user_id: str
    username: str
    display_name: str
    state: str  # one of STATES
    order: str  # one of ORDERS: what the device has been told and not yet acknowledged
    ed25519: str  # identity key; its fingerprint is what the device shows at enrollment
    created_ms: int
    approved_ms: int | None
    last_seen_ms: int | None


@dataclass(frozen=True)
class DeviceOrder:
    device_id: str
    state: str
    order: str
    order_id: str | None


def _choice(data: Any, name: str, allowed: tuple[str, ...]) -> str:
    value = response_field(data, name, str)
    if value not in allowed:
        raise ProtocolError(f"response field {name!r} has an unknown value")
    return value


def _device(data: Any) -> ManagedDevice:
    if not isinstance(data, dict):
        raise ProtocolError("a device must be an object")
    return ManagedDevice(
        device_id=response_field(data, "device_id", str),
        user_id=response_field(data, "user_id", str),
        username=response_field(data, "username", str),
        display_name=response_field(data, "display_name", str),
        state=_choice(data, "state", STATES),
        order=_choice(data, "order", ORDERS),
        ed25519=response_field(data, "ed25519", str),
        created_ms=int(response_field(data, "created_ms", int)),
        approved_ms=optional_field(data, "approved_ms", int),
        last_seen_ms=optional_field(data, "last_seen_ms", int),
    )


async def list_devices(transport: Transport, *, states: tuple[str, ...] = ()
                       ) -> list[ManagedDevice]:
    query = urlencode([("state", s) for s in states])
    data = await transport.get_json("/v1/admin/devices" + (f"?{query}" if query else ""))
    return [_device(item) for item in response_field(data, "devices", list)]


async def act(transport: Transport, device_id: str, action: DeviceAction) -> DeviceOrder:
    data = await transport.post_json(
        f"/v1/admin/devices/{quote(device_id, safe='')}/{action}", {})
    return DeviceOrder(
        device_id=response_field(data, "device_id", str),
        state=_choice(data, "state", STATES),
        order=_choice(data, "order", ORDERS),
        order_id=optional_field(data, "order_id", str),
    )
