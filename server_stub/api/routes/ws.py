"""The push WebSocket (``/v1/ws``): new room events, to-device and signaling notices,
device-list changes and wipe/logout orders for the authenticated device; and, the other
way, room events sent without a request per event.

Pushes are hints on top of sync, never instead of it: a client that reconnects syncs from
its token and drops events whose id it already has. A frame from the server carries one or
more JSON objects separated by newlines (compact JSON never contains a raw newline).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from server_stub.api.deps import AuthContext, authenticate_websocket, reject_websocket
from server_stub.api.direct_push import direct_writer
from server_stub.api.errors import ApiError
from server_stub.api.routes.events import WouldWait, store_events
from server_stub.api.routes.relay_support import ack_gate, hub_of, loop_connection
from server_stub.api.routes.relay_tasks import order_push, relay_lifespan
from server_stub.core.pubsub import (
    CLOSE,
    MAX_FRAME_CHARS,
    MAX_FRAME_OBJECTS,
    Hub,
    Subscriber,
    frames_of,
)
from server_stub.crud import devices as devices_crud
from server_stub.crud import events
from server_stub.crud import users as users_crud
from server_stub.models.events import WsSend

router = APIRouter(tags=["push"], lifespan=relay_lifespan)
log = logging.getLogger("server_stub.relay")

PING_FRAME_MAX = 4096
PONG = json.dumps({"type": "pong"})
MAX_BATCH = 64  # send frames stored in one transaction


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


def _error(code: str, message: str, event_id: str | None = None) -> str:
    frame = {"type": "error", "code": code, "message": message}
    if event_id is not None:
        frame["event_id"] = event_id
    return json.dumps(frame)


def _store_frames(app, auth: AuthContext, frames: list[str], conn=None) -> list[str]:
    """A burst of ``send`` frames stored: one reply per frame, in order. On the event loop
    with its connection (``conn``), else in the thread pool; see ``store_events``.
    The upgrade's proof authorises the socket; the watch closes it when the session ends."""
    replies: list[str | None] = [None] * len(frames)
    valid: list[tuple[int, WsSend]] = []
    for i, text in enumerate(frames):
        try:
            valid.append((i, WsSend.model_validate_json(text)))
        except ValidationError:
            replies[i] = _error("malformed", "invalid send frame")
    if valid:
        outcomes = store_events(app, auth, [(f.room_id, f.as_post()) for _, f in valid],
                                conn=conn)
        for (i, frame), outcome in zip(valid, outcomes, strict=True):
            if isinstance(outcome, ApiError):
                replies[i] = _error(outcome.code, outcome.message, frame.event_id)
            else:
                replies[i] = json.dumps({"type": "sent", **outcome}, separators=(",", ":"))
    return [r for r in replies if r is not None]


async def _store_sends(websocket: WebSocket, hub: Hub, sub: Subscriber, auth: AuthContext,
                       inbox: asyncio.Queue) -> None:
    """Stores what the reader queued, taking everything waiting at once: under load a
    burst costs one transaction, and its pushes leave together. Stored on the loop thread
    when no other writer is in the way (no thread hand-over), else in the thread pool."""
    app = websocket.app
    while True:
        frames = [await inbox.get()]
        while len(frames) < MAX_BATCH and not inbox.empty():
            frames.append(inbox.get_nowait())
        try:
            conn = loop_connection(app)
            try:
                if conn is None:
                    raise WouldWait
                replies = _store_frames(app, auth, frames, conn)
            except WouldWait:
                replies = await run_in_threadpool(_store_frames, app, auth, frames)
        except Exception as exc:  # a storage failure must not silence the socket
            log.error("storing pushed events failed: %s", exc.__class__.__name__)
            replies = [_error("internal", "not stored; send again")] * len(frames)
        # ``sent`` means stored for good: the replies wait for the write-ahead log to be on
        # disk (one fsync for every burst queued before it; the pushes did not wait). They
        # leave behind the pushes of what was just stored: the sender sees its own event
        # pushed before it is told ``sent``, as it always has.
        ack_gate(app).after_sync(functools.partial(_answer_when_synced, hub, sub, replies))


def _answer_when_synced(hub: Hub, sub: Subscriber, replies: list[str], synced: bool) -> None:
    if not synced:  # not known to be on disk: the client sends again (deduplicated)
        replies = [_error("internal", "not stored; send again")] * len(replies)
    _answer(hub, sub, replies)


def _answer(hub: Hub, sub: Subscriber, replies: list[str]) -> None:
    for frame in frames_of(replies):  # a burst's replies in one frame
        hub.send_to_device_sub(sub, frame)


async def _read(websocket: WebSocket, hub: Hub, sub: Subscriber, auth: AuthContext,
                inbox: asyncio.Queue) -> None:
    """Client frames in order: pings answered here, sends queued for ``_store_sends``.
    Ends (and closes the sub) on disconnect."""
    limit = websocket.app.state.settings.max_event_bytes + 4096
    try:
        while True:
            text = await websocket.receive_text()
            if len(text) > limit:
                hub.send_to_device_sub(sub, _error("too_large", f"frame over {limit} bytes"))
            elif '"send"' in text:
                # Bounded: a client that outpaces storage waits here, so TCP pushes back.
                await inbox.put(text)
            else:
                reply = _error("malformed", "expected a ping or send frame")
                if len(text) <= PING_FRAME_MAX:
                    with contextlib.suppress(ValueError):
                        if json.loads(text) == {"type": "ping"}:
                            reply = PONG
                hub.send_to_device_sub(sub, reply)
    except (WebSocketDisconnect, RuntimeError, KeyError):
        pass
    finally:
        hub.close_sub(sub, 1000, "")


def _drain(sub: Subscriber, first: str) -> tuple[str, bool, str | None]:
    """``first`` plus whatever else is queued, as one newline-separated frame within the
    frame bounds; whether a close is pending behind them; and the item taken that did not
    fit (to be sent next, before anything else)."""
    parts = [first]
    objects, size = first.count("\n") + 1, len(first)
    while objects < MAX_FRAME_OBJECTS:
        try:
            item = sub.queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        if item is CLOSE:
            return "\n".join(parts), True, None
        more = item.count("\n") + 1
        if objects + more > MAX_FRAME_OBJECTS or size + len(item) > MAX_FRAME_CHARS:
            return "\n".join(parts), False, item
        parts.append(item)
        objects, size = objects + more, size + len(item) + 1
    return "\n".join(parts), False, None


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
    inbox: asyncio.Queue = asyncio.Queue(MAX_BATCH * 4)
    reader = asyncio.create_task(_read(websocket, hub, sub, auth, inbox))
    storer = asyncio.create_task(_store_sends(websocket, hub, sub, auth, inbox))
    try:
        for frame in await run_in_threadpool(_hello, db, auth.user_id, auth.device_id):
            await websocket.send_text(frame)
        # From now on the hub writes a push at once when nothing waits for this socket;
        # this task sends only what had to queue (see core/pubsub.py).
        sub.writer = direct_writer(websocket.scope)
        carry = None
        while True:
            item = carry if carry is not None else await sub.queue.get()
            sub.busy, carry = True, None
            closing = item is CLOSE
            if not closing:
                # One frame for everything queued: under load, one TLS record and one
                # syscall carry many pushes.
                text, closing, carry = _drain(sub, item)
                await websocket.send_text(text)
            sub.busy = carry is not None
            if closing:
                if sub.close_reason:  # not a client-initiated close
                    await websocket.close(sub.close_code, sub.close_reason)
                break
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        hub.unsubscribe(sub)
        for task in (reader, storer):
            task.cancel()
        for task in (reader, storer):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
