"""Writing a push straight to a WebSocket, without a task switch (see ``core/pubsub.py``).

ASGI only has an asynchronous ``send``; the push hub needs a synchronous write, as a bare
``websockets`` server's ``broadcast`` does. uvicorn's sans-I/O WebSocket protocol (what it
runs with ``websockets`` installed) does exactly this for a ``websocket.send`` message when
the transport is writable: frame the text with the ``websockets`` protocol object, write the
bytes to the transport. :func:`direct_writer` does the same, and declines -- so the push is
queued and sent the ASGI way -- whenever that would not be a plain write: TCP back-pressure
(uvicorn's ``writable`` cleared), a close sent or under way. When the server is anything
else, there is no writer and every push is queued, as before; ``tests/server/test_ws_push.py``
checks that the shipped server gets the writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

SERVER_SEND = "safeconsult.server_send"  # scope key: the server's own send, unwrapped


class KeepServerSend:
    """Outermost of our middleware: keeps the server's ``send`` of each WebSocket in its
    scope, before anything wraps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


def direct_writer(scope: Scope) -> Callable[[str], bool] | None:
    """A synchronous writer of text frames for this accepted WebSocket, or None if the
    server is not one this knows how to write to."""
    protocol: Any = getattr(scope.get(SERVER_SEND), "__self__", None)
    conn = getattr(protocol, "conn", None)
    transport = getattr(protocol, "transport", None)
    writable = getattr(protocol, "writable", None)
    if not (callable(getattr(conn, "send_text", None))
            and callable(getattr(conn, "data_to_send", None))
            and isinstance(writable, asyncio.Event) and transport is not None
            and isinstance(getattr(protocol, "close_sent", None), bool)):
        return None

    def write(text: str) -> bool:
        if protocol.close_sent or not writable.is_set() or transport.is_closing():
            return False
        conn.send_text(text.encode())  # raises if the connection is no longer open
        transport.write(b"".join(conn.data_to_send()))
        return True

    return write
