"""The push WebSocket (``/v1/ws``): new room events, to-device and signaling notices,
device-list changes and wipe/logout orders for the authenticated device.

Pushes are hints on top of sync, never instead of it: a client that reconnects syncs from
its token and drops events whose id it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from server_stub.api.deps import authenticate_websocket, reject_websocket
from server_stub.api.errors import ApiError
from server_stub.api.routes.relay_support import hub_of
from server_stub.api.routes.relay_tasks import order_push, relay_lifespan
from server_stub.core.pubsub import CLOSE, Hub, Subscriber
from server_stub.crud import devices as devices_crud
from server_stub.crud import events
from server_stub.crud import users as users_crud

router = APIRouter(tags=["push"], lifespan=relay_lifespan)

MAX_CLIENT_FRAME = 4096
PONG = json.dumps({"type": "pong"})
BAD_FRAME = json.dumps({"type": "error", "code": "malformed"})


def _hello(db, user_id: str, device_id: str) -> list[str]:
    conn = db.connection()
    frames = [json.dumps({
        "type": "hello", "pos": events.stream_head(conn),
        "device_list_version": users_crud.device_list_version(conn, user_id),
    })]
    order = devices_crud.pending_order_for(conn, device_id)
    if order.order != "none" and order.order_id:
        frames.append(order_push(order.order, order.order_id))
    return frames


async def _read(websocket: WebSocket, hub: Hub, sub: Subscriber) -> None:
    """Answer pings; anything else is refused. Ends (and closes the sub) on disconnect."""
    try:
        while True:
            text = await websocket.receive_text()
            reply = BAD_FRAME
            if len(text) <= MAX_CLIENT_FRAME:
                with contextlib.suppress(ValueError):
                    if json.loads(text) == {"type": "ping"}:
                        reply = PONG
            hub.send_to_device_sub(sub, reply)
    except (WebSocketDisconnect, RuntimeError, KeyError):
        pass
    finally:
        hub.close_sub(sub, 1000, "")


@router.websocket("/v1/ws")
async def push_socket(websocket: WebSocket) -> None:
    try:
        auth = await authenticate_websocket(websocket)
    except ApiError as err:
        await reject_websocket(websocket, err)
        return
    hub = hub_of(websocket.app)
    db = websocket.app.state.db
    await websocket.accept()
    # Subscribe before reading the stream head: anything committed after it is pushed.
    sub = hub.subscribe(auth.user_id, auth.device_id, auth.session_id)
    reader = asyncio.create_task(_read(websocket, hub, sub))
    try:
        for frame in await run_in_threadpool(_hello, db, auth.user_id, auth.device_id):
            await websocket.send_text(frame)
        while True:
            item = await sub.queue.get()
            if item is CLOSE:
                if sub.close_reason:  # not a client-initiated close
                    await websocket.close(sub.close_code, sub.close_reason)
                break
            await websocket.send_text(item)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        hub.unsubscribe(sub)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
