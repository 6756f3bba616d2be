"""To-device messages: Olm ciphertext addressed to (user, device) pairs."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request

from server_stub.api.deps import AuthContext, authenticated, get_db
from server_stub.api.routes.events import compact_json
from server_stub.api.routes.relay_support import device_of_user, guarded, hub_of
from server_stub.core.db import Database
from server_stub.core.security import now_ms
from server_stub.crud import events
from server_stub.models.events import SendToDevice

router = APIRouter(tags=["relay"])

TO_DEVICE_PUSH = json.dumps({"type": "to_device"})


@router.post("/v1/to_device")
def send_to_device(
    request: Request, body: SendToDevice,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    limit = request.app.state.settings.max_event_bytes
    prepared = [(m.user_id, m.device_id, compact_json(m.content, limit)) for m in body.messages]
    hub = hub_of(request.app)
    now = now_ms()

    def work(conn) -> tuple[list[events.Recipient], list[dict[str, str]], bool]:
        valid, skipped = [], []
        for user_id, device_id, content in prepared:
            if device_of_user(conn, user_id, device_id):
                valid.append(events.Recipient(user_id, device_id, content))
            else:
                skipped.append({"user_id": user_id, "device_id": device_id})
        queued, duplicate = events.send_to_device(
            conn, sender_user_id=auth.user_id, sender_device_id=auth.device_id,
            txn_id=body.txn_id, type_=body.type, recipients=valid, now_ms=now,
            request_sha=events.request_digest(body.type, prepared))
        return queued, skipped, duplicate

    queued, skipped, duplicate = guarded(db, hub, work)
    if not duplicate:
        for recipient in queued:
            hub.publish_to_devices([recipient.device_id], TO_DEVICE_PUSH)
    db.sync_wal()  # the answer says "queued": on disk first
    return {"queued": len(queued), "skipped": skipped, "duplicate": duplicate}
