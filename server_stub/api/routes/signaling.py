"""Call signaling relay: offer, answer, ICE candidates between two members' devices.

The payload is opaque (the SDP inside is signed by the sending device, so the relay cannot
substitute it without the callee noticing). Nothing is written to the database: the message
is pushed to the recipient's WebSocket, or held in memory for ``signal_ttl_s`` if that
device is momentarily disconnected.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from server_stub.api.deps import AuthContext, authenticated, get_db
from server_stub.api.routes.events import compact_json
from server_stub.api.routes.relay_support import device_of_user, guarded, hub_of
from server_stub.core.db import Database
from server_stub.core.security import now_ms
from server_stub.crud import rooms
from server_stub.crud.rooms import Refused
from server_stub.models.events import Signal

router = APIRouter(tags=["signaling"])


@router.post("/v1/rooms/{room_id}/signal")
async def signal(
    request: Request, room_id: str, body: Signal,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    payload = compact_json(body.payload, request.app.state.settings.max_event_bytes)
    hub = hub_of(request.app)

    def check(conn) -> None:
        now = now_ms()
        rooms.require_member(conn, room_id, auth.user_id, now)
        peer = rooms.get_membership(conn, room_id, body.to_user_id)
        if peer is None or not peer.active(now) or not device_of_user(
                conn, body.to_user_id, body.to_device_id):
            raise Refused(403, "peer_not_member",
                          "that device is not an active member of this consult")

    await run_in_threadpool(guarded, db, hub, check)
    # The payload is already compact JSON text: splice it in rather than parse it again.
    head = json.dumps({
        "type": "signal", "room_id": room_id, "call_id": body.call_id, "kind": body.kind,
        "sender": auth.user_id, "sender_device": auth.device_id,
    }, separators=(",", ":"))
    text = head[:-1] + ',"payload":' + payload + "}"
    delivered = hub.hold_or_send(body.to_device_id, text)
    return {"delivered": delivered}
