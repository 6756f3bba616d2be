"""Request body size limit, enforced before any route reads the body.

JSON bodies are limited to ``settings.max_body_bytes``; paths under ``LARGE_BODY_PREFIXES``
(blob chunks) to ``settings.max_chunk_bytes``. A declared Content-Length over the limit is
refused at once; a chunked body is counted as it streams and refused when it crosses it.
Either way the answer is ``413 too_large`` in the error envelope.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from server_stub.api.errors import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LARGE_BODY_PREFIXES: tuple[str, ...] = ("/v1/blobs",)


# Declared bodies up to this many times the limit are read and discarded before the 413,
# so an ordinary client reads the answer; anything larger is cut off at once.
DRAIN_FACTOR = 4


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class _BodyTooLarge(BaseException):
    """BaseException so that FastAPI's body parsing (which turns any Exception into a 400)
    lets it through to this middleware."""


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_chunk_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_chunk_bytes = max_chunk_bytes

    def limit_for(self, path: str) -> int:
        if path.startswith(LARGE_BODY_PREFIXES):
            return self.max_chunk_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = [v for k, v in scope.get("headers", ()) if k == b"content-length"]
        if declared:
            text = declared[0].decode("latin-1")
            if len(declared) > 1 or not text.isdigit():
                await _send_error(send, 400, "malformed", "invalid Content-Length")
                return
            if int(text) > limit:
                if int(text) <= DRAIN_FACTOR * limit:
                    # Read the body away first: answering while the client is still sending
                    # and then closing makes its TCP stack see a reset instead of our 413.
                    await _drain(receive)
                await _send_error(send, 413, "too_large", f"body over {limit} bytes")
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_error(send, 413, "too_large", f"body over {limit} bytes")
