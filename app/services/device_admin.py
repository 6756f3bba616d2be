"""IT administration of devices, Qt-free: what the IT admin's Devices page calls.

The server enforces the role (``it_admin``) and audits each change; this service only turns
the session's transport into typed calls and refuses, before asking, the one thing the server
would refuse for the administrator's own safety: acting on the device they are signed in on.
"""

from __future__ import annotations

from collections.abc import Callable

from app.core.errors import SafeConsultError
from app.net import device_admin_api
from app.net.device_admin_api import DeviceAction, DeviceOrder, ManagedDevice
from app.net.transport import Transport

__all__ = ["DeviceAction", "DeviceAdminService", "DeviceOrder", "ManagedDevice", "OwnDevice"]


class NotSignedIn(SafeConsultError):
    user_message = "You are not signed in. Sign in again and retry."


class OwnDevice(SafeConsultError):
    user_message = ("This is the workstation you are signed in on. Revoke, wipe or log it "
                    "out from another workstation or with the server's admin command.")


class DeviceAdminService:
    def __init__(self, transport: Callable[[], Transport | None], *, own_device_id: str) -> None:
        self._transport = transport
        self.own_device_id = own_device_id

    def _t(self) -> Transport:
        transport = self._transport()
        if transport is None:
            raise NotSignedIn("no session")
        return transport

    async def devices(self, *, pending_only: bool = False) -> list[ManagedDevice]:
        """Pending devices first (they wait for someone), then by user and name."""
        found = await device_admin_api.list_devices(
            self._t(), states=("pending",) if pending_only else ())
        return sorted(found, key=lambda d: (d.state != "pending", d.username, d.display_name,
                                            d.device_id))

    async def act(self, device_id: str, action: DeviceAction) -> DeviceOrder:
        if action != "approve" and device_id == self.own_device_id:
            raise OwnDevice("own device")
        return await device_admin_api.act(self._t(), device_id, action)
