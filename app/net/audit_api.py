"""Client events in the server's audit log (docs/protocol.md, "Audit")."""

from __future__ import annotations

from app.net.auth_api import response_field
from app.net.transport import Transport


async def record_client_event(
    transport: Transport, action: str, *, object_type: str | None = None,
    object_id: str | None = None, outcome: str = "ok",
    detail: dict[str, str | int | bool] | None = None,
) -> int:
    """Append a client-side event to the server's audit log; returns its sequence number."""
    data = await transport.post_json("/v1/audit/events", {
        "action": action, "object_type": object_type, "object_id": object_id,
        "outcome": outcome, "detail": detail,
    })
    return response_field(data, "seq", int)
