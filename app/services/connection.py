"""Is the server there, and is it the one we pin? One check, used by GUI and headless."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.config import Policy
from app.core.errors import CertificateNotPinned, SafeConsultError
from app.net.transport import Transport


class Reachability(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    CERTIFICATE_ERROR = "certificate_error"


@dataclass(frozen=True)
class ServerHealth:
    state: Reachability
    version: str = ""
    message: str = ""  # user-safe


async def check_server(policy: Policy, *, timeout_s: float = 5.0) -> ServerHealth:
    try:
        transport = Transport(policy.server_url, policy.pinned_ca_pem, timeout_s=timeout_s)
    except CertificateNotPinned as exc:
        return ServerHealth(Reachability.CERTIFICATE_ERROR, message=exc.user_message)
    try:
        body = await transport.get_json("/v1/health")
        return ServerHealth(Reachability.ONLINE, version=str(body.get("version", "")))
    except CertificateNotPinned as exc:
        return ServerHealth(Reachability.CERTIFICATE_ERROR, message=exc.user_message)
    except SafeConsultError as exc:
        return ServerHealth(Reachability.OFFLINE, message=exc.user_message)
    finally:
        await transport.aclose()
